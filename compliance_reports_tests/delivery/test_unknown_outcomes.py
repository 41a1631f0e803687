"""Unknown outcomes: the receiver may have the message although the sender could not tell.

Such an attempt is recorded as unknown, retried with the same id (webhook-id / Idempotency-Key,
Message-ID) so that receivers honouring it drop the copy, and the row says possible_duplicate.
"""

from __future__ import annotations

import asyncio
import email
import signal
import subprocess
import sys
import time
from pathlib import Path

from compliance_reports.config.models import EmailDestination, WebhookDestination
from compliance_reports.delivery import ledger
from compliance_reports.delivery.dispatcher import deliver_publication, retry_due
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry
from compliance_reports_tests.peers import SMTPPeer, SMTPRecorder, free_port

ROOT = Path(__file__).resolve().parents[2]

SEND_THEN_DIE = """
import sys, time, requests
from compliance_reports.db.engine import make_engine
from compliance_reports.delivery import ledger
engine = make_engine(sys.argv[1])
row_id = sys.argv[2]
claim = ledger.claim(engine, row_id, float(sys.argv[4]))
assert ledger.mark_transmitting(engine, row_id, claim.attempt)
requests.post(sys.argv[3], data=b"{}", headers={"Idempotency-Key": row_id, "webhook-id": row_id}, timeout=5)
print("sent", flush=True)
time.sleep(120)  # killed here: after the receiver accepted, before the outcome is recorded
"""


def test_webhook_answering_after_the_client_timeout_is_resent_with_the_same_key(engine, http_factory, publication, clock):
    def late(request):
        time.sleep(3.0)  # the receiver accepted the request but answers after the client gave up
        return 200

    peer = http_factory(script=[late])
    dest = WebhookDestination.model_validate({"type": "webhook", "name": "siem", "url": peer.url, **LOCAL_RECEIVER,
                                              "timeout_s": 1.0, "retry": fast_retry().model_dump()})
    (outcome,) = deliver_publication(engine, publication, [dest], now_fn=clock.now, sleep_fn=clock.sleep)
    assert outcome.status == "sent" and outcome.attempts == 2 and outcome.possible_duplicate
    assert len(peer.requests) == 2  # one copy more at a receiver that ignores the key...
    assert {r.headers["Idempotency-Key"] for r in peer.requests} == {outcome.row_id}  # ...same key
    assert {r.headers["webhook-id"] for r in peer.requests} == {outcome.row_id}
    row = ledger.get_row(engine, outcome.row_id)
    assert row["status"] == "sent" and row["possible_duplicate"] is True
    assert "outcome unknown" in row["last_error"] and "ReadTimeout" in row["last_error"]


def test_refused_connection_is_a_known_failure_not_a_possible_duplicate(engine, publication, clock):
    dest = WebhookDestination.model_validate({"type": "webhook", "name": "siem",
                                              "url": f"http://127.0.0.1:{free_port()}/hook", **LOCAL_RECEIVER,
                                              "retry": fast_retry().model_dump()})
    (outcome,) = deliver_publication(engine, publication, [dest], now_fn=clock.now, sleep_fn=clock.sleep)
    assert outcome.status == "failed" and not outcome.possible_duplicate
    assert ledger.get_row(engine, outcome.row_id)["possible_duplicate"] is False


class SlowFirstReply(SMTPRecorder):
    """Accepts every message; the first 250 comes after the client's timeout (the reply is lost)."""

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == 1:
            await asyncio.sleep(4.0)
        return reply


def test_smtp_reply_lost_after_the_message_is_resent_with_the_same_message_id(engine, publication, clock):
    from aiosmtpd.controller import Controller

    recorder = SlowFirstReply()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        peer = SMTPPeer("127.0.0.1", controller.port, recorder, controller)
        dest = EmailDestination.model_validate({
            "type": "email", "name": "officers", "host": peer.host, "port": peer.port, "security": "none",
            "from": "reports@example.org", "to": ["alice@example.org"], "timeout_s": 1.5,
            "retry": fast_retry().model_dump()})
        (outcome,) = deliver_publication(engine, publication, [dest], now_fn=clock.now, sleep_fn=clock.sleep)
    finally:
        controller.stop()
    assert outcome.status == "sent" and outcome.attempts == 2 and outcome.possible_duplicate
    assert [m["rcpt_tos"] for m in peer.messages] == [["alice@example.org"]] * 2
    ids = {email.message_from_bytes(m["data"])["Message-ID"] for m in peer.messages}
    assert ids == {f"<{outcome.row_id}@example.org>"}
    assert "outcome unknown" in ledger.get_row(engine, outcome.row_id)["last_error"]


def test_worker_killed_after_sending_is_resent_with_the_same_key_and_flagged(engine, http_factory, publication):
    peer = http_factory()
    dest = WebhookDestination.model_validate({"type": "webhook", "name": "siem", "url": peer.url, **LOCAL_RECEIVER,
                                              "retry": fast_retry().model_dump()})
    (row_id,) = ledger.ensure_rows(engine, publication, dest, [peer.url])
    url = engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen([sys.executable, "-c", SEND_THEN_DIE, url, row_id, peer.url, "1.0"],
                            stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == b"sent"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert ledger.get_row(engine, row_id)["status"] == "sending"
    time.sleep(1.1)  # the dead worker's lease runs out (database clock)

    (swept,) = retry_due(engine, lambda *key: publication, {"siem": dest}.__getitem__)
    assert swept.status == "sent" and swept.attempts == 2 and swept.possible_duplicate
    assert len(peer.requests) == 2
    assert {r.headers["Idempotency-Key"] for r in peer.requests} == {row_id}
    row = ledger.get_row(engine, row_id)
    assert row["possible_duplicate"] is True and "after sending" in row["last_error"]
    assert retry_due(engine, lambda *key: publication, {"siem": dest}.__getitem__) == []
    assert len(peer.requests) == 2
