"""Webhook delivery over HTTP(S) with Standard Webhooks style signatures.

Request: `POST` (or `PUT`) of a JSON envelope, UTF-8, compact separators:

    {"id": <ledger row id>, "type": "compliance_report.published",
     "report": {"id", "name", "type", "organization_id", "period"},
     "run_id": ..., "manifest_sha256": ..., "manifest": <parsed manifest.json>,
     "files": [{"filename", "format", "media_type", "size", "sha256",
                "content_base64"  (size <= inline_max_kb * 1024)
                or "url"          (otherwise: link_for(filename), else the stored location)}]}

Headers (on every attempt):
    Content-Type: application/json
    webhook-id: <row id>                      same on every attempt (stable)
    Idempotency-Key: <row id>                 same value
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))>
        (only when signing_secret_env is set). `body` is the exact request body bytes. The key
        is the secret's UTF-8 bytes, except a secret of the Standard Webhooks form
        `whsec_<base64>`, whose key is the base64-decoded part (so standard verifiers work).
    plus the configured `headers`, and `headers_env` values read from the environment at send
    time. Protocol headers above cannot be overridden by configuration (apply refuses them).
Query parameters named in `query_env` are added to the URL at send time from the environment;
a credential-looking parameter written into `url` is refused at apply.

Outcome: 2xx sent; 408, 425, 429, 5xx, connection errors and timeouts retryable (Retry-After
honoured); redirects (never followed) and every other status not retryable. A read timeout or
a connection lost after the request went out is an unknown outcome (the receiver may have it):
retried with the same webhook-id / Idempotency-Key. A re-issue has type
"compliance_report.reissued", "issue": "re-issued" (else "original") and a "reissue_of"
object naming the run and manifest sha256 it supersedes.

The URL's host must resolve to public addresses only, checked at every connection (see
outbound.py), unless the destination sets allow_private_network. What is kept of the answer,
in the ledger and in logs, is the status code and at most 200 characters of the body with
anything that looks like a credential redacted; at most 8 KiB of the body is ever read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Callable, Mapping

import requests

from compliance_reports.artifacts.publication import Publication
from compliance_reports.delivery.backoff import parse_retry_after
from compliance_reports.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    SendResult,
    read_env_secret,
    response_excerpt,
)
from compliance_reports.delivery.outbound import BlockedAddressError, http_session

EVENT_PUBLISHED = "compliance_report.published"
EVENT_REISSUED = "compliance_report.reissued"
RETRYABLE_STATUS = {408, 425, 429}
PROTOCOL_HEADERS = {"content-type", "webhook-id", "webhook-timestamp", "webhook-signature", "idempotency-key"}
USER_AGENT = "compliance-reports-webhook/1"
_BODY_READ_LIMIT = 8192


def _signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except (ValueError, TypeError):
            raise ConfigurationError("signing secret starts with whsec_ but is not base64") from None
    return secret.encode("utf-8")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` over `{id}.{timestamp}.{body}`."""
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + body
    mac = hmac.new(_signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify_signature(secret: str, msg_id: str, timestamp: str | int, body: bytes, header: str) -> bool:
    """Receiver side: True when any `v1,` signature in the space-separated header matches."""
    expected = sign(secret, msg_id, int(timestamp), body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())


def build_payload(publication: Publication, row_id: str, inline_max_kb: int) -> dict[str, Any]:
    limit = inline_max_kb * 1024
    try:
        manifest = publication.manifest()
    except (OSError, ValueError) as exc:
        raise DeliveryError(f"stored manifest cannot be read: {exc}", retryable=False) from None
    files = []
    for f in publication.files:
        entry: dict[str, Any] = {
            "filename": f.filename, "format": f.format, "media_type": f.media_type,
            "size": f.size, "sha256": f.sha256,
        }
        if f.size <= limit:
            try:
                entry["content_base64"] = base64.b64encode(f.path.read_bytes()).decode("ascii")
            except OSError as exc:
                raise DeliveryError(
                    f"stored file {f.filename} cannot be read: {exc.strerror or exc}", retryable=False
                ) from None
        else:
            url = publication.link_for(f.filename) if publication.link_for is not None else None
            # A receiver can do nothing with a path on this host: without a URL it is told who has it.
            entry["url"] = url
            if url is None:
                entry["available_from"] = "operator"
        files.append(entry)
    return {
        "id": row_id,
        "type": EVENT_REISSUED if publication.reissue_of else EVENT_PUBLISHED,
        "issue": "re-issued" if publication.reissue_of else "original",
        "reissue_of": dict(publication.reissue_of) if publication.reissue_of else None,
        "report": {
            "id": publication.report_id,
            "name": publication.report_name,
            "type": publication.report_type,
            "organization_id": publication.organization_id,
            "period": publication.period,
        },
        "run_id": publication.run_id,
        "manifest_sha256": publication.manifest_sha256,
        "manifest": manifest,
        "files": files,
    }


def encode_body(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def request_headers(destination, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    headers: dict[str, str] = {"User-Agent": USER_AGENT}
    for name, value in destination.headers.items():
        if name.lower() not in PROTOCOL_HEADERS:
            headers[name] = value
    for name, env in destination.headers_env.items():
        if name.lower() not in PROTOCOL_HEADERS:
            headers[name] = read_env_secret(env, f"header {name} of destination {destination.name}")
    headers["Content-Type"] = "application/json"
    headers["webhook-id"] = msg_id
    headers["Idempotency-Key"] = msg_id
    headers["webhook-timestamp"] = str(timestamp)
    if destination.signing_secret_env:
        secret = read_env_secret(
            destination.signing_secret_env, f"signing_secret_env of destination {destination.name}"
        )
        headers["webhook-signature"] = sign(secret, msg_id, timestamp, body)
    return headers


def request_params(destination) -> dict[str, str]:
    """Query parameters whose values are secrets, read from the environment at send time."""
    return {
        name: read_env_secret(env, f"query parameter {name} of destination {destination.name}")
        for name, env in (getattr(destination, "query_env", None) or {}).items()
    }


def _snippet(response: requests.Response) -> str:
    """The kept part of the body: read at most 8 KiB, redact credentials, keep 200 characters."""
    try:
        raw = next(response.iter_content(_BODY_READ_LIMIT), b"")
    except Exception:  # noqa: BLE001 - a broken body is not worth more than its absence
        raw = b""
    finally:
        response.close()
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "replace")
    return response_excerpt(raw.decode(response.encoding or "utf-8", errors="replace"))


def post_json(
    destination,
    msg_id: str,
    payload: Mapping[str, Any],
    *,
    now: datetime,
    session: requests.Session | None = None,
    on_transmit: Callable[[], None] | None = None,
) -> SendResult:
    """Send one signed JSON document; classify the outcome (raises DeliveryError).

    `on_transmit` is called right before the request goes out (the ledger's transmit mark).
    """
    body = encode_body(payload)
    timestamp = int(now.timestamp())
    headers = request_headers(destination, msg_id, timestamp, body)
    params = request_params(destination)
    http = session or http_session(getattr(destination, "allow_private_network", False))
    if on_transmit is not None:
        on_transmit()
    try:
        response = _request(http, destination, body, headers, params)
        status = response.status_code
        retry_after_header = response.headers.get("Retry-After")
        snippet = _snippet(response)
    finally:
        if session is None:
            http.close()
    summary = f"HTTP {status}"  # the reason phrase is the server's text too: not kept
    if 200 <= status < 300:
        return SendResult(f"{summary}: {snippet}" if snippet else summary)
    retryable = status in RETRYABLE_STATUS or status >= 500
    retry_after = parse_retry_after(retry_after_header, now) if retryable else None
    if 300 <= status < 400:
        summary += " redirect not followed (configure the final URL)"
    detail = f"{summary}: {snippet}" if snippet else summary
    raise DeliveryError(detail, retryable=retryable, retry_after_s=retry_after, status_code=status)


def _request(http, destination, body: bytes, headers: dict[str, str],
             params: dict[str, str]) -> requests.Response:
    try:
        return http.request(
            destination.method, destination.url, params=params, data=body, headers=headers,
            timeout=destination.timeout_s, allow_redirects=False, stream=True,
        )
    except BlockedAddressError as exc:
        raise DeliveryError(f"webhook url refused: {exc}", retryable=False) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        unknown = _may_have_arrived(exc)
        raise DeliveryError(
            f"webhook request to {_safe_url(destination.url)} failed: {type(exc).__name__}"
            + (" after the request was sent" if unknown else ""),
            retryable=True, outcome_unknown=unknown,
        ) from None
    except requests.RequestException as exc:
        raise DeliveryError(
            f"webhook request to {_safe_url(destination.url)} failed: {type(exc).__name__}",
            retryable=False,
        ) from None


def _may_have_arrived(exc: requests.RequestException) -> bool:
    """False only when the connection was never made (refused, unresolvable, TLS failed)."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.ReadTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return not isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def _safe_url(url: str) -> str:
    """The URL without query string or fragment (they may carry tokens)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def webhook_recipient(destination) -> str:
    """The ledger recipient of a webhook destination: its URL without query or fragment."""
    return _safe_url(destination.url)


def send_webhook(
    destination,
    publication: Publication,
    *,
    row_id: str,
    now: datetime,
    session: requests.Session | None = None,
    on_transmit: Callable[[], None] | None = None,
) -> SendResult:
    payload = build_payload(publication, row_id, destination.inline_max_kb)
    return post_json(destination, row_id, payload, now=now, session=session, on_transmit=on_transmit)
