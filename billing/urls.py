from django.urls import path

from . import views

app_name = "billing"
urlpatterns = [
    path("", views.subscription_detail, name="subscription-detail"),
    path("checkout/<slug:code>/", views.checkout_redirect, name="checkout-redirect"),
    path("portal/", views.portal_redirect, name="portal-redirect"),
]
