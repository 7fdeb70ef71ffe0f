from django.urls import path

from . import api

app_name = "billing_api"
urlpatterns = [
    path("billing/plans", api.PlanListApi.as_view(), name="plan-list"),
    path("billing/checkout", api.CheckoutCreateApi.as_view(), name="checkout-create"),
    path("billing/portal", api.PortalCreateApi.as_view(), name="portal-create"),
    path("billing/usage", api.UsageDetailApi.as_view(), name="usage-detail"),
]
