"""Email delivery over SMTP (smtplib): one message per ledger row, i.e. per recipient.

Each to, cc and bcc address has its own ledger row, so one refused address neither blocks nor
resends the others. A row's message goes to its single address in the SMTP envelope (RCPT TO)
while the visible To and Cc headers show the configured lists; bcc addresses never appear in
headers. The Message-ID is derived from the row id, so a resend after a crash carries the same
Message-ID.

Content (delivery/mail_content.py): the subject is the destination's template with a severity
prefix (`[2 critical] St Mary's HIPAA audit trail - October 2026`); the body, HTML with a
plain-text alternative, shows the report's aggregates (headline figures, findings by severity,
integrity verdict), a link to the run in the Dagster UI (COMPLIANCE_UI_URL) and the stored
files.

Size: the message is serialised (base64 attachments, headers) and its exact length compared
with max_message_mb and with the server's advertised SIZE (EHLO). When every file does not
fit, oversize=link attaches what fits (the PDF first, then the smallest files) and lists the
others with a download link (`Publication.link_for`: presigned S3 or COMPLIANCE_PUBLIC_BASE_URL)
or, when no URL can be made, as available from the operator with name and sha256 (never a
filesystem path), plus a note saying why; oversize=fail fails (not retryable).

No PHI: subject and body hold aggregates only (reports.digest), never event content.

Failures: 4xx SMTP replies, dropped connections and timeouts are retryable; 5xx replies
(refused recipient, failed authentication, message too big), a missing STARTTLS (never
downgraded to clear text), missing environment variables and unreadable stored files are not.
The point of no return is the end of the message data: a timeout or dropped connection while
waiting for the server's reply to it (its 250 lost) is an unknown outcome, retried with the
same Message-ID.

A re-issue says so: the subject starts with "Re-issued:" and the body names the run and the
manifest sha256 it supersedes.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Callable, Collection, Mapping

from compliance_reports.artifacts.publication import Publication
from compliance_reports.config.validation import SUBJECT_PLACEHOLDERS, render_template
from compliance_reports.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    SendResult,
    read_env_secret,
)
from compliance_reports.delivery.mail_content import (
    file_line,
    human_size,
    render_bodies,
    severity_prefix,
)

# RFC 5322 allows 998-character lines; folding at 78 makes Python's folder start some
# subjects on a continuation line (a leading space shown by clients).
SMTP_POLICY = SMTP.clone(max_line_length=998)
REISSUE_PREFIX = "Re-issued:"
DEFAULT_TIMEOUT_S = 60.0
# Per-attachment MIME headers and boundaries, and the headers and both body parts, for the
# pre-build estimate (the built message is measured exactly before sending).
_PART_OVERHEAD = 512
_BODY_ESTIMATE = 24_576


# ---------------------------------------------------------------- recipients and templates


def email_recipients(destination) -> list[str]:
    """The ledger recipients of an email destination: to, cc, bcc, each address once."""
    seen: set[str] = set()
    out = []
    for address in [*destination.to, *destination.cc, *destination.bcc]:
        key = address.strip().lower()
        if key not in seen:
            seen.add(key)
            out.append(address.strip())
    return out


def render_placeholders(template: str, fields: Mapping[str, object], allowed, what: str) -> str:
    """Fill `{name}` placeholders from `allowed` only, by the rules checked at apply
    (config/validation.render_template: no attribute or index access, bounded widths)."""
    try:
        return render_template(template, fields, allowed, what)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def render_subject(template: str, publication: Publication) -> str:
    """`Re-issued:` for a re-issue, the severity prefix (mail_content.severity_prefix), then the
    rendered template."""
    digest = publication.digest
    fields = {
        "report_name": publication.report_name,
        "report_id": publication.report_id,
        "period": publication.period,
        "period_label": digest.period_label if digest is not None else publication.period,
        "organization_id": publication.organization_id,
    }
    subject = severity_prefix(digest) + render_placeholders(template, fields, SUBJECT_PLACEHOLDERS, "subject template")
    if publication.reissue_of:
        subject = f"{REISSUE_PREFIX} {subject}"
    # One line: a CR or LF from a report name must not start a new header.
    return " ".join(subject.split())


# ---------------------------------------------------------------- message


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip(">") or "localhost"


def build_message(
    destination,
    publication: Publication,
    *,
    row_id: str,
    now: datetime,
    attach: Collection[str] | None = None,
    links: Mapping[str, str | None] | None = None,
    oversize_note: str | None = None,
    run_url: str | None = None,
) -> EmailMessage:
    """The message; `attach` names the files to attach (None: all), the others are listed with
    their link from `links` (or as available from the operator)."""
    attach = {f.filename for f in publication.files} if attach is None else set(attach)
    links = links or {}
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["Subject"] = render_subject(destination.subject, publication)
    msg["From"] = destination.from_address
    msg["To"] = ", ".join(destination.to)
    if destination.cc:
        msg["Cc"] = ", ".join(destination.cc)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{row_id}@{_domain(destination.from_address)}>"
    msg["X-Compliance-Report"] = f"{publication.report_id}; period={publication.period}"
    by_name = {f.filename: f for f in publication.files}
    ordered = [by_name[name] for name in attachment_order(publication)]  # the PDF first
    lines = [file_line(f, f.filename in attach, links.get(f.filename)) for f in ordered]
    text, body_html = render_bodies(publication, lines, run_url=run_url, oversize_note=oversize_note)
    msg.set_content(text)
    msg.add_alternative(body_html, subtype="html")
    msg.make_mixed()
    for f in ordered:
        if f.filename not in attach:
            continue
        try:
            data = f.path.read_bytes()
        except OSError as exc:
            raise DeliveryError(
                f"stored file {f.filename} cannot be read: {exc.strerror or exc}", retryable=False
            ) from None
        maintype, _, subtype = f.media_type.partition("/")
        msg.add_attachment(
            data, maintype=maintype, subtype=subtype or "octet-stream", filename=f.filename
        )
    return msg


def _encoded_size(size: int) -> int:
    """Base64 size of one attachment (4 bytes per 3, CRLF every 76) plus its part headers."""
    b64 = 4 * ((size + 2) // 3)
    return b64 + 2 * (b64 // 76 + 1) + _PART_OVERHEAD


def estimate_encoded_size(publication: Publication) -> int:
    """The message with every file attached, before building it."""
    return _BODY_ESTIMATE + sum(_encoded_size(f.size) for f in publication.files)


def attachment_order(publication: Publication) -> list[str]:
    """The order in which files are attached when not all fit: the PDF (the report people
    read) first, then the smallest files, so as many as possible travel with the mail."""
    ranked = sorted(publication.files, key=lambda f: (f.format != "pdf", f.size, f.filename))
    return [f.filename for f in ranked]


def plan_attachments(publication: Publication, limit: int) -> list[str]:
    """The files (in attachment_order) whose estimated encoded size fits under `limit`."""
    sizes = {f.filename: f.size for f in publication.files}
    total, chosen = _BODY_ESTIMATE, []
    for name in attachment_order(publication):
        cost = _encoded_size(sizes[name])
        if total + cost <= limit:
            chosen.append(name)
            total += cost
    return chosen


def run_link(run_id: str | None) -> str | None:
    """The run's page in the Dagster UI (COMPLIANCE_UI_URL)."""
    if not run_id:
        return None
    from compliance_reports.settings import load_settings

    return f"{load_settings().ui_url}/runs/{run_id}"


