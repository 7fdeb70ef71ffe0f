"""API errors billing raises; DRF renders them with a clear message."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException


class QuotaExceeded(APIException):
    """429 with the plan, the limit, when it resets and how to upgrade; sets Retry-After."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "quota_exceeded"
    default_detail = "Monthly quota exceeded."

    def __init__(self, body: dict[str, Any], wait_s: int) -> None:
        super().__init__(detail=body["detail"], code=self.default_code)
        self.detail = body  # keep numbers as numbers in the JSON body
        self.wait = wait_s  # DRF's handler turns this into Retry-After


class BillingUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "billing_unavailable"
    default_detail = "Paid plans are not available on this server yet."  # the operator's steps go to the log


class PaymentProviderError(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "payment_provider_error"
    default_detail = "The payment provider could not be reached; try again shortly."


class BillingConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "billing_conflict"
    default_detail = "That billing change is not possible from the current state."
