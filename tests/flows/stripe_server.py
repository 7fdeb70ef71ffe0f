"""Offline Stripe for the browser journeys: recorded responses served over HTTP to the running APEX server.

The server's real stripe client and dj-stripe code talk to this process (``STRIPE_API_HOST``); the
responses are the billing tests' recorded fixtures, routed by the same fake (tests/billing/stripe_fake.py).
Customers echo the e-mail and metadata they were created with, as Stripe does, so dj-stripe links them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from benchmarks.support.portal import STRIPE_PRICES as PRICES
from benchmarks.support.portal import STRIPE_TEST_KEY
from tests.billing.stripe_fake import FakeStripeHttpClient, fixture, sign

WEBHOOK_SECRET = "whsec_apexBrowserJourneySecret0000000001"
CUSTOMER = "cus_RApexAlice0001"
SUBSCRIPTION = "sub_1QApexAlicePro000000001"


class StripeServer:
    """A local HTTP server answering stripe-python's requests from recorded fixtures."""

    def __init__(self) -> None:
        self.fake = FakeStripeHttpClient()
        self.fake.add("GET", "/v1/account", fixture("account"))
        self.fake.add("GET", "/v1/products/prod_RApexPro0001", fixture("product"))
        self.fake.add("POST", "/v1/checkout/sessions", fixture("checkout_session"))
        self.fake.add("GET", f"/v1/subscriptions/{SUBSCRIPTION}", fixture("subscription"))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "POST" and self.path.split("?")[0] == "/v1/customers":
                    server._customer_created(parse_qs(body.decode()))
                text, status, headers = server.fake.request(self.command, server.url + self.path,
                                                             dict(self.headers), body or None)
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return None

        return Handler

    def _customer_created(self, params: dict[str, list[str]]) -> None:
        metadata = {k[len("metadata["):-1]: v[0] for k, v in params.items() if k.startswith("metadata[")}
        customer = fixture("customer", email=params.get("email", [""])[0], metadata=metadata)
        self.fake.add("POST", "/v1/customers", customer)
        self.fake.add("GET", f"/v1/customers/{CUSTOMER}", customer)

    def env(self) -> dict[str, str]:
        """Environment for the APEX server: test key, price ids, and this server as the Stripe API host."""
        return {"STRIPE_TEST_SECRET_KEY": STRIPE_TEST_KEY, "APEX_FLOWS_STRIPE_HOST": self.url, **PRICES}

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def checkout_success_url(self) -> str:
        """The success URL APEX gave Stripe in the newest Checkout Session, with the session id filled in."""
        (call, *_) = reversed(self.fake.called("POST", "/v1/checkout/sessions"))
        return call.params["success_url"][0].replace("{CHECKOUT_SESSION_ID}", fixture("checkout_session")["id"])

    def signed_event(self, event_type: str, obj: dict[str, Any]) -> tuple[str, str]:
        """(payload, Stripe-Signature header) for an event, as Stripe would send it."""
        event = fixture("event", type=event_type, data={"object": obj}, id="evt_1QApexBrowserJourney0001")
        payload = json.dumps(event)
        return payload, sign(payload, WEBHOOK_SECRET)
