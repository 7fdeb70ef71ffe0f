"""allauth's pages and the account pages use the portal's layout: its header and navigation, its styles, its forms.

Each page kind is rendered as a person reaches it; without the overrides in templates/allauth/ they are allauth's
bare HTML (no portal header, no stylesheet).
"""

from __future__ import annotations

import re

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from allauth.account.utils import user_pk_to_url_str
from django.test import Client

pytestmark = pytest.mark.django_db


def _assert_portal_layout(response, *, entrance: bool) -> str:  # noqa: ANN001
    assert response.status_code == 200
    html = response.content.decode()
    assert '<header class="site-header">' in html  # the portal's header ...
    assert 'aria-label="APEX home"' in html and 'id="site-nav"' in html  # ... brand and main navigation
    assert "css/apex.css" in html and "css/portal.css" in html  # the portal's styles
    assert re.search(r'<title>\s*\S.*· APEX</title>', html, re.DOTALL)  # the page's own title, then the site's
    body_class = re.search(r'<body class="([^"]*)"', html).group(1)
    assert "auth-page" in body_class and ("auth-entrance" in body_class) == entrance
    return html


def _assert_styled_form(html: str) -> None:
    assert 'class="auth-form' in html and 'class="button' in html and 'class="auth-field' in html


def test_log_in_page(client: Client) -> None:
    html = _assert_portal_layout(client.get("/accounts/login/"), entrance=True)
    _assert_styled_form(html)
    assert 'class="auth-form auth-form-entrance"' in html


def test_sign_up_page(client: Client) -> None:
    _assert_styled_form(_assert_portal_layout(client.get("/accounts/signup/"), entrance=True))


def test_sign_up_errors_show_in_the_portal_form(client: Client, plans) -> None:  # noqa: ANN001
    response = client.post("/accounts/signup/", {"username": "x", "email": "not-an-email", "password1": "a",
                                                 "password2": "b"})
    html = _assert_portal_layout(response, entrance=True)
    assert 'class="field-error" role="alert"' in html


def test_e_mail_verification_sent_page(client: Client) -> None:
    _assert_portal_layout(client.get("/accounts/confirm-email/"), entrance=True)


def test_e_mail_confirmation_page(client: Client, alice) -> None:  # noqa: ANN001
    address = EmailAddress.objects.create(user=alice, email="alice-new@example.com", verified=False)
    key = EmailConfirmationHMAC(address).key
    html = _assert_portal_layout(client.get(f"/accounts/confirm-email/{key}/"), entrance=True)
    assert "alice-new@example.com" in html and 'class="auth-form' in html


def test_password_reset_pages(client: Client, alice) -> None:  # noqa: ANN001
    _assert_styled_form(_assert_portal_layout(client.get("/accounts/password/reset/"), entrance=True))
    _assert_portal_layout(client.get("/accounts/password/reset/done/"), entrance=True)
    key = f"{user_pk_to_url_str(alice)}-{default_token_generator.make_token(alice)}"
    html = _assert_portal_layout(client.get(f"/accounts/password/reset/key/{key}/", follow=True), entrance=True)
    _assert_styled_form(html)
    assert 'name="password1"' in html  # the set-a-new-password form, not "Bad Token"


def test_password_change_page(client: Client, alice) -> None:  # noqa: ANN001
    client.force_login(alice)
    html = _assert_portal_layout(client.get("/accounts/password/change/"), entrance=False)
    _assert_styled_form(html)
    assert 'class="account-nav"' in html


def test_e_mail_management_page(client: Client, alice) -> None:  # noqa: ANN001
    client.force_login(alice)
    html = _assert_portal_layout(client.get("/accounts/email/"), entrance=False)
    assert 'class="account-nav"' in html and 'class="auth-form' in html


def test_log_out_page(client: Client, alice) -> None:  # noqa: ANN001
    client.force_login(alice)
    _assert_portal_layout(client.get("/accounts/logout/"), entrance=False)


def test_api_keys_page(client: Client, alice) -> None:  # noqa: ANN001
    client.force_login(alice)
    html = _assert_portal_layout(client.get("/account/api-keys/"), entrance=False)
    _assert_styled_form(html)
    assert re.search(r'<nav class="account-nav"[^>]*>.*aria-current="page">API keys</a>', html, re.DOTALL)


def test_billing_page(client: Client, alice) -> None:  # noqa: ANN001
    client.force_login(alice)
    html = _assert_portal_layout(client.get("/billing/"), entrance=False)
    assert re.search(r'<nav class="account-nav"[^>]*>.*aria-current="page">Billing</a>', html, re.DOTALL)


def test_the_account_overview_shares_the_account_navigation(client: Client, alice) -> None:  # noqa: ANN001
    client.force_login(alice)
    html = client.get("/me/").content.decode()
    assert re.search(r'<nav class="account-nav"[^>]*>.*aria-current="page">Overview</a>.*API keys.*Billing', html,
                     re.DOTALL)
