"""Billing pages: subscription and usage, and the POST endpoints that redirect to Stripe."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.exceptions import APIException

from accounts.selectors import user_signed_in

from .selectors import account_plan_get, billing_available, plan_get_by_code, plan_list, usage_summary
from .services import checkout_session_create, portal_session_create


@login_required
def subscription_detail(request: HttpRequest) -> HttpResponse:
    outcome = request.GET.get("checkout")
    if outcome == "success":
        messages.info(request, "Thanks! Your plan changes as soon as Stripe confirms the payment.")
    elif outcome == "cancelled":
        messages.info(request, "Checkout cancelled; nothing was charged.")
    user = user_signed_in(request=request)
    return render(request, "billing/subscription.html", {
        "summary": usage_summary(user=user), "plans": plan_list(),
        "account_plan": account_plan_get(user=user), "billing_available": billing_available()})


@login_required
@require_POST
def checkout_redirect(request: HttpRequest, code: str) -> HttpResponse:
    plan = plan_get_by_code(code=code)
    if plan is None or not plan.price_cents:
        raise Http404("No such paid plan.")
    page = request.build_absolute_uri(reverse("billing:subscription-detail"))
    try:
        session = checkout_session_create(user=user_signed_in(request=request), plan=plan,
                                          success_url=page + "?checkout=success&session_id={CHECKOUT_SESSION_ID}",
                                          cancel_url=page + "?checkout=cancelled")
    except APIException as exc:
        messages.error(request, str(exc.detail))
        return redirect("billing:subscription-detail")
    return redirect(session["url"])


@login_required
@require_POST
def portal_redirect(request: HttpRequest) -> HttpResponse:
    try:
        session = portal_session_create(user=user_signed_in(request=request),
                                        return_url=request.build_absolute_uri(reverse("billing:subscription-detail")))
    except APIException as exc:
        messages.error(request, str(exc.detail))
        return redirect("billing:subscription-detail")
    return redirect(session["url"])
