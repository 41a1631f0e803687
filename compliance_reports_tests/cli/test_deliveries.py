"""`deliveries list|retry` against a migrated SQLite database."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from compliance_reports.cli.deliveries import deliveries
from compliance_reports.config.models import WebhookDestination
from compliance_reports.delivery import ledger
from compliance_reports_tests.delivery.conftest import (  # noqa: F401 - fixtures shared with delivery tests
    clock,
    fast_retry,
    publication,
)


@pytest.fixture
def cli(engine, tmp_path):
    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(deliveries, list(args), env={"COMPLIANCE_DB_URL": url,
                                                          "COMPLIANCE_DATA_DIR": str(tmp_path)})

    return run


@pytest.fixture
def rows(engine, publication, clock):
    dest = WebhookDestination(type="webhook", name="hook", url="https://example.test/hook", retry=fast_retry())
    sent, dead, failed = ledger.ensure_rows(engine, publication, dest, ["r-sent", "r-dead", "r-failed"], 3,
                                            now=clock.now())
    for row_id in (sent, dead, failed):
        ledger.claim(engine, row_id, 60, clock.now())
    ledger.mark_sent(engine, sent, "HTTP 200 OK", clock.now())
    ledger.mark_failed(engine, dead, "HTTP 400 Bad Request", clock.now(), dest.retry, False, None)
    ledger.mark_failed(engine, failed, "HTTP 503", clock.now(), dest.retry, True, 3600)
    return {"sent": sent, "dead": dead, "failed": failed}


def test_list(cli, rows):
    result = cli("list")
    assert result.exit_code == 0, result.output
    assert "STATUS" in result.output and rows["dead"] in result.output and "HTTP 400" in result.output
    data = json.loads(cli("list", "--json").output)
    assert {r["id"]: r["status"] for r in data} == {v: k for k, v in rows.items()}
    only_dead = json.loads(cli("list", "--json", "--status", "dead").output)
    assert [r["id"] for r in only_dead] == [rows["dead"]]
    assert json.loads(cli("list", "--json", "--report", "other").output) == []
    assert cli("list", "--status", "bogus").exit_code == 2


def test_retry(cli, rows, engine):
    result = cli("retry", "--id", rows["dead"])
    assert result.exit_code == 0, result.output
    assert "dead -> failed" in result.output and "attempts so far 1" in result.output
    row = ledger.get_row(engine, rows["dead"])
    assert row["status"] == "failed" and row["attempts"] == 1 and row["next_attempt_at"] is not None

    sent = cli("retry", "--id", rows["sent"])
    assert sent.exit_code == 1 and "never sent again" in sent.output
    assert ledger.get_row(engine, rows["sent"])["status"] == "sent"
    assert cli("retry", "--id", "nope").exit_code == 2

    result = json.loads(cli("retry", "--json").output)
    assert sorted(r["id"] for r in result) == sorted([rows["dead"], rows["failed"]])


def test_list_since_and_limit(cli, engine, publication, clock):
    from datetime import timedelta

    dest = WebhookDestination(type="webhook", name="hook", url="https://example.test/hook", retry=fast_retry())
    start = clock.now()
    ledger.ensure_rows(engine, publication, dest, ["old-1", "old-2"], 3, now=start)
    later = start + timedelta(days=3)
    ledger.ensure_rows(engine, publication, dest, ["new-1", "new-2"], 3, now=later)
    recipients = lambda *args: [r["recipient"] for r in json.loads(cli("list", "--json", *args).output)]  # noqa: E731
    assert sorted(recipients()) == ["new-1", "new-2", "old-1", "old-2"]
    since = (start + timedelta(days=1)).date().isoformat()
    assert sorted(recipients("--since", since)) == ["new-1", "new-2"]
    assert recipients("--since", later.strftime("%Y-%m-%dT%H:%M:%S")) == recipients("--since", since)
    newest_two = recipients("--limit", "2")
    assert sorted(newest_two) == ["new-1", "new-2"]
    assert len(recipients("--limit", "3")) == 3 and set(recipients("--limit", "3")) >= {"new-1", "new-2"}
    assert recipients("--since", since, "--limit", "1")[0] in ("new-1", "new-2")
    assert cli("list", "--limit", "0").exit_code == 2
    bad = cli("list", "--since", "yesterday")
    assert bad.exit_code == 2 and "--since" in bad.output
