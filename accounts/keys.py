"""The API key format: ``apx_<8 hex>_<43 url-safe chars>``; the first 12 characters are the public prefix."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "apx_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8


def key_generate() -> tuple[str, str]:
    """A new (prefix, full key) pair with 256 bits of secret."""
    prefix = KEY_PREFIX + secrets.token_hex(4)
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def key_hash(raw: str) -> str:
    """SHA-256 hex digest of a full key, the only form we store."""
    return hashlib.sha256(raw.encode()).hexdigest()


def key_prefix(raw: str) -> str | None:
    """The public prefix of a well-formed key, or None."""
    if not raw.startswith(KEY_PREFIX) or len(raw) <= PREFIX_LENGTH + 1 or raw[PREFIX_LENGTH] != "_":
        return None
    return raw[:PREFIX_LENGTH]
