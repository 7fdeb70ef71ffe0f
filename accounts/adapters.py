"""allauth hooks: sign-in limits count the real client address (sign-up lands on ACCOUNT_SIGNUP_REDIRECT_URL)."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from apex_site.client_ip import client_ident, client_ip

from .lockout import SignIn, SignInLocked, signin_begin, signin_succeeded


class AccountAdapter(DefaultAccountAdapter):
    def get_client_ip(self, request: HttpRequest) -> str:
        """allauth's rate limits count the address apex_site.client_ip trusts (TRUSTED_PROXIES), not raw headers."""
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine client IP address")
        return ip

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth's "login_failed" per-key limit is per account; keyed per account × address it cannot be
        # used from elsewhere to lock the owner out (the account-wide limit is accounts.lockout's, which
        # spares addresses the owner has signed in from)
        return f"{super()._get_login_attempts_cache_key(request, **credentials)}:{client_ident(request)}"

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        super().pre_authenticate(request, **credentials)
        login = str(credentials.get("email") or credentials.get("username") or "")
        try:
            self._apex_signin: SignIn | None = signin_begin(request=request, login=login)
        except SignInLocked as exc:
            self._rollback_login_failed_rl_usage()
            raise self.validation_error("too_many_login_attempts") from exc

    def authenticate(self, request: HttpRequest, **credentials: Any) -> AbstractBaseUser | None:
        self._apex_signin = None
        user = super().authenticate(request, **credentials)
        if user is not None and self._apex_signin is not None:
            signin_succeeded(attempt=self._apex_signin)
        return user
