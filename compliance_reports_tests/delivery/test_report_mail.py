"""The report mail people read: subject, both body parts, attachments and links, against a real
SMTP server (aiosmtpd), a real artifact store, a local storage root and moto in server mode."""

from __future__ import annotations

import email
import hashlib
import json
import uuid
from email import policy
from pathlib import Path

import pytest
import requests

from compliance_reports.artifacts.store import LocalArtifactStore
from compliance_reports.config.models import EmailDestination, ReportConfig, StorageDestination
from compliance_reports.delivery.dispatcher import deliver_publication
from compliance_reports.delivery.email_channel import render_subject
from compliance_reports.delivery.mail_content import render_bodies
from compliance_reports.delivery.storage_channel import s3_client
from compliance_reports.exporters.publishing import export_and_store, fetch_publication
from compliance_reports.reports import document as rd
from compliance_reports.reports.digest import digest_document
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry, make_publication
from compliance_reports_tests.exporters.sample import write_events

UI_URL = "https://dagster.example.org"
PUBLIC = "https://files.example.org/compliance"
# Event content that the document holds and a mail body must never show.
SECRETS = ("usr-secret-001", "Patient/p-SECRET-9", "fhir.patient.read", "read 412 records of ward 7")


def mail_document(period: str = "2026-10-01", frequency: str = "monthly", *, critical: int = 2,
                  warnings: int = 3, name: str = "St Mary's HIPAA audit trail") -> dict:
    header = {field: None for field in rd.HEADER_FIELDS}
    header.update({
        "organization_id": "org-stmarys", "report_id": "stmarys-hipaa-monthly", "report_name": name,
        "report_type": "hipaa_audit_trail", "frequency": frequency, "period": period,
        "timezone": "America/New_York", "generated_at": "2026-11-01T10:00:00Z", "run_id": "run-0001",
        "event_count": 14304, "criteria": {},
    })
    findings = (
        [rd.finding("critical", "bulk_access", f"Bulk PHI access by usr-secret-001 #{i}",
                    "usr-secret-001 read 412 records of ward 7", [1, 2]) for i in range(critical)]
        + [rd.finding("warning", "failed_logins", "Repeated failed logins: usr-secret-001",
                      "failed 9 times", [3]) for _ in range(warnings)]
        + [rd.finding("info", "new_device", "New device for usr-secret-001", "x", [4])]
    )
    document = {
        "schema_version": rd.SCHEMA_VERSION,
        "header": header,
        "summary": [
            {"label": "PHI access events", "value": 14304, "change": 120, "change_pct": 0.85},
            {"label": "Failed logins", "value": 343, "change": -12, "change_pct": -3.38},
            {"label": "Integrity", "value": "VERIFIED"},
        ],
        "sections": [
            rd.findings("anomalies", "Anomalies", findings),
            rd.table("privileged_changes", "Privileged changes", [("principal_id", "Principal"),
                     ("action", "Action"), ("resource", "Resource")],
                     [{"principal_id": "usr-secret-001", "action": "fhir.patient.read",
                       "resource": "Patient/p-SECRET-9"}]),
        ],
        "data": {
            "integrity": {"verdict": "VERIFIED", "reason": "all 14304 row(s) in the window verified"},
            "coverage": {"covers_whole_window": True},
        },
    }
    rd.validate_document(document)
    return document


def report_config(formats) -> ReportConfig:
    return ReportConfig.model_validate({
        "id": "stmarys-hipaa-monthly", "name": "St Mary's HIPAA audit trail",
        "organization_id": "org-stmarys", "report_type": "hipaa_audit_trail",
        "schedule": {"frequency": "monthly", "time": "06:00", "timezone": "America/New_York",
                     "day_of_month": 1},
        "formats": formats,
    })


def stored_publication(root: Path, document: dict, formats: list[str], folder: Path):
    """Export and store `document` like the publish job, then fetch it for delivery."""
    store = LocalArtifactStore(root / "artifacts", root=root)
    report = report_config(formats)
    parts = ("org-stmarys", report.id, document["header"]["period"], "run-0001")
    doc_location = store.put_bytes((*parts, "report.json"), json.dumps(document).encode())
    events_location = store.put_file((*parts, "events.parquet"), write_events(folder / "events.parquet", n=30))
    published = export_and_store(store, report, parts[2], parts[3], doc_location, events_location,
                                 folder / "scratch", None)
    return store, published, fetch_publication(store, published, report, folder / "fetched")


def email_dest(peer, **overrides) -> EmailDestination:
    data = {
        "type": "email", "name": "officers", "host": peer.host, "port": peer.port, "security": "none",
        "from": "reports@example.org", "to": ["officer@example.org"],
        "retry": fast_retry().model_dump(),
    }
    data.update(overrides)
    return EmailDestination.model_validate(data)


