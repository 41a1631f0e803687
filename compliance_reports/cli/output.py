"""What several command groups share: the lazily connected engines, output and exit helpers.

Exit status 0 on success, 1 on an operational failure, 2 on bad input (nothing written).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from compliance_reports.config import store as config_store
from compliance_reports.config import validation
from compliance_reports.db.engine import make_engine
from compliance_reports.settings import PACKAGE_DIR, Settings, load_settings


class Context:
    def __init__(self) -> None:
        try:
            self.settings: Settings = load_settings()
        except ValueError as exc:  # a misconfigured environment: one line, exit 2
            fail(f"configuration error: {exc}")
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


@contextmanager
def progress_status(message: str, quiet: bool = False) -> Iterator[None]:
    """A spinner on stderr while long work runs (nothing when quiet, e.g. under --json)."""
    if quiet:
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


@contextmanager
def progress_bar(total: int, label: str, quiet: bool = False) -> Iterator:
    """A progress bar on stderr; yields `update(done)`, taking the running count of `total`."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=Console(stderr=True), disable=quiet)
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def json_option(help_text: str = "Print the outcome as JSON."):
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def emit_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A table through rich: fitted to a terminal, never cut when piped (full cells for grep)."""
    if not rows:
        click.echo("(none)")
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column.upper(), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    piped = not click.get_text_stream("stdout").isatty()
    console = Console(width=100_000 if piped else None, no_color=piped, highlight=False)
    with console.capture() as captured:
        console.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


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


class _Checked(click.ParamType):
    """A command-line value checked by a configuration rule, so that nothing the models would
    refuse reaches a query (a NUL byte or an over-long id fails in PostgreSQL, not here)."""

    def __init__(self, name: str, check) -> None:
        self.name = name
        self._check = check

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self._check(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


REPORT_ID = _Checked("report_id", lambda v: validation.check_slug(v, "report id"))
ENV_NAME = _Checked("env_name", validation.check_env_name)
ACTOR = _Checked("name", lambda v: validation.check_actor(v, "--as"))
FILE = _Checked("file", lambda v: _no_nul(v, "file name"))
PATH = _Checked("path", lambda v: Path(_no_nul(v, "path")))
DELIVERY_ID = _Checked("delivery_id", lambda v: validation.check_hex_id(v, "delivery id"))
DAY = _Checked("YYYY-MM-DD", lambda v: validation.check_date(v, "date"))


def _no_nul(value: str, what: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{what} {value!r} holds a NUL byte")
    return value


def one_line(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """(exit status, one line) for an exception no command handled: 2 when the input was at
    fault (a value the database refused, a date out of range), 1 when something else failed."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DataError):
        return 2, f"error: the database refused a value: {one_line(exc.orig).split(' LINE ')[0]}"
    if isinstance(exc, sa_exc.IntegrityError):
        return 2, f"error: the database refused the change: {one_line(exc.orig).split(' DETAIL')[0]}"
    if isinstance(exc, sa_exc.DBAPIError):
        return 1, f"error: database failure: {one_line(exc.orig).split(' LINE ')[0]}"
    if isinstance(exc, sa_exc.StatementError):  # the driver refused a parameter (NUL, encoding)
        return 2, f"error: the database refused a value: {one_line(exc.orig)}"
    if isinstance(exc, OverflowError):
        return 2, f"error: a date or number is out of range: {one_line(exc)}"
    if isinstance(exc, (UnicodeError, ValueError)):
        return 2, f"error: {one_line(exc)}"
    return 1, f"error: {type(exc).__name__}: {one_line(exc)}"


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
