"""The deployment end to end, with real processes (DESIGN sections 5 and 9, deploy/README.md).

PostgreSQL holds the Dagster instance (deploy/dagster.yaml) and, in a second database, the
application and audit tables. A code server (`dagster code-server start`), the daemon and the
webserver load the code location over gRPC (deploy/workspace.yaml). Mail goes to aiosmtpd,
webhooks to a local HTTP receiver, artifacts and stored deliveries to moto's S3 server.

Configured through the CLI, then left to the daemon:
- a run_now request (e2e-now): report run, publish run, mail with attachments, signed webhook,
  S3 objects with their sha256;
- a slot that falls due during the test (e2e-slot, daily in UTC a couple of minutes ahead);
- a backfill of three periods (e2e-backfill) launched through the webserver's GraphQL API;
- an unschedule (e2e-unsched) while its run waits in the queue (a tag concurrency limit of 0 on
  its report partition tag keeps it QUEUED): the run is cancelled and its due slot is not requested;
- `compliance-reports history` read from the PostgreSQL run storage.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import logging
import math
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import requests
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from compliance_reports.config import store as config_store
from compliance_reports.db.engine import make_engine
from compliance_reports.orchestration.dagster_runs import PERIOD_TAG, REPORT_TAG
from compliance_reports.delivery.webhook_channel import verify_signature
from compliance_reports_tests.e2e.stack import (
    BIN,
    GraphQL,
    ProcessGroup,
    clean_environment,
    run_cli,
    run_command,
    wait_until,
)
from compliance_reports_tests.peers import free_port

REPO = Path(__file__).resolve().parents[2]
ORG = "org-stmarys"  # the first demo organization (`demo seed --orgs 1`)
ARTIFACT_BUCKET = "e2e-artifacts"
DELIVERY_BUCKET = "e2e-delivered"
SIGNING_SECRET = "e2e-webhook-signing-secret"
# e2e-slot's slot is the first whole minute at least this far after configuration: time for
# the processes to start and for the unschedule to be applied (sensor interval 30 s) before it.
SLOT_LEAD_S = 100
REPORT_ASSET = AssetKey("daily_compliance_report")
PUBLISH_JOB = "publish_report_job"
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BACKFILL_MUTATION = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionKeysNotFoundError { message }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on InvalidSubsetError { message }
  }
}
"""

SCHEDULE_TICKS_QUERY = """
query ScheduleTicks($selector: ScheduleSelector!, $after: Float) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { scheduleState { ticks(afterTimestamp: $after, limit: 50) { timestamp status runKeys } } }
    ... on PythonError { message }
  }
}
"""

