"""Fault matrix: a delivery worker is killed with SIGKILL after its claim or after its send.

The worker is a real process running the real delivery path (`deliver_publication`: claim,
send through the channel, record) on the shared ledger; the test kills it at the chosen moment
and runs the retry sweep once the worker's lease has expired.
- After the claim, before the receiver got anything: the mail server accepts the connection
  but never greets, so the worker waits inside the SMTP handshake when it is killed; then the
  real server comes up on that port.
- After the send, before the outcome was recorded: the HTTP receiver has the whole request and
  holds its reply when the worker is killed.

Budget: about 15 s.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from compliance_reports.artifacts.publication import Publication
from compliance_reports.config.models import parse_destination
from compliance_reports.delivery import ledger
from compliance_reports.delivery.dispatcher import retry_due
from compliance_reports_tests.delivery.conftest import make_publication
from compliance_reports_tests.e2e.faults.pipeline import copies_by_key, mail, mails_by_recipient, webhook
from compliance_reports_tests.e2e.stack import wait_until
from compliance_reports_tests.peers import SMTPRecorder, free_port

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
LEASE_S = 2.0

WORKER = """
import json, sys
from compliance_reports.artifacts.publication import Publication
from compliance_reports.config.models import parse_destination
from compliance_reports.db.engine import make_engine
from compliance_reports.delivery.dispatcher import deliver_publication
url, manifest, destination, lease = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4])
pub = Publication.from_manifest(manifest, report_id="hipaa-weekly", organization_id="org-1",
                                report_name="HIPAA weekly audit trail", report_type="hipaa_audit_trail",
                                period="2026-11-23", run_id="run-0001")
print("delivering", flush=True)
deliver_publication(make_engine(url), pub, [parse_destination(destination)], lease_s=lease, in_run_retries=False)
print("finished", flush=True)
"""


def _load(publication: Publication):
    def load(report_id, period, sha):
        return Publication.from_manifest(publication.manifest_path, report_id=report_id, organization_id="org-1",
                                         report_name=publication.report_name, report_type=publication.report_type,
                                         period=period, run_id=publication.run_id)

    return load


def _start_worker(engine, publication, destination: dict) -> subprocess.Popen:
    url = engine.url.render_as_string(hide_password=False)
    return subprocess.Popen([sys.executable, "-c", WORKER, url, str(publication.manifest_path),
                             json.dumps(destination), str(LEASE_S)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)


def _kill(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    assert worker.returncode == -signal.SIGKILL


def _sweep_after_lease(engine, publication, destination: dict):
    time.sleep(LEASE_S + 0.2)
    dest = parse_destination(destination)
    return retry_due(engine, _load(publication), {dest.name: dest}.__getitem__)


def _only_row(engine) -> dict:
    [row] = ledger.list_rows(engine)
    return row


@pytest.fixture
def publication(tmp_path):
    return make_publication(tmp_path / "artifacts" / "hipaa-weekly" / "2026-11-23")


def test_kill_9_after_claim_is_delivered_once_after_the_lease(engine, publication):
    port = free_port()
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    silent.bind(("127.0.0.1", port))
    silent.listen(5)  # accepts connections, never greets: the worker waits in the handshake
    destination = mail("mail", port, ["officer@example.org"])
    worker = _start_worker(engine, publication, destination)
    try:
        wait_until("the worker's claim", lambda: ledger.list_rows(engine)
                   and _only_row(engine)["status"] == "sending", timeout=30, interval=0.1)
        conn, _ = silent.accept()  # the worker is connected and waiting for the greeting
    finally:
        _kill(worker)
    conn.close()
    silent.close()
    assert worker.stdout.read().decode().strip() == "delivering"  # killed before it finished

    recorder = SMTPRecorder()
    server = Controller(recorder, hostname="127.0.0.1", port=port)
    server.start()
    try:
        assert retry_due(engine, _load(publication), lambda name: parse_destination(destination)) == []  # leased
        [swept] = _sweep_after_lease(engine, publication, destination)
    finally:
        server.stop()
    assert (swept.status, swept.attempts) == ("sent", 2)
    assert mails_by_recipient(recorder) == {"officer@example.org": 1}
    assert _only_row(engine)["status"] == "sent"


def _kill_after_send(engine, publication, http_factory):
    release = threading.Event()

    def hold_the_reply(request):
        release.wait(30)
        return 200

    siem = http_factory(script=[hold_the_reply])
    destination = webhook("siem", siem.url)
    worker = _start_worker(engine, publication, destination)
    try:
        wait_until("the receiver to have the request", lambda: siem.requests, timeout=30, interval=0.1)
    finally:
        _kill(worker)
        release.set()
    swept = _sweep_after_lease(engine, publication, destination)
    return siem, swept


def test_kill_9_after_send_resends_once_with_the_same_idempotency_key(engine, publication, http_factory):
    siem, swept = _kill_after_send(engine, publication, http_factory)
    row = _only_row(engine)
    assert [(o.status, o.attempts) for o in swept] == [("sent", 2)]
    # At most one extra copy, carrying the same Idempotency-Key / webhook-id: a receiver that
    # honours the key keeps one; the ledger holds one delivery.
    assert copies_by_key(siem) == {row["id"]: 2}
    assert {r.headers["webhook-id"] for r in siem.requests} == {row["id"]}
    assert row["status"] == "sent"


def test_kill_9_after_send_marks_the_row_possible_duplicate(engine, publication, http_factory):
    _kill_after_send(engine, publication, http_factory)
    row = _only_row(engine)
    assert row.get("possible_duplicate") or row["status"] == "possible_duplicate" or "possible_duplicate" in " ".join(
        str(v) for v in row.values() if v is not None)
