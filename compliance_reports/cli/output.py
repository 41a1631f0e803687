"""What several command groups share: the lazily connected engines, output and exit helpers.

Exit status 0 on success, 1 on an operational failure, 2 on bad input (nothing written).
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from compliance_reports.config import store as config_store
from compliance_reports.db.engine import make_engine
from compliance_reports.settings import PACKAGE_DIR, Settings, load_settings


class Context:
    def __init__(self) -> None:
        self.settings: Settings = load_settings()
        self._app = None
        self._audit = None

    @property
    def app_engine(self):
        if self._app is None:
            self._app = make_engine(self.settings.compliance_db_url)
        return self._app

    @property
    def audit_engine(self):
        if self._audit is None:
            if self.settings.audit_db_url == self.settings.compliance_db_url:
                self._audit = self.app_engine
            else:
                self._audit = make_engine(self.settings.audit_db_url)
        return self._audit


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_default, ensure_ascii=False))


def emit_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def fail(message: str, status: int = 2) -> None:
    click.echo(message, err=True)
    sys.exit(status)


def get_report(ctx: Context, report_id: str):
    try:
        return config_store.get_report(ctx.app_engine, report_id)
    except config_store.NotFoundError as exc:
        fail(str(exc))


def ensure_dagster_home(settings: Settings) -> Path:
    """$DAGSTER_HOME, defaulting to <data folder>/dagster_home with the project's dagster.yaml."""
    import os
    import shutil

    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    template = PACKAGE_DIR.parent / "deploy" / "dagster.local.yaml"  # the embedded default
    if not (home / "dagster.yaml").exists() and template.exists():
        shutil.copy(template, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home
