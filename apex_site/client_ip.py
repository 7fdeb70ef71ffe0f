"""The real client address: ``X-Forwarded-For`` counts only when the direct peer is a trusted proxy.

``TRUSTED_PROXIES`` (settings, from the environment) lists addresses or networks (``10.0.0.0/8``,
``127.0.0.1``) of the load balancers in front of APEX; it is empty by default, and then only
``REMOTE_ADDR`` counts, whatever the client puts in ``X-Forwarded-For``. With a trusted peer the
header is read from the right, skipping trusted hops: the first untrusted hop is the client, because
everything to its left was written by the client and can be anything. Every throttle, allauth's rate
limits and the sign-in backoff (accounts.lockout) use this one function.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from rest_framework import throttling

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_IDENT_PREFIX = 64  # one IPv6 client usually holds a whole /64: throttles count the network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from exc


def trusted_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The parsed ``TRUSTED_PROXIES`` setting (a bad entry raises ImproperlyConfigured)."""
    return _networks(tuple(settings.TRUSTED_PROXIES or ()))


def _parse(value: str) -> IPAddress | None:
    """An address from a header hop or REMOTE_ADDR, tolerating ``[v6]:port`` and ``v4:port``; None if garbage."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1:value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, networks: tuple) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_ip(request: HttpRequest) -> str:
    """The client's address as this deployment can know it; ``""`` only when REMOTE_ADDR itself is unusable."""
    peer = _parse(request.META.get("REMOTE_ADDR") or "")
    if peer is None:
        return ""
    networks = trusted_networks()
    if not networks or not _is_trusted(peer, networks):
        return str(peer)
    nearest = peer
    hops = (request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:  # a hop no proxy of ours wrote: stop at the last address we can vouch for
            break
        if not _is_trusted(address, networks):
            return str(address)
        nearest = address
    return str(nearest)


def client_ident(request: HttpRequest) -> str:
    """What throttles and the sign-in backoff count by: the client's IPv4 address, or its IPv6 /64."""
    address = client_ip(request)
    parsed = _parse(address) if address else None
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{parsed}/{IPV6_IDENT_PREFIX}", strict=False))
    return address or "unknown"


class ClientIpThrottleMixin:
    """Makes a DRF throttle count by :func:`client_ident` instead of DRF's spoofable ``X-Forwarded-For`` reading."""

    def get_ident(self, request: HttpRequest) -> str:
        return client_ident(request)


class AnonRateThrottle(ClientIpThrottleMixin, throttling.AnonRateThrottle):
    """DRF's anonymous throttle (scope ``anon``), counted per real client address (per process while Redis is down)."""

    @property  # type: ignore[override]
    def cache(self):  # noqa: ANN201 - Django's BaseCache
        from .cache import counting_cache

        return counting_cache()


class PublicModelRateThrottle(AnonRateThrottle):
    """Anonymous calls to the public endpoints that run a model (scope ``anon_model``): one budget per address
    across them, apart from (and tighter than) the general ``anon`` one. Signed-in and keyed callers pass: the burst
    throttle and their plan's quota count them instead."""

    scope = "anon_model"


def public_model_throttles() -> list[type[throttling.BaseThrottle]]:
    """``throttle_classes`` of a public endpoint that runs a model: the default ones plus ``PublicModelRateThrottle``."""
    from rest_framework.settings import api_settings

    defaults = cast("list[type[throttling.BaseThrottle]]", list(api_settings.DEFAULT_THROTTLE_CLASSES))
    return [*defaults, PublicModelRateThrottle]
