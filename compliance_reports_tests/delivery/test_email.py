"""Email delivery against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import base64
import email
from email import policy

import pytest

from compliance_reports.config.models import EmailDestination
from compliance_reports.delivery import ledger
from compliance_reports.delivery.dispatcher import deliver_publication
from compliance_reports.delivery.email_channel import render_subject
from compliance_reports.delivery.errors import ConfigurationError
from compliance_reports_tests.delivery.conftest import fast_retry, make_publication


def email_dest(peer, **overrides) -> EmailDestination:
    data = {
        "type": "email", "name": "officers", "host": peer.host, "port": peer.port,
        "security": "none", "from": "reports@example.org",
        "to": ["alice@example.org", "bob@example.org"], "cc": ["carol@example.org"],
        "bcc": ["auditor@example.org"],
        "subject": "Compliance report {report_name} ({period}) [{report_id}/{organization_id}]",
        "retry": fast_retry().model_dump(),
    }
    data.update(overrides)
    return EmailDestination.model_validate(data)


def parse(message: dict) -> email.message.EmailMessage:
    return email.message_from_bytes(message["data"], policy=policy.default)


def by_recipient(peer) -> dict[str, dict]:
    out = {}
    for m in peer.messages:
        assert len(m["rcpt_tos"]) == 1, "one envelope recipient per message"
        out[m["rcpt_tos"][0]] = m
    return out


@pytest.fixture
def deliver(engine, clock):
    def run(publication, dests, **kw):
        kw.setdefault("now_fn", clock.now)
        kw.setdefault("sleep_fn", clock.sleep)
        return deliver_publication(engine, publication, dests, **kw)

    return run


def test_mime_structure_headers_and_envelopes(smtp_server, publication, deliver, engine):
    dest = email_dest(smtp_server)
    outcomes = deliver(publication, [dest])
    assert [o.status for o in outcomes] == ["sent"] * 4
    assert sorted(o.recipient for o in outcomes) == sorted(
        ["alice@example.org", "bob@example.org", "carol@example.org", "auditor@example.org"]
    )
    messages = by_recipient(smtp_server)
    assert set(messages) == {o.recipient for o in outcomes}

    for address, raw in messages.items():
        msg = parse(raw)
        assert raw["mail_from"] == "reports@example.org"
        assert msg.get_content_type() == "multipart/mixed"
        assert msg["To"] == "alice@example.org, bob@example.org"
        assert msg["Cc"] == "carol@example.org"
        assert msg["Bcc"] is None and b"auditor@example.org" not in raw["data"].split(b"\r\n\r\n", 1)[0]
        assert msg["Subject"] == (
            "Compliance report HIPAA weekly audit trail (2026-11-23) [hipaa-weekly/org-1]"
        )
        row_id = ledger.delivery_id("hipaa-weekly", "2026-11-23", publication.manifest_sha256, "officers", address)
        assert msg["Message-ID"] == f"<{row_id}@example.org>"
        text = msg.get_body(("plain",)).get_content()
        for needle in ("hipaa-weekly", "2026-11-23", "org-1", "run-0001", publication.manifest_sha256):
            assert needle in text
        for f in publication.files:
            assert f.filename in text and f.sha256 in text
        assert msg.get_body(("html",)) is not None
        attachments = {part.get_filename(): part for part in msg.iter_attachments()}
        assert set(attachments) == {"report.pdf", "events.csv", "report.json"}
        types = {name: part.get_content_type() for name, part in attachments.items()}
        assert types == {"report.pdf": "application/pdf", "events.csv": "text/csv",
                         "report.json": "application/json"}
        for f in publication.files:
            part = attachments[f.filename]
            assert part["Content-Transfer-Encoding"] == "base64"
            assert base64.b64decode(part.get_payload()) == f.path.read_bytes()

    rows = {r["recipient"]: r for r in ledger.list_rows(engine)}
    assert all(r["status"] == "sent" and r["attempts"] == 1 for r in rows.values())
    assert rows["alice@example.org"]["provider_response"].startswith("250 OK queued as Q")


def test_one_refused_recipient_does_not_block_or_resend_the_others(smtp_server, publication, deliver, engine):
    smtp_server.recorder.reject = {"bob@example.org"}
    dest = email_dest(smtp_server, to=["alice@example.org", "bob@example.org"], cc=["carol@example.org"], bcc=[])
    outcomes = {o.recipient: o for o in deliver(publication, [dest])}
    assert outcomes["alice@example.org"].status == "sent"
    assert outcomes["carol@example.org"].status == "sent"
    bad = outcomes["bob@example.org"]
    assert bad.status == "dead" and bad.attempts == 1 and "550" in bad.error
    assert sorted(by_recipient(smtp_server)) == ["alice@example.org", "carol@example.org"]

    again = {o.recipient: o.status for o in deliver(publication, [dest])}
    assert again == {"alice@example.org": "already_sent", "carol@example.org": "already_sent",
                     "bob@example.org": "dead"}
    assert len(smtp_server.messages) == 2
    assert ledger.get_row(engine, bad.row_id)["attempts"] == 1


def test_oversize_sends_links_not_attachments(smtp_server, tmp_path, deliver):
    pub = make_publication(tmp_path / "big", {"report.pdf": 40_000, "events.csv": 30_000})
    pub = pub.with_links(lambda name: f"https://files.example.org/stored/{name}?sig=abc")
    dest = email_dest(smtp_server, to=["alice@example.org"], cc=[], bcc=[], max_message_mb=0.02)
    (outcome,) = deliver(pub, [dest])
    assert outcome.status == "sent"
    (raw,) = smtp_server.messages
    msg = parse(raw)
    assert list(msg.iter_attachments()) == []
    text = msg.get_body(("plain",)).get_content()
    assert "https://files.example.org/stored/report.pdf?sig=abc" in text
    assert "https://files.example.org/stored/events.csv?sig=abc" in text
    assert "not attached" in text and "max_message_mb=0.02" in text
    for f in pub.files:
        assert f.sha256 in text
    assert len(raw["data"]) < 0.02 * 1024 * 1024


def test_oversize_fail_is_loud_and_sends_nothing(smtp_server, tmp_path, deliver):
    pub = make_publication(tmp_path / "big", {"report.pdf": 40_000})
    dest = email_dest(smtp_server, to=["alice@example.org"], cc=[], bcc=[], max_message_mb=0.02, oversize="fail")
    (outcome,) = deliver(pub, [dest])
    assert outcome.status == "dead" and outcome.attempts == 1
    assert "exceeds the limit" in outcome.error and "oversize is 'fail'" in outcome.error
    assert smtp_server.messages == []


def test_oversize_link_without_any_link_names_the_files_instead_of_a_path(smtp_server, tmp_path, deliver):
    pub = make_publication(tmp_path / "big", {"report.pdf": 40_000})
    dest = email_dest(smtp_server, to=["alice@example.org"], cc=[], bcc=[], max_message_mb=0.02)
    (outcome,) = deliver(pub, [dest])
    assert outcome.status == "sent"
    msg = parse(smtp_server.messages[0])
    assert list(msg.iter_attachments()) == []
    text = msg.get_body(("plain",)).get_content()
    assert "report.pdf" in text and pub.files[0].sha256 in text and "ask the operator" in text
    assert str(tmp_path) not in text and str(tmp_path) not in msg.get_body(("html",)).get_content()


def test_server_size_limit_is_honoured(smtp_factory, tmp_path, deliver):
    peer = smtp_factory(data_size_limit=30_000)
    pub = make_publication(tmp_path / "big", {"report.pdf": 40_000}).with_links(lambda n: f"https://l/{n}")
    dest = email_dest(peer, to=["alice@example.org"], cc=[], bcc=[], max_message_mb=10)
    (outcome,) = deliver(pub, [dest])
    assert outcome.status == "sent"
    (raw,) = peer.messages
    assert list(parse(raw).iter_attachments()) == []
    assert "server SIZE 30000" in parse(raw).get_body(("plain",)).get_content()


def test_login_with_password_from_env(smtp_factory, publication, deliver, monkeypatch):
    peer = smtp_factory(auth=True)
    peer.recorder.password = b"pw-from-env-123"
    monkeypatch.setenv("CR_TEST_SMTP_PW", "pw-from-env-123")
    dest = email_dest(peer, to=["alice@example.org"], cc=[], bcc=[], username="mailer", password_env="CR_TEST_SMTP_PW")
    (outcome,) = deliver(publication, [dest])
    assert outcome.status == "sent"
    assert peer.recorder.logins == [(b"mailer", True)]


def test_missing_password_variable_names_it_and_sends_nothing(smtp_factory, publication, deliver, monkeypatch):
    peer = smtp_factory(auth=True)
    monkeypatch.delenv("CR_TEST_SMTP_MISSING", raising=False)
    dest = email_dest(peer, to=["alice@example.org"], cc=[], bcc=[], username="mailer",
                      password_env="CR_TEST_SMTP_MISSING")
    (outcome,) = deliver(publication, [dest])
    assert outcome.status == "dead"
    assert "CR_TEST_SMTP_MISSING" in outcome.error and "not set" in outcome.error
    assert peer.messages == [] and peer.recorder.logins == []


def test_starttls_is_never_downgraded(smtp_server, publication, deliver):
    dest = email_dest(smtp_server, to=["alice@example.org"], cc=[], bcc=[], security="starttls")
    (outcome,) = deliver(publication, [dest])
    assert outcome.status == "dead" and "STARTTLS" in outcome.error
    assert smtp_server.messages == []


def test_connection_refused_is_retried_then_handed_to_the_sweep(publication, deliver, clock):
    from compliance_reports_tests.delivery.conftest import free_port

    class Peer:
        host, port = "127.0.0.1", free_port()

    dest = email_dest(Peer, to=["alice@example.org"], cc=[], bcc=[])
    (outcome,) = deliver(publication, [dest])
    # the in-run budget (max_attempts) ends; the row is not dead: the sweep goes on until give-up
    assert outcome.status == "failed" and outcome.attempts == 3
    assert outcome.next_attempt_at > clock.now()
    assert "connection" in outcome.error.lower()
    assert len(clock.sleeps) == 2


def test_smtp_down_then_up_within_the_give_up_time_is_delivered_once_by_the_sweep(publication, deliver, engine, clock):
    from collections import Counter

    from aiosmtpd.controller import Controller

    from compliance_reports.delivery.dispatcher import retry_due
    from compliance_reports_tests.delivery.conftest import free_port
    from compliance_reports_tests.peers import SMTPRecorder

    class Down:
        host, port = "127.0.0.1", free_port()

    dest = email_dest(Down, to=["alice@example.org", "bob@example.org"], cc=[], bcc=[])
    outcomes = deliver(publication, [dest])
    assert [o.status for o in outcomes] == ["failed", "failed"]  # handed to the sweep, not dead
    load_dest = {"officers": dest}.__getitem__

    clock.advance(3600)  # still down an hour later: the sweep tries, the rows stay failed
    assert {o.status for o in retry_due(engine, lambda *key: publication, load_dest, clock.now())} == {"failed"}

    recorder = SMTPRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=Down.port)
    controller.start()  # the server comes back within the give-up time
    try:
        clock.advance(3600)
        swept = retry_due(engine, lambda *key: publication, load_dest, clock.now())
        assert [o.status for o in swept] == ["sent", "sent"]
        clock.advance(3600)
        assert retry_due(engine, lambda *key: publication, load_dest, clock.now()) == []
    finally:
        controller.stop()
    assert Counter(m["rcpt_tos"][0] for m in recorder.messages) == {"alice@example.org": 1, "bob@example.org": 1}
    rows = ledger.list_rows(engine)
    assert {r["status"] for r in rows} == {"sent"} and all(r["attempts"] == 5 for r in rows)
    assert not any(r["possible_duplicate"] for r in rows)


def test_subject_template_allows_only_known_placeholders(publication):
    assert render_subject("{report_id}\r\nBcc: x@y.z", publication) == "hipaa-weekly Bcc: x@y.z"
    with pytest.raises(ConfigurationError, match=r"\{run_id\}"):
        render_subject("{run_id}", publication)
    with pytest.raises(ConfigurationError):
        render_subject("{report_name.__class__}", publication)