def _size_limit(destination, smtp: smtplib.SMTP) -> tuple[int, str]:
    limit = int(destination.max_message_mb * 1024 * 1024)
    source = f"max_message_mb={destination.max_message_mb:g}"
    advertised = (smtp.esmtp_features or {}).get("size", "").strip()
    if advertised.isdigit() and int(advertised) > 0 and int(advertised) < limit:
        limit, source = int(advertised), f"server SIZE {advertised}"
    return limit, source


# ---------------------------------------------------------------- SMTP


def _smtp_error(stage: str, code: int, message: bytes | str, extra: str = "") -> DeliveryError:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return DeliveryError(
        f"SMTP {stage} rejected{extra}: {code} {text}".strip(),
        retryable=400 <= code < 500,
        status_code=code,
    )


def connect(destination, *, timeout: float = DEFAULT_TIMEOUT_S, ssl_context: ssl.SSLContext | None = None):
    """An open, authenticated SMTP session for `destination` (caller quits it)."""
    password = None
    if destination.password_env:
        password = read_env_secret(
            destination.password_env, f"password_env of destination {destination.name}"
        )
    local_hostname = socket.gethostname() or "localhost"
    if destination.security == "ssl":
        ctx = ssl_context or ssl.create_default_context()
        smtp = smtplib.SMTP_SSL(
            destination.host, destination.port, local_hostname=local_hostname, timeout=timeout,
            context=ctx,
        )
    else:
        smtp = smtplib.SMTP(destination.host, destination.port, local_hostname=local_hostname, timeout=timeout)
    try:
        smtp.ehlo()
        if destination.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    f"server {destination.host}:{destination.port} does not offer STARTTLS "
                    "(security: starttls); refusing to send in clear text",
                    retryable=False,
                )
            smtp.starttls(context=ssl_context or ssl.create_default_context())
            smtp.ehlo()
        if destination.username:
            smtp.login(destination.username, password or "")
    except BaseException:
        _quit(smtp)
        raise
    return smtp