BACKFILL_QUERY = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { id status numPartitions partitionNames }
    ... on PythonError { message }
  }
}
"""


# ---------------------------------------------------------------- configuration files


def write_instance(home: Path) -> None:
    """deploy/dagster.yaml as it is (PostgreSQL from DAGSTER_PG_URL, the concurrency block, ...),
    sized for two cores, plus one limit: e2e-unsched's runs may never leave the queue."""
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert config["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    runs = config["concurrency"]["runs"]
    runs["max_concurrent_runs"] = 4  # two cores in CI
    runs["tag_concurrency_limits"].append({"key": REPORT_TAG, "value": "e2e-unsched", "limit": 0})
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def write_workspace(path: Path, port: int) -> None:
    """deploy/workspace.yaml pointed at this test's code server."""
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    server.update(host="127.0.0.1", port=port)
    path.write_text(yaml.safe_dump(workspace, sort_keys=False))


def destinations_yaml(smtp_port: int, hook_url: str, s3_url: str) -> str:
    docs = [
        {"kind": "destination", "name": "e2e-mail", "type": "email", "host": "127.0.0.1",
         "port": smtp_port, "security": "none", "from": "reports@example.org",
         "to": ["officer@example.org"], "subject": "Compliance report {report_name} ({period})"},
        {"kind": "destination", "name": "e2e-hook", "type": "webhook", "url": hook_url,
         "signing_secret_env": "E2E_WEBHOOK_SECRET", "timeout_s": 10,
         "allow_private_network": True,  # the receiver listens on 127.0.0.1
         "retry": {"max_attempts": 3, "initial_delay_s": 1, "max_delay_s": 5}},
        {"kind": "destination", "name": "e2e-s3", "type": "storage", "provider": "s3",
         "bucket": DELIVERY_BUCKET, "endpoint_url": s3_url, "region": "us-east-1",
         "allow_private_network": True,  # moto listens on 127.0.0.1
         "key_template": "{organization_id}/{report_id}/{period}/{filename}"},
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


def reports_yaml(today, slot: datetime) -> str:
    quiet = {"frequency": "daily", "timezone": "UTC", "time": "00:00",
             # first slot in three days (even if the test crosses midnight): never due here
             "start_date": (today + timedelta(days=2)).isoformat(), "max_catch_up": 1}
    due = {"frequency": "daily", "timezone": "UTC", "time": slot.strftime("%H:%M"),
           # first slot at `slot`, covering the day before it
           "start_date": (slot.date() - timedelta(days=1)).isoformat(), "max_catch_up": 1}
    base = {"kind": "report", "organization_id": ORG}
    docs = [
        {**base, "id": "e2e-now", "name": "E2E HIPAA on request", "report_type": "hipaa_audit_trail",
         "schedule": quiet, "formats": ["pdf", "csv", "json"],
         "destinations": ["e2e-mail", "e2e-hook", "e2e-s3"]},
        {**base, "id": "e2e-slot", "name": "E2E summary at its slot", "report_type": "general_compliance",
         "schedule": due, "formats": ["csv", "json"], "destinations": ["e2e-mail", "e2e-s3"]},
        {**base, "id": "e2e-backfill", "name": "E2E integrity backfill",
         "report_type": "integrity_verification", "schedule": quiet, "formats": ["json"],
         "destinations": ["e2e-s3"]},
        {**base, "id": "e2e-unsched", "name": "E2E unscheduled", "report_type": "general_compliance",
         "schedule": due, "formats": ["json"], "destinations": ["e2e-s3"]},
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


# ---------------------------------------------------------------- run storage probes


def report_runs(instance: DagsterInstance, report_id: str, publish: bool | None = None):
    """Runs of the report (report runs by their partition tag, publish runs by report_id), oldest first."""
    records = {r.dagster_run.run_id: r for tags in ({REPORT_TAG: report_id}, {"report_id": report_id})
               for r in instance.get_run_records(RunsFilter(tags=tags))}
    runs = [r.dagster_run for r in sorted(records.values(), key=lambda r: r.create_timestamp)]
    if publish is not None:
        runs = [r for r in runs if (r.job_name == PUBLISH_JOB) == publish]
    return runs


def finished_runs(instance: DagsterInstance, report_id: str, publish: bool, count: int):
    runs = report_runs(instance, report_id, publish)
    done = [r for r in runs if r.status in FINISHED]
    return done if len(done) >= count else None


def describe_runs(instance: DagsterInstance) -> str:
    lines = []
    for record in instance.get_run_records(limit=100):
        run = record.dagster_run
        tags = {k: v for k, v in run.tags.items() if not k.startswith("dagster/") or k == "dagster/backfill"}
        lines.append(f"{run.run_id[:8]} {run.job_name:22} {run.status.value:10} {tags}")
        if run.status == DagsterRunStatus.FAILURE:
            for event in instance.all_logs(run.run_id):
                if event.is_dagster_event and event.dagster_event.is_failure:
                    lines.append(f"    {event.dagster_event.message}")
    return "\n".join(lines) or "(no runs)"


def assert_succeeded(runs, what: str) -> None:
    bad = [(r.run_id, r.status.value) for r in runs if r.status != DagsterRunStatus.SUCCESS]
    assert not bad, f"{what}: runs did not succeed: {bad}"


# ---------------------------------------------------------------- the test


@pytest.mark.timeout(360)  # the budget: under 6 minutes, typically 3
def test_deployment_end_to_end(tmp_path, pg_database, moto_s3_endpoint, smtp_factory, http_factory, monkeypatch):
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    started = time.monotonic()
    marks: list[tuple[str, float]] = []

    def mark(label: str) -> None:
        marks.append((label, time.monotonic() - started))
        print(f"[e2e {marks[-1][1]:6.1f} s] {label}", flush=True)

    # Peers and databases.
    instance_db = pg_database()
    app_db = pg_database()
    smtp = smtp_factory()
    hook = http_factory()
    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=moto_s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    for bucket in (ARTIFACT_BUCKET, DELIVERY_BUCKET):
        s3.create_bucket(Bucket=bucket)

    home = tmp_path / "dagster_home"
    write_instance(home)
    code_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    write_workspace(workspace, code_port)
    env = clean_environment({
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": instance_db,
        "COMPLIANCE_DB_URL": app_db,
        "COMPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "COMPLIANCE_ARTIFACT_PROVIDER": "s3",
        "COMPLIANCE_ARTIFACT_BUCKET": ARTIFACT_BUCKET,
        "COMPLIANCE_ARTIFACT_PREFIX": "artifacts",
        "COMPLIANCE_S3_ENDPOINT_URL": moto_s3_endpoint,
        "COMPLIANCE_SCHEDULE_CRON": "* * * * *",
        "COMPLIANCE_MANIFEST_KEY": "e2e-manifest-key-0123456789abcdef",
        "COMPLIANCE_CHECKPOINT_KEY": "e2e-checkpoint-key-0123456789abcd",
        "COMPLIANCE_UI_URL": f"http://127.0.0.1:{web_port}",
        "E2E_WEBHOOK_SECRET": SIGNING_SECRET,
        **aws,
    })
    monkeypatch.setenv("DAGSTER_PG_URL", instance_db)  # this process reads the same instance
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    stack = ProcessGroup(tmp_path / "logs", env, cwd)
    instance: DagsterInstance | None = None
    app_engine = make_engine(app_db)
    try:
        # Configuration through the CLI, as an operator does it.
        now = datetime.now(UTC)
        today = now.date()
        slot_at = now + timedelta(seconds=SLOT_LEAD_S)
        slot = datetime.fromtimestamp(math.ceil(slot_at.timestamp() / 60) * 60, UTC)
        slot_period = (slot.date() - timedelta(days=1)).isoformat()
        backfill_periods = [(today - timedelta(days=n)).isoformat() for n in (4, 3, 2)]
        (tmp_path / "destinations.yaml").write_text(destinations_yaml(smtp.port, hook.url, moto_s3_endpoint))
        (tmp_path / "reports.yaml").write_text(reports_yaml(today, slot))
        run_cli(env, cwd, "db", "upgrade")
        run_cli(env, cwd, "demo", "seed", "--orgs", "1", "--days", "6", "--events-per-day", "300")
        run_cli(env, cwd, "destinations", "apply", "-f", str(tmp_path / "destinations.yaml"))
        run_cli(env, cwd, "reports", "apply", "-f", str(tmp_path / "reports.yaml"))
        # No CLI command writes run_now yet: the request row any other system would write.
        now_request = config_store.request(app_engine, "e2e-now", "run_now", actor="e2e")
        config_store.request(app_engine, "e2e-unsched", "run_now", period=backfill_periods[0], actor="e2e")
        mark(f"configured; e2e-slot's slot at {slot.isoformat()}")

        # The deployment's processes (deploy/README.md).
        code_server = stack.start("code-server", str(BIN / "dagster"), "code-server", "start", "-m",
                                  "compliance_reports.definitions", "-h", "127.0.0.1", "-p", str(code_port))
        wait_until("the code server", lambda: "Started Dagster code proxy server" in code_server.log(),
                   timeout=90, interval=0.5, check=stack.check_alive)
        # The daemon and the webserver run no project code (it runs in the code server and its run
        # workers): they get the instance's variables only, none of the application's secrets.
        instance_env = clean_environment({"DAGSTER_HOME": str(home), "DAGSTER_PG_URL": instance_db})
        stack.start("daemon", str(BIN / "dagster-daemon"), "run", "-w", str(workspace), env=instance_env)
        stack.start("webserver", str(BIN / "dagster-webserver"), "-w", str(workspace),
                    "-h", "127.0.0.1", "-p", str(web_port), env=instance_env)
        web = f"http://127.0.0.1:{web_port}"
        wait_until("the webserver", lambda: requests.get(f"{web}/server_info", timeout=5).ok,
                   timeout=90, interval=1, check=stack.check_alive)
        graphql = GraphQL(web)
        instance = DagsterInstance.from_config(str(home))
        mark("code server, daemon and webserver up")

        alive = stack.check_alive
        # Unschedule while a run waits in the queue: its run_now run stays QUEUED (limit 0).
        queued = wait_until(
            "e2e-unsched's run_now run to be queued",
            lambda: [r for r in report_runs(instance, "e2e-unsched") if r.status == DagsterRunStatus.QUEUED],
            timeout=120, check=alive,
        )
        assert len(queued) == 1 and queued[0].tags["trigger"] == "request"
        mark("e2e-unsched run queued")
        run_cli(env, cwd, "reports", "unschedule", "e2e-unsched")
        wait_until("the unschedule request to be applied",
                   lambda: all(r["status"] == "done" for r in config_store.list_requests(app_engine)),
                   timeout=120, check=alive)
        unscheduled_at = datetime.now(UTC)
        results = {r["id"]: r["result"] for r in config_store.list_requests(app_engine)}
        print(f"schedule requests: {results}")
        now_period = json.loads(results[now_request])["requested_period"]  # the latest ended day
        assert instance.get_run_by_id(queued[0].run_id).status == DagsterRunStatus.CANCELED
        assert config_store.get_report(app_engine, "e2e-unsched").enabled is False
        mark("e2e-unsched unscheduled: queued run cancelled")

        # Backfill of three periods through GraphQL, as the UI launches it.
        wait_until("the e2e-backfill partition",
                   lambda: "e2e-backfill" in instance.get_dynamic_partitions("daily_reports"),
                   timeout=60, check=alive)
        keys = [f"{period}|e2e-backfill" for period in backfill_periods]
        launched = graphql(BACKFILL_MUTATION, {"backfillParams": {
            "assetSelection": [{"path": ["daily_compliance_report"]}],
            "partitionNames": keys,
            "title": "e2e backfill",
        }})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        mark(f"backfill {backfill_id} launched")

        # The run_now request: report run, then its publish run.
        now_runs = wait_until("e2e-now's report run", lambda: finished_runs(instance, "e2e-now", False, 1),
                              timeout=180, check=alive)
        assert_succeeded(now_runs, "e2e-now report")
        assert now_runs[0].tags[PERIOD_TAG] == now_period and now_runs[0].tags["trigger"] == "request"
        now_pub = wait_until("e2e-now's publish run", lambda: finished_runs(instance, "e2e-now", True, 1),
                             timeout=180, check=alive)
        assert_succeeded(now_pub, "e2e-now publish")
        mark("e2e-now reported and published")

        # The backfill: three materializations and three publications.
        def backfill_state():
            state = graphql(BACKFILL_QUERY, {"backfillId": backfill_id})["partitionBackfillOrError"]
            return state if state.get("status") not in ("REQUESTED", "CANCELING", "FAILING") else None

        state = wait_until("the backfill to finish", backfill_state, timeout=240, interval=3, check=alive)
        assert state["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), state
        materialized = instance.get_materialized_partitions(REPORT_ASSET)
        assert set(keys) <= materialized, sorted(materialized)
        backfill_runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert len(backfill_runs) == 3
        assert_succeeded(backfill_runs, "backfill")
        assert {r.tags[PERIOD_TAG] for r in backfill_runs} == set(backfill_periods)
        assert {r.tags["trigger"] for r in backfill_runs} == {"backfill"}
        pubs = wait_until("three e2e-backfill publish runs",
                          lambda: finished_runs(instance, "e2e-backfill", True, 3), timeout=180, check=alive)
        assert_succeeded(pubs, "e2e-backfill publish")
        assert sorted(r.tags["period"] for r in pubs) == backfill_periods
        mark("backfill: 3 materializations, 3 publications")

        # The slot that falls due during the test.
        slot_runs = wait_until("e2e-slot's scheduled run", lambda: finished_runs(instance, "e2e-slot", False, 1),
                               timeout=max(60.0, (slot - datetime.now(UTC)).total_seconds() + 180),
                               check=alive)
        assert_succeeded(slot_runs, "e2e-slot report")
        assert len(slot_runs) == 1
        assert slot_runs[0].tags[PERIOD_TAG] == slot_period and slot_runs[0].tags["trigger"] == "schedule"
        slot_pub = wait_until("e2e-slot's publish run", lambda: finished_runs(instance, "e2e-slot", True, 1),
                              timeout=180, check=alive)
        assert_succeeded(slot_pub, "e2e-slot publish")
        mark("e2e-slot ran at its slot and was published")

        # The ticks since the slot requested e2e-slot only: e2e-unsched, with the same schedule, was
        # unscheduled before its slot and nothing was requested for it.
        ticks = graphql(SCHEDULE_TICKS_QUERY, {
            "selector": {"repositoryLocationName": "compliance_reports", "repositoryName": "__repository__",
                         "scheduleName": "daily_reports_schedule"},
            "after": slot.timestamp() - 1,
        })["scheduleOrError"]["scheduleState"]["ticks"]
        assert {key for tick in ticks for key in tick["runKeys"]} == {f"e2e-slot:{slot_period}"}, ticks
        unsched = report_runs(instance, "e2e-unsched")
        assert [r.status for r in unsched] == [DagsterRunStatus.CANCELED], [(r.run_id, r.status) for r in unsched]
        assert unscheduled_at < slot, "the unschedule was applied after the slot: raise SLOT_LEAD_S"
        assert all(r["status"] == "done" for r in config_store.list_requests(app_engine))

        # Deliveries: mail with attachments, signed webhook, S3 objects with their sha256.
        def mails():
            parsed = [email.message_from_bytes(m["data"], policy=email.policy.default) for m in smtp.messages]
            return parsed if len(parsed) >= 2 else None

        messages = wait_until("two mails", mails, timeout=30, check=alive)
        assert len(messages) == 2, [m["Subject"] for m in messages]  # one per publication, none twice
        # the subject template follows a severity prefix ("[3 warnings] ") when there are findings
        by_subject = {re.sub(r"^\[[\d,]+ (critical|warnings?)\] ", "", m["Subject"]): m for m in messages}
        now_mail = by_subject.get(f"Compliance report E2E HIPAA on request ({now_period})")
        slot_mail = by_subject.get(f"Compliance report E2E summary at its slot ({slot_period})")
        assert now_mail is not None and slot_mail is not None, list(by_subject)
        now_attachments = {part.get_filename() for part in now_mail.iter_attachments()}
        assert {Path(name).suffix for name in now_attachments} >= {".pdf", ".csv", ".json"}, now_attachments
        assert {Path(p.get_filename()).suffix for p in slot_mail.iter_attachments()} >= {".csv", ".json"}
        attachment_sha = {
            part.get_filename(): hashlib.sha256(part.get_payload(decode=True)).hexdigest()
            for part in now_mail.iter_attachments()
        }

        assert len(hook.requests) == 1, [r.headers for r in hook.requests]
        for received in hook.requests:
            headers = {k.lower(): v for k, v in received.headers.items()}
            assert verify_signature(SIGNING_SECRET, headers["webhook-id"], headers["webhook-timestamp"],
                                    received.body, headers["webhook-signature"]), headers
            assert headers["idempotency-key"] == headers["webhook-id"]
        payload = hook.requests[0].json()
        assert payload["report"]["id"] == "e2e-now" and payload["report"]["period"] == now_period
        assert {f["format"] for f in payload["files"]} >= {"pdf", "csv", "json"}
        for f in payload["files"]:
            if "content_base64" in f:  # inline up to inline_max_kb, otherwise a link
                assert hashlib.sha256(base64.b64decode(f["content_base64"])).hexdigest() == f["sha256"]
            assert attachment_sha[f["filename"]] == f["sha256"]  # mail and webhook: the same files

        delivered = s3.list_objects_v2(Bucket=DELIVERY_BUCKET).get("Contents", [])
        prefixes = {f"{ORG}/e2e-now/{now_period}/", f"{ORG}/e2e-slot/{slot_period}/",
                    *(f"{ORG}/e2e-backfill/{p}/" for p in backfill_periods)}
        for prefix in prefixes:
            objects = [o["Key"] for o in delivered if o["Key"].startswith(prefix)]
            assert objects, f"nothing stored under s3://{DELIVERY_BUCKET}/{prefix}: {[o['Key'] for o in delivered]}"
            for key in objects:
                obj = s3.get_object(Bucket=DELIVERY_BUCKET, Key=key)
                body = obj["Body"].read()
                assert obj["Metadata"].get("sha256") == hashlib.sha256(body).hexdigest(), key
                name = key.rsplit("/", 1)[1]
                if prefix.startswith(f"{ORG}/e2e-now/") and name in attachment_sha:
                    assert attachment_sha[name] == obj["Metadata"]["sha256"], key
        artifacts = s3.list_objects_v2(Bucket=ARTIFACT_BUCKET).get("Contents", [])
        assert any(o["Key"].startswith("artifacts/") for o in artifacts), "no artifacts stored in S3"
        mark("deliveries checked")

        # History from the PostgreSQL run storage, through the CLI.
        def history(report_id: str) -> list[dict]:
            rows = json.loads(run_cli(env, cwd, "history", report_id, "--json"))
            print(f"history {report_id}: " + json.dumps(
                [(r["job"], r["status"], r["period"], r["trigger"]) for r in rows]))
            return rows

        # Schedule and request runs are runs of the named daily_reports_job (an asset backfill
        # from the UI's asset page is Dagster's __ASSET_JOB); a publish run carries the trigger
        # of the report run it publishes.
        def split(rows):
            reports = {(r["status"], r["period"], r["trigger"]) for r in rows if r["dagster_job"] != PUBLISH_JOB}
            publications = {(r["status"], r["period"], r["trigger"]) for r in rows if r["dagster_job"] == PUBLISH_JOB}
            return reports, publications

        rows = history("e2e-now")
        assert split(rows) == ({("SUCCESS", now_period, "request")}, {("SUCCESS", now_period, "request")}), rows
        assert {r["dagster_job"] for r in rows} == {"daily_reports_job", PUBLISH_JOB}, rows
        assert all(r["trigger"] and r["run_id"] and r["duration_s"] is not None for r in rows), rows
        rows = history("e2e-backfill")
        assert len(rows) == 6, rows
        assert split(rows) == ({("SUCCESS", p, "backfill") for p in backfill_periods},
                               {("SUCCESS", p, "backfill") for p in backfill_periods}), rows
        rows = history("e2e-slot")
        assert split(rows) == ({("SUCCESS", slot_period, "schedule")},
                               {("SUCCESS", slot_period, "schedule")}), rows
        assert {r["dagster_job"] for r in rows} == {"daily_reports_job", PUBLISH_JOB}, rows
        rows = history("e2e-unsched")
        assert [(r["status"], r["period"], r["trigger"]) for r in rows] == [
            ("CANCELED", backfill_periods[0], "request")
        ], rows
        mark("history read from PostgreSQL")

        # The operator's checks (deploy/README.md): the workspace validates against the running
        # code server, the code server answers its health check, the daemon's heartbeats are fresh.
        run_command(env, cwd, "dagster", "definitions", "validate", "-w", str(workspace))
        run_command(env, cwd, "dagster", "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(code_port))
        assert "Daemon live" in run_command(instance_env, cwd, "dagster-daemon", "liveness-check")
        mark("validate, code-server health check, daemon liveness check passed")
    except BaseException:
        print(f"\n===== e2e failed after {time.monotonic() - started:.0f} s; marks: {marks}")
        if instance is not None:
            try:
                print("===== runs\n" + describe_runs(instance))
            except Exception as exc:  # noqa: BLE001 - diagnostics only
                print(f"(runs unavailable: {exc})")
        print("===== process logs\n" + stack.report())
        raise
    finally:
        stack.stop_all()
        if instance is not None:
            instance.dispose()
        app_engine.dispose()
    print(f"e2e finished in {time.monotonic() - started:.0f} s: {marks}")
