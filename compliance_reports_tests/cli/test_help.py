"""Every command and every option of the CLI says what it does in --help."""

from __future__ import annotations

import click

from compliance_reports.cli.main import main


def _walk(command: click.Command, path: str):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _walk(sub, f"{path} {name}")


def test_every_command_and_option_has_help():
    missing = []
    for path, command in _walk(main, "compliance-reports"):
        if not (command.help or command.short_help or "").strip():
            missing.append(f"{path}: no help text")
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{path} {param.opts[0]}: no help text")
    assert not missing, "\n".join(missing)


def test_the_walk_reaches_nested_commands():
    paths = {path for path, _ in _walk(main, "compliance-reports")}
    assert {"compliance-reports reports run-now", "compliance-reports deliveries list",
            "compliance-reports backfill"} <= paths


# Long-running servers print a start line and then serve; they have no outcome to print.
SERVERS = {"compliance-reports demo mail-catcher", "compliance-reports serve-metrics"}


def test_every_command_that_prints_an_outcome_offers_json():
    without = [
        path for path, command in _walk(main, "compliance-reports")
        if not isinstance(command, click.Group) and path not in SERVERS
        and not any(isinstance(p, click.Option) and "--json" in p.opts for p in command.params)
    ]
    assert without == []
