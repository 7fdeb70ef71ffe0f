"""Billing API: plans, checkout, customer portal and this period's usage."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsPersonNotApiKey
from accounts.selectors import user_signed_in

from .selectors import plan_for_user, plan_get_by_code, plan_list, usage_summary
from .services import checkout_session_create, portal_session_create

SessionOut = inline_serializer("StripeRedirect", {"id": serializers.CharField(), "url": serializers.URLField()})


class PlanSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    price_cents = serializers.IntegerField()
    currency = serializers.CharField()
    recommendation_quota = serializers.IntegerField(allow_null=True)
    event_quota = serializers.IntegerField(allow_null=True)
    purchasable = serializers.SerializerMethodField()

    def get_purchasable(self, plan: object) -> bool:
        return bool(getattr(plan, "stripe_price_id", ""))


class UsageKindSerializer(serializers.Serializer):
    used = serializers.IntegerField()
    limit = serializers.IntegerField(allow_null=True, help_text="null: unlimited")
    remaining = serializers.IntegerField(allow_null=True)


class KeyUsageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    prefix = serializers.CharField()
    name = serializers.CharField()
    recommendations = serializers.IntegerField()
    events = serializers.IntegerField()


class UsageSerializer(serializers.Serializer):
    plan = serializers.CharField()
    plan_name = serializers.CharField()
    period_start = serializers.DateField(help_text="first day of this UTC month")
    period_end = serializers.DateTimeField(help_text="when the quotas reset (start of next month, UTC)")
    usage = inline_serializer("UsageByKind", {"recommendations": UsageKindSerializer(),
                                              "events": UsageKindSerializer()})
    api_keys = KeyUsageSerializer(many=True, help_text="calls per API key this period")


def _billing_page_url(request: Request, query: str) -> str:
    return request.build_absolute_uri(reverse("billing:subscription-detail")) + query


class PlanListApi(APIView):
    """Every plan with its monthly quotas and price; ``current`` is the caller's plan when signed in."""

    permission_classes = [AllowAny]

    @extend_schema(responses=inline_serializer("PlanList", {"plans": PlanSerializer(many=True),
                                                              "current": serializers.CharField(allow_null=True)}))
    def get(self, request: Request) -> Response:
        current = plan_for_user(user=request.user).code if request.user.is_authenticated else None
        return Response({"plans": PlanSerializer(plan_list(), many=True).data, "current": current})


class CheckoutCreateApi(APIView):
    """Start a Stripe Checkout Session for a paid plan; redirect the person to ``url``."""

    permission_classes = [IsAuthenticated, IsPersonNotApiKey]

    class CheckoutInputSerializer(serializers.Serializer):
        plan = serializers.CharField()
        success_url = serializers.URLField(required=False)
        cancel_url = serializers.URLField(required=False)

    @extend_schema(request=CheckoutInputSerializer, responses={201: SessionOut})
    def post(self, request: Request) -> Response:
        data = self.CheckoutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        plan = plan_get_by_code(code=data.validated_data["plan"])
        if plan is None or not plan.price_cents:
            raise serializers.ValidationError({"plan": "Choose a paid plan: pro or enterprise."})
        session = checkout_session_create(
            user=user_signed_in(request=request), plan=plan,
            success_url=data.validated_data.get("success_url")
            or _billing_page_url(request, "?checkout=success&session_id={CHECKOUT_SESSION_ID}"),
            cancel_url=data.validated_data.get("cancel_url") or _billing_page_url(request, "?checkout=cancelled"))
        return Response(session, status=status.HTTP_201_CREATED)


class PortalCreateApi(APIView):
    """Open a Stripe Customer Portal session (payment method, invoices, plan changes, cancellation)."""

    permission_classes = [IsAuthenticated, IsPersonNotApiKey]

    class PortalInputSerializer(serializers.Serializer):
        return_url = serializers.URLField(required=False)

    @extend_schema(request=PortalInputSerializer, responses={201: SessionOut})
    def post(self, request: Request) -> Response:
        data = self.PortalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return_url = data.validated_data.get("return_url") or _billing_page_url(request, "")
        return Response(portal_session_create(user=user_signed_in(request=request), return_url=return_url),
                        status=status.HTTP_201_CREATED)


class UsageDetailApi(APIView):
    """This month's usage against the plan's quota, per kind, with a per-API-key breakdown."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=UsageSerializer)
    def get(self, request: Request) -> Response:
        return Response(usage_summary(user=user_signed_in(request=request)))