def _quit(smtp) -> None:
    try:
        smtp.quit()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        try:
            smtp.close()
        except Exception:  # noqa: BLE001
            pass


def transmit(
    smtp: smtplib.SMTP,
    sender: str,
    recipient: str,
    raw: bytes,
    on_transmit: Callable[[], None] | None = None,
) -> SendResult:
    """MAIL FROM, RCPT TO one address, DATA; returns the server's final reply.

    DATA is spelled out (smtplib's `data` in steps) so that a failure before the message's end
    (nothing delivered) is told apart from a lost reply after it (outcome unknown), and so that
    `on_transmit` runs right before the message goes out.
    """
    options = [f"SIZE={len(raw)}"] if smtp.has_extn("size") else []
    code, resp = smtp.mail(sender, options)
    if code != 250:
        smtp.rset()
        raise _smtp_error("MAIL FROM", code, resp)
    code, resp = smtp.rcpt(recipient)
    if code not in (250, 251):
        smtp.rset()
        raise _smtp_error("RCPT TO", code, resp, f" for recipient {recipient}")
    code, resp = smtp.docmd("DATA")
    if code != 354:
        smtp.rset()
        raise _smtp_error("DATA", code, resp)
    if on_transmit is not None:
        on_transmit()
    body = re.sub(rb"(?m)^\.", b"..", raw)  # dot-stuffing (RFC 5321 4.5.2)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    smtp.send(body + b".\r\n")
    try:
        code, resp = smtp.getreply()
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"SMTP connection lost after the message was sent, before the server's reply "
            f"({type(exc).__name__}); outcome unknown",
            retryable=True, outcome_unknown=True,
        ) from None
    if code != 250:
        raise _smtp_error("message data", code, resp)
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return SendResult(f"{code} {text}")