def local_dest() -> StorageDestination:
    return StorageDestination.model_validate({
        "type": "storage", "name": "archive", "provider": "local", "base_path": "delivered",
        "key_template": "{organization_id}/{report_id}/{period}/{filename}",
        "retry": fast_retry().model_dump(),
    })


@pytest.fixture
def deliver(engine, clock):
    def run(publication, dests):
        return deliver_publication(engine, publication, dests, now_fn=clock.now, sleep_fn=clock.sleep)

    return run


def received(peer):
    (raw,) = peer.messages
    msg = email.message_from_bytes(raw["data"], policy=policy.default)
    return msg, msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def assert_aggregates_only(text: str, html: str, *paths: Path) -> None:
    for body in (text, html):
        for secret in SECRETS:
            assert secret not in body
        for path in paths:
            assert str(path) not in body


def test_subject_both_parts_figures_findings_verdict_and_run_link(
        smtp_server, deliver, storage_root, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_UI_URL", UI_URL)
    _, _, pub = stored_publication(storage_root, mail_document(), ["pdf", "csv", "xlsx"], tmp_path)
    (outcome,) = deliver(pub, [email_dest(smtp_server)])
    assert outcome.status == "sent"
    msg, text, html = received(smtp_server)

    assert msg["Subject"] == "[2 critical] St Mary's HIPAA audit trail - October 2026"
    alternative = next(p for p in msg.iter_parts() if p.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    for body in (text, html):
        assert "October 2026" in body and "America/New_York" in body
        assert "14,304" in body and "+120 (+0.8%)" in body and "-12 (-3.4%)" in body
        assert "2 critical, 3 warning, 1 info" in body
        assert "bulk_access" in body and "failed_logins (3)" in body
        assert "VERIFIED" in body and "all 14304 row(s) in the window verified" in body
        assert "cover the whole window" in body
        for f in pub.files:
            assert f.filename in body and f.sha256 in body
    assert f"Run in the Dagster UI: {UI_URL}/runs/run-0001" in text
    assert f'<a href="{UI_URL}/runs/run-0001">' in html
    attachments = {p.get_filename(): p.get_payload(decode=True) for p in msg.iter_attachments()}
    assert set(attachments) == {f.filename for f in pub.files}
    assert {f.format for f in pub.files} == {"pdf", "csv", "xlsx"}
    for f in pub.files:
        assert hashlib.sha256(attachments[f.filename]).hexdigest() == f.sha256
    assert_aggregates_only(text, html, storage_root, tmp_path)


def test_pdf_attached_and_the_large_file_linked_under_the_public_base_url(
        smtp_server, deliver, storage_root, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_PUBLIC_BASE_URL", PUBLIC + "/")
    doc = mail_document("2026-11-23", "weekly")
    pub = make_publication(tmp_path / "pub", {"report.pdf": 3000, "events.csv": 80_000, "report.json": 2000},
                           digest=digest_document(doc))
    dest = email_dest(smtp_server, max_message_mb=0.05)
    outcomes = deliver(pub, [local_dest(), dest])
    assert [o.status for o in outcomes] == ["sent", "sent"]
    msg, text, html = received(smtp_server)
    assert msg["Subject"] == "[2 critical] HIPAA weekly audit trail - Week 48 (23-29 November 2026)"
    assert [p.get_filename() for p in msg.iter_attachments()] == ["report.pdf", "report.json"]
    # listed like they are attached: the PDF, then the smallest files
    assert text.index("- report.pdf (") < text.index("- report.json (") < text.index("- events.csv (")
    url = f"{PUBLIC}/delivered/org-1/hipaa-weekly/2026-11-23/events.csv"
    assert f"download: {url}" in text and f'href="{url}"' in html
    assert "not attached: events.csv" in text and "max_message_mb=0.05" in text
    # the link names the delivered copy: the URL path below the base is its path below the root
    served = storage_root / url.removeprefix(PUBLIC + "/")
    assert hashlib.sha256(served.read_bytes()).hexdigest() == pub.files[1].sha256
    assert_aggregates_only(text, html, storage_root, tmp_path)


def test_without_any_url_the_file_is_named_for_the_operator_and_the_mail_still_goes(
        smtp_server, deliver, storage_root, tmp_path, monkeypatch):
    monkeypatch.delenv("COMPLIANCE_PUBLIC_BASE_URL", raising=False)
    pub = make_publication(tmp_path / "pub", {"report.pdf": 3000, "events.csv": 80_000},
                           digest=digest_document(mail_document("2026-11-23", "weekly")))
    outcomes = deliver(pub, [local_dest(), email_dest(smtp_server, max_message_mb=0.05)])
    assert [o.status for o in outcomes] == ["sent", "sent"]
    msg, text, html = received(smtp_server)
    assert [p.get_filename() for p in msg.iter_attachments()] == ["report.pdf"]
    csv = pub.files[1]
    block = text[text.index(f"- {csv.filename}"):]
    assert csv.sha256 in block and "ask the operator of compliance-reports" in block.splitlines()[2]
    assert "ask the operator" in html and "download:" not in text
    assert_aggregates_only(text, html, storage_root, tmp_path)


def test_s3_storage_gives_presigned_links_that_download_the_file(
        smtp_server, deliver, tmp_path, moto_s3_endpoint, monkeypatch):
    monkeypatch.setenv("CR_TEST_S3_KEY", "testing")
    monkeypatch.setenv("CR_TEST_S3_SECRET", "testing")
    bucket = f"mail-{uuid.uuid4().hex[:8]}"
    s3 = StorageDestination.model_validate({
        "type": "storage", "name": "bucket", "provider": "s3", "bucket": bucket, "base_path": "reports",
        "endpoint_url": moto_s3_endpoint, "region": "us-east-1", "access_key_id_env": "CR_TEST_S3_KEY",
        "secret_access_key_env": "CR_TEST_S3_SECRET", "retry": fast_retry().model_dump(), **LOCAL_RECEIVER,
    })
    s3_client(s3).create_bucket(Bucket=bucket)
    pub = make_publication(tmp_path / "pub", {"report.pdf": 3000, "events.csv": 80_000},
                           digest=digest_document(mail_document("2026-11-23", "weekly")))
    outcomes = deliver(pub, [s3, email_dest(smtp_server, max_message_mb=0.05)])
    assert [o.status for o in outcomes] == ["sent", "sent"]
    _, text, html = received(smtp_server)
    line = next(l for l in text.splitlines() if l.strip().startswith("download: "))
    url = line.strip().removeprefix("download: ")
    assert url.startswith(f"{moto_s3_endpoint}/{bucket}/reports/") and ("X-Amz-Signature=" in url or "Signature=" in url)
    assert url.replace("&", "&amp;") in html
    got = requests.get(url, timeout=10)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == pub.files[1].sha256
    assert_aggregates_only(text, html, tmp_path)


def test_severity_prefix_and_subject_template(tmp_path):
    template = "{report_name} - {period_label} [{period}]"
    cases = [
        (mail_document(critical=2), "[2 critical] St Mary's HIPAA audit trail - October 2026 [2026-10-01]"),
        (mail_document(critical=0, warnings=3), "[3 warnings] St Mary's HIPAA audit trail - October 2026 [2026-10-01]"),
        (mail_document(critical=0, warnings=1), "[1 warning] St Mary's HIPAA audit trail - October 2026 [2026-10-01]"),
        (mail_document("2026-07-01", "quarterly", critical=0, warnings=0), "St Mary's HIPAA audit trail - Q3 2026 [2026-07-01]"),
    ]
    for document, subject in cases:
        pub = make_publication(tmp_path / "p", report_name="St Mary's HIPAA audit trail",
                               period=document["header"]["period"], digest=digest_document(document))
        assert render_subject(template, pub) == subject
    # a stored set without a document: the template alone, the period key as the label
    pub = make_publication(tmp_path / "p")
    assert render_subject(template, pub) == "HIPAA weekly audit trail - 2026-11-23 [2026-11-23]"


def test_html_is_escaped_and_text_has_no_markup(tmp_path):
    name = "<b>Ward</b> & \"Co\" <script>x()</script>"
    doc = mail_document(name=name)
    pub = make_publication(tmp_path / "p", report_name=name, digest=digest_document(doc))
    text, html = render_bodies(pub, [], run_url=f"{UI_URL}/runs/a?b=<c>")
    assert "<script>" not in html and "<b>Ward</b>" not in html
    assert "&lt;b&gt;Ward&lt;/b&gt; &amp; &#34;Co&#34; &lt;script&gt;" in html
    assert 'href="https://dagster.example.org/runs/a?b=&lt;c&gt;"' in html
    assert text.startswith(f"{name} - October 2026 (America/New_York)\n")


def test_fetch_refuses_a_changed_report_document(storage_root, tmp_path):
    store, published, pub = stored_publication(storage_root, mail_document(), ["json"], tmp_path)
    assert pub.digest == digest_document(mail_document())
    document_path = Path(published.manifest_location).parent / "report.json"
    document_path.write_text(json.dumps(mail_document(critical=0)))
    with pytest.raises(ValueError, match="report document changed"):
        fetch_publication(store, published, report_config(["json"]), tmp_path / "again")
