"""`compliance-reports serve-metrics`: Prometheus metrics and /healthz over HTTP."""

from __future__ import annotations

import click

from compliance_reports.cli.output import Context, ensure_dagster_home, fail, pass_ctx


@click.command("serve-metrics")
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="TCP port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--heartbeat-max-age", default=300, show_default=True, type=click.IntRange(10, None),
              help="Seconds after which a daemon heartbeat makes /healthz answer 503.")
@pass_ctx
def serve_metrics(ctx: Context, port: int, host: str, heartbeat_max_age: int) -> None:
    """Serve /metrics (Prometheus) and /healthz (JSON; 200 healthy, 503 not) until stopped.

    Figures are read from the databases and the Dagster instance on each scrape; see
    deploy/prometheus.yml and deploy/alert-rules.yml for a scrape configuration and alerts.
    """
    from dagster import DagsterInstance

    from compliance_reports.operations.metrics import make_app, make_metrics_server

    ensure_dagster_home(ctx.settings)
    with DagsterInstance.get() as instance:
        application = make_app(ctx.app_engine, ctx.audit_engine, instance, heartbeat_max_age)
        try:
            server = make_metrics_server(host, port, application)
        except OSError as exc:
            fail(f"--port: cannot listen on {host}:{port}: {exc.strerror or exc}", status=1)
        click.echo(f"Serving http://{host}:{server.server_port}/metrics and /healthz", err=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