def classify_exception(exc: BaseException) -> DeliveryError:
    """Map smtplib and socket errors to a DeliveryError (secrets never in the text)."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{addr}: {c} {m.decode('utf-8', 'replace') if isinstance(m, bytes) else m}"
                            for addr, (c, m) in exc.recipients.items())
        codes = [c for c, _ in exc.recipients.values()]
        return DeliveryError(f"SMTP recipient refused: {refused}",
                             retryable=all(400 <= c < 500 for c in codes))
    if isinstance(exc, smtplib.SMTPResponseException):
        stage = "authentication" if isinstance(exc, smtplib.SMTPAuthenticationError) else "command"
        return _smtp_error(stage, exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"SMTP server does not support a required extension: {exc}", retryable=False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"TLS certificate verification failed: {exc.verify_message}", retryable=False)
    if isinstance(exc, (smtplib.SMTPException, OSError)):
        return DeliveryError(f"SMTP connection problem: {type(exc).__name__}: {exc}", retryable=True)
    return DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)


def send_email(
    destination,
    publication: Publication,
    recipient: str,
    *,
    row_id: str,
    now: datetime,
    timeout: float | None = None,
    ssl_context: ssl.SSLContext | None = None,
    on_transmit: Callable[[], None] | None = None,
) -> SendResult:
    """Send the publication to one recipient; raises DeliveryError on failure."""
    render_subject(destination.subject, publication)  # bad template: fail before connecting
    try:
        run_url = run_link(publication.run_id)
    except ValueError as exc:  # a malformed setting in the environment
        raise ConfigurationError(str(exc)) from None
    try:
        smtp = connect(destination, timeout=timeout or destination.timeout_s, ssl_context=ssl_context)
    except Exception as exc:  # noqa: BLE001 - classified below
        raise classify_exception(exc) from None
    try:
        limit, source = _size_limit(destination, smtp)
        raw = _fitting_message(destination, publication, row_id, now, limit, source, run_url)
        return transmit(smtp, destination.from_address, recipient, raw, on_transmit)
    except Exception as exc:  # noqa: BLE001
        raise classify_exception(exc) from None
    finally:
        _quit(smtp)


def _fitting_message(destination, publication: Publication, row_id: str, now: datetime, limit: int,
                     source: str, run_url: str | None) -> bytes:
    """The message bytes within `limit`: everything attached when it fits, else (oversize=link)
    the files of plan_attachments, dropping the last one while the built message is too big."""
    def build(**kw) -> bytes:
        return build_message(destination, publication, row_id=row_id, now=now, run_url=run_url,
                             **kw).as_bytes()

    encoded = estimate_encoded_size(publication)
    if encoded <= limit + 65536:
        raw = build()
        if len(raw) <= limit:
            return raw
        encoded = len(raw)
    if destination.oversize == "fail":
        raise DeliveryError(
            f"message of {encoded} bytes with attachments exceeds the limit of {limit} "
            f"bytes ({source}) and oversize is 'fail'",
            retryable=False,
        )
    attach = plan_attachments(publication, limit)
    link_for = publication.link_for
    links = {f.filename: link_for(f.filename) if link_for is not None else None
             for f in publication.files if f.filename not in attach}
    while True:
        left_out = [f.filename for f in publication.files if f.filename not in attach]
        note = (
            f"These files are not attached: {', '.join(left_out)}. With every file attached this message would be "
            f"{human_size(encoded)}, over the limit of {human_size(limit)} ({source})."
        )
        raw = build(attach=attach, links=links, oversize_note=note)
        if len(raw) <= limit:
            return raw
        if not attach:
            raise DeliveryError(
                f"even without attachments the message ({len(raw)} bytes) exceeds the limit "
                f"of {limit} bytes ({source})",
                retryable=False,
            )
        dropped = attach.pop()
        links[dropped] = link_for(dropped) if link_for is not None else None


def send_plain_email(
    destination,
    recipient: str,
    *,
    subject: str,
    text: str,
    message_id: str,
    now: datetime,
    timeout: float | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> SendResult:
    """A text-only notification (used by alerts) to one recipient."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["Subject"] = " ".join(subject.split())
    msg["From"] = destination.from_address
    msg["To"] = ", ".join(destination.to)
    if destination.cc:
        msg["Cc"] = ", ".join(destination.cc)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message_id}@{_domain(destination.from_address)}>"
    msg.set_content(text)
    raw = msg.as_bytes()
    try:
        smtp = connect(destination, timeout=timeout or destination.timeout_s, ssl_context=ssl_context)
    except Exception as exc:  # noqa: BLE001
        raise classify_exception(exc) from None
    try:
        return transmit(smtp, destination.from_address, recipient, raw)
    except Exception as exc:  # noqa: BLE001
        raise classify_exception(exc) from None
    finally:
        _quit(smtp)
