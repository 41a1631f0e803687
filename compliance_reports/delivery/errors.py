"""Errors a delivery channel raises, classified for the retry logic."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable

REDACTED = "[redacted]"
MAX_ERROR_CHARS = 2000
MAX_RESPONSE_BODY_CHARS = 200

_SECRET_WORDS = r"(?:token|secret|passw(?:or)?d|pwd|api[-_]?key|access[-_]?key|private[-_]?key|key|auth\w*|credential|session|cookie|signature|sig)"
# What looks like a credential in text a server sent back (tried in this order):
_CREDENTIAL_PATTERNS = (
    # -----BEGIN ... PRIVATE KEY----- blocks (or their start, when cut)
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"), REDACTED),
    # "Authorization: Bearer abc", "bearer abc", "Basic dXNlcjpwYXNz"
    (re.compile(r"(?i)\b(bearer|basic|token|digest)(\s+)[A-Za-z0-9._~+/=:-]{4,}"), r"\1\2" + REDACTED),
    # password=..., "api_key": "...", X-Auth-Token: ..., token=... in a query string
    (re.compile(r"(?i)([\"']?[\w.-]*" + _SECRET_WORDS + r"[\w.-]*[\"']?\s*[:=]\s*[\"']?)"
                r"(?!\[redacted\])(?!(?i:bearer|basic|digest|token)\s)([^\"'\s,;&}<]+)"),
     r"\1" + REDACTED),
    # JSON Web Tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # AWS access key ids
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    # long opaque strings of letters and digits (API keys, session ids)
    (re.compile(r"\b(?=[A-Za-z0-9_+/=-]*[0-9])(?=[A-Za-z0-9_+/=-]*[A-Za-z])[A-Za-z0-9_+/=-]{32,}"), REDACTED),
)


class DeliveryError(Exception):
    """A send that did not succeed.

    `retryable` decides between `failed` (retried with backoff) and `dead`;
    `retry_after_s` carries a server's Retry-After so the next attempt waits at least that long;
    `outcome_unknown` says the request or message may have reached the receiver (timeout or
    connection lost after sending): the row is marked `possible_duplicate` and retried with the
    same id, which receivers that honour it use to drop the second copy.
    The message must never hold a secret (channels build it from server replies and our own
    text; `redact` is applied again before anything is stored or logged).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        retry_after_s: float | None = None,
        status_code: int | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status_code = status_code
        self.outcome_unknown = outcome_unknown


class LeaseLost(DeliveryError):
    """Another worker took the row over before this one began sending: nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class ConfigurationError(DeliveryError):
    """The destination cannot work as configured (missing env variable, bad template...).

    Not retryable: an operator fixes the configuration and runs `deliveries retry --id`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted the delivery (stored as provider_response)."""

    provider_response: str


def read_env_secret(name: str, what: str) -> str:
    """The value of environment variable `name`, read now; the error names it, never a value."""
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(
            f"environment variable {name} ({what}) is not set or empty"
        )
    return value


def secret_values(destination) -> list[str]:
    """Current values of every environment variable a destination names (for redaction)."""
    names: list[str] = []
    for attr in ("password_env", "signing_secret_env", "access_key_id_env", "secret_access_key_env"):
        name = getattr(destination, attr, None)
        if name:
            names.append(name)
    names.extend((getattr(destination, "headers_env", None) or {}).values())
    names.extend((getattr(destination, "query_env", None) or {}).values())
    values = []
    for name in names:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            values.append(value)
    return values


def redact_credentials(text: str) -> str:
    """`text` with everything that looks like a credential replaced by [redacted]."""
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def response_excerpt(body: str, limit: int = MAX_RESPONSE_BODY_CHARS) -> str:
    """What is kept of a server's response body: credentials redacted first, whitespace
    collapsed, then at most `limit` characters (so a cut can never expose part of a secret)."""
    text = " ".join(redact_credentials(body).split())
    return text[:limit] + ("..." if len(text) > limit else "")


def redact(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """`text` with every known secret value replaced, truncated to a storable length."""
    if text is None:
        return None
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 3] + "..."
    return text
