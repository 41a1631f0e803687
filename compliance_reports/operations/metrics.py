"""Prometheus metrics and a health probe for the platform (`compliance-reports serve-metrics`).

Figures are collected when Prometheus scrapes, by a custom collector over a few cheap queries
(operations.status plus one grouped query on the delivery ledger): nothing is counted in memory,
so several exporters or a restart never disagree with the databases.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text

from compliance_reports.db.schema import deliveries
from compliance_reports.operations.status import OUTCOMES, report_statuses

log = logging.getLogger(__name__)
HEARTBEAT_MAX_AGE_S = 300.0


class ComplianceCollector(Collector):
    """Reports by last outcome, freshness, integrity verdicts, deliveries and the retry queue."""

    def __init__(self, app: Engine, instance, clock: Callable[[], datetime] | None = None) -> None:
        self.app = app
        self.instance = instance
        self.clock = clock or (lambda: datetime.now(timezone.utc))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("compliance_metrics_collect_success",
                               "1 when the last collection read every source, 0 when one failed")
        try:
            families = list(self._families())
        except Exception:  # noqa: BLE001 - a scrape must answer even when a database is down
            log.exception("collecting compliance metrics failed")
            up.add_metric([], 0)
            yield up
            return
        yield from families
        up.add_metric([], 1)
        yield up

    def _families(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        statuses = report_statuses(self.app, self.instance, now)
        by_outcome = GaugeMetricFamily("compliance_reports_by_outcome",
                                       "Configured reports by the outcome of their newest run and its publication",
                                       labels=["outcome"])
        outcome = GaugeMetricFamily("compliance_report_last_outcome",
                                    "1 for the outcome of the report's newest run and its publication",
                                    labels=["report_id", "frequency", "outcome"])
        since = GaugeMetricFamily("compliance_report_seconds_since_last_success",
                                  "Seconds since the end of the newest period with a stored report",
                                  labels=["report_id", "frequency"])
        integrity = GaugeMetricFamily("compliance_report_integrity",
                                      "1 for the integrity verdict of the report's newest stored period",
                                      labels=["report_id", "verdict"])
        verdicts = GaugeMetricFamily("compliance_reports_by_integrity",
                                     "Reports by the integrity verdict of their newest stored period",
                                     labels=["verdict"])
        enabled = GaugeMetricFamily("compliance_report_enabled", "1 when the report is scheduled",
                                    labels=["report_id", "frequency"])
        counts = dict.fromkeys(OUTCOMES, 0)
        verdict_counts: dict[str, int] = {}
        for s in statuses:
            counts[s.outcome] += 1
            enabled.add_metric([s.report_id, s.frequency], 1 if s.enabled else 0)
            for name in OUTCOMES:
                outcome.add_metric([s.report_id, s.frequency, name], 1 if name == s.outcome else 0)
            if s.last_period_end_utc is not None:
                since.add_metric([s.report_id, s.frequency], (now - s.last_period_end_utc).total_seconds())
            if s.integrity:
                integrity.add_metric([s.report_id, s.integrity], 1)
                verdict_counts[s.integrity] = verdict_counts.get(s.integrity, 0) + 1
        for name, count in counts.items():
            by_outcome.add_metric([name], count)
        for name, count in sorted(verdict_counts.items()):
            verdicts.add_metric([name], count)
        yield from (by_outcome, outcome, since, integrity, verdicts, enabled)
        yield from self._delivery_families(now)

    def _delivery_families(self, now: datetime) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily("compliance_deliveries",
                                      "Delivery ledger rows by status and destination",
                                      labels=["status", "destination"])
        queue = GaugeMetricFamily("compliance_delivery_retry_queue_depth",
                                  "Failed deliveries waiting for the retry sweep")
        due = GaugeMetricFamily("compliance_delivery_retry_due",
                                "Failed deliveries whose next attempt is due now")
        c = deliveries.c
        with self.app.connect() as conn:
            for status, destination, count in conn.execute(
                select(c.status, c.destination, func.count()).group_by(c.status, c.destination)
                .order_by(c.status, c.destination)
            ):
                by_status.add_metric([status, destination], count)
            waiting = conn.execute(select(func.count()).where(c.status == "failed")).scalar_one()
            ready = conn.execute(select(func.count()).where(
                c.status == "failed", c.next_attempt_at <= now)).scalar_one()
        queue.add_metric([], waiting)
        due.add_metric([], ready)
        yield from (by_status, queue, due)


def health(app: Engine, audit: Engine, instance, max_age_s: float = HEARTBEAT_MAX_AGE_S,
           now: datetime | None = None) -> tuple[bool, dict[str, Any]]:
    """Databases reachable and every required Dagster daemon's heartbeat fresh."""
    now = now or datetime.now(timezone.utc)
    checks: dict[str, Any] = {}
    for name, engine in (("app_database", app), ("audit_database", audit)):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks[name] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    daemons: dict[str, Any] = {}
    try:
        heartbeats = instance.get_daemon_heartbeats()
        for daemon_type in instance.get_required_daemon_types():
            beat = heartbeats.get(daemon_type)
            age = None if beat is None else round(now.timestamp() - beat.timestamp, 1)
            daemons[daemon_type] = {"ok": age is not None and age <= max_age_s, "age_s": age}
        checks["daemon"] = {"ok": bool(daemons) and all(d["ok"] for d in daemons.values()),
                            "heartbeats": daemons, "max_age_s": max_age_s}
    except Exception as exc:  # noqa: BLE001
        checks["daemon"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    ok = all(c["ok"] for c in checks.values())
    return ok, {"status": "ok" if ok else "unhealthy", "checks": checks}


def make_app(app: Engine, audit: Engine, instance, max_age_s: float = HEARTBEAT_MAX_AGE_S):
    """WSGI application: /metrics (Prometheus text format) and /healthz (200 or 503, JSON)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ComplianceCollector(app, instance))
    metrics_app = make_wsgi_app(registry)

    def application(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        if path == "/healthz":
            ok, body = health(app, audit, instance, max_age_s)
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json")])
            return [json.dumps(body, sort_keys=True).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]

    return application


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        log.debug(format, *args)


def make_metrics_server(host: str, port: int, application) -> WSGIServer:
    """A threaded HTTP server for `application` (call serve_forever / shutdown)."""
    return make_server(host, port, application, server_class=_ThreadingServer, handler_class=_QuietHandler)
