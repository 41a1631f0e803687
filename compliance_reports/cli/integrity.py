"""`compliance-reports integrity verify`: check one organization's audit log over a time range.

Exit status: 0 VERIFIED, 1 BROKEN or INCOMPLETE (or the check could not run), 2 bad input
(including an organization with no audit rows at all, most likely a mistyped --org), 3 NO_DATA
(the organization has rows, but none in the window: nothing was verified).
Registered in `cli/main.py`.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

import click

from compliance_reports.config.validation import (
    DATE_MAX,
    DATE_MIN,
    check_organization_id,
    check_timezone,
)

DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
EXIT_CODES = {"VERIFIED": 0, "BROKEN": 1, "INCOMPLETE": 1, "NO_DATA": 3}


def _bad(message: str) -> None:
    click.echo(f"integrity verify: {message}", err=True)
    sys.exit(2)


def parse_instant(value: str, timezone: str, option: str) -> datetime:
    """YYYY-MM-DD (local midnight) or YYYY-MM-DDTHH:MM[:SS] read in ``timezone``, in the years
    the date arithmetic handles (DATE_MIN to DATE_MAX)."""
    from compliance_reports.periods import resolve_local

    for fmt in DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        if not DATE_MIN <= parsed.date() <= DATE_MAX:
            raise ValueError(f"{option} {value!r} is outside {DATE_MIN} to {DATE_MAX}")
        return resolve_local(parsed, timezone)
    raise ValueError(f"{option} {value!r} must be YYYY-MM-DD or YYYY-MM-DDTHH:MM")


@click.group("integrity")
def integrity() -> None:
    """Audit-log integrity: hash recomputation, hash chain, signed checkpoints."""


@integrity.command("verify")
@click.option("--org", "organization_id", required=True, help="Organization id.")
@click.option("--from", "start", required=True, help="Start, YYYY-MM-DD[THH:MM] (inclusive).")
@click.option("--to", "end", required=True, help="End, YYYY-MM-DD[THH:MM] (exclusive).")
@click.option("--timezone", "tz", default="UTC", show_default=True,
              help="IANA timezone in which --from and --to are read.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--no-checkpoint", is_flag=True,
              help="Do not write a signed checkpoint (verification only).")
@click.option("--max-silence-hours", default=24, show_default=True, type=click.IntRange(1, 8784),
              help="A silence in the log longer than this is a coverage finding.")
def verify(organization_id: str, start: str, end: str, tz: str, as_json: bool,
           no_checkpoint: bool, max_silence_hours: int) -> None:
    """Recompute every row hash in [--from, --to), walk the chain, compare with the last signed
    checkpoint, measure the log's coverage of the range, and (unless --no-checkpoint) write a
    new checkpoint signed with the key in COMPLIANCE_CHECKPOINT_KEY.

    Exit status: 0 VERIFIED, 1 BROKEN or INCOMPLETE, 2 bad input or an organization without
    any audit row, 3 NO_DATA (no row in the range)."""
    from compliance_reports.audit.integrity import (
        KeyFormatError,
        load_key,
        organization_has_rows,
        verify_window,
    )

    try:
        check_organization_id(organization_id, "--org")
    except ValueError as exc:
        _bad(str(exc))
    try:
        check_timezone(tz)
    except ValueError as exc:
        _bad(f"--timezone: {exc}")
    try:
        key = load_key()
    except KeyFormatError as exc:
        _bad(str(exc))
    try:
        start_utc = parse_instant(start, tz, "--from")
        end_utc = parse_instant(end, tz, "--to")
    except ValueError as exc:
        _bad(str(exc))
    if end_utc <= start_utc:
        _bad(f"--to ({end}) must be after --from ({start})")

    try:
        from compliance_reports.db.engine import make_engine
        from compliance_reports.settings import load_settings

        settings = load_settings()
        app_engine = make_engine(settings.compliance_db_url)
        audit_engine = (app_engine if settings.audit_db_url == settings.compliance_db_url
                        else make_engine(settings.audit_db_url))
        known = organization_has_rows(audit_engine, organization_id)
        result = None if not known else verify_window(
            audit_engine, app_engine, organization_id, start_utc, end_utc, key=key,
            write_checkpoint=not no_checkpoint, timezone_name=tz,
            max_silence_hours=max_silence_hours)
    except Exception as exc:  # noqa: BLE001 - report any operational failure, exit 1
        click.echo(f"integrity verify: could not verify: {exc}", err=True)
        sys.exit(1)
    if result is None:
        _bad(f"--org {organization_id!r}: the audit log has no rows of this organization at all "
             "(check the organization id and AUDIT_DB_URL)")

    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(f"{result.verdict}: {result.reason}")
        click.echo(f"organization {organization_id}, {result.to_dict()['window_start_utc']} to "
                   f"{result.to_dict()['window_end_utc']}")
        click.echo(f"rows {result.rows}, verified {result.verified}, mismatched {result.mismatched}, "
                   f"unhashed {result.unhashed}, chain breaks {result.chain_breaks}")
        if result.first_break is not None:
            fb = result.first_break.to_dict()
            click.echo(f"first break: event {fb['event_id']} ({fb['kind_title']}): {fb['detail']}")
        if result.coverage is not None:
            click.echo(f"coverage: {result.coverage.describe()}")
            for finding in result.coverage.findings:
                click.echo(f"coverage finding: {finding['title']}: {finding['detail']}")
        if result.checkpoint_written:
            click.echo(f"checkpoint written for window ending {result.checkpoint_written['window_end']}")
        for note in result.notes:
            click.echo(f"note: {note}")
    sys.exit(EXIT_CODES.get(result.verdict, 1))


__all__ = ["integrity", "verify", "parse_instant"]
