"""Normal runs log no warning that Dagster raises about itself (DESIGN: clean logs)."""

from __future__ import annotations

import warnings
from pathlib import Path

from dagster import Definitions

from compliance_reports.orchestration.dagster_warnings import silence_internal_warnings

REPO = Path(__file__).resolve().parents[2]


def _warnings_while_loading(silence: bool) -> list[str]:
    from compliance_reports import definitions as location

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if silence:
            silence_internal_warnings()
        # A fresh copy of the code location, resolved as the code server and run workers do.
        Definitions(assets=location.defs.assets, jobs=location.defs.jobs,
                    schedules=location.defs.schedules, sensors=location.defs.sensors,
                    resources=location.defs.resources).get_repository_def()
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def test_loading_the_code_location_raises_no_dagster_warning():
    assert any("owners" in w for w in _warnings_while_loading(silence=False)), (
        "Dagster no longer warns about sensor owners: drop the filter in dagster_warnings.py"
    )
    assert _warnings_while_loading(silence=True) == []


def test_no_instance_configuration_at_the_checkout_root():
    # `dagster dev` run from the checkout warns about a dagster.yaml in the working folder.
    assert not (REPO / "dagster.yaml").exists() and not (REPO / "dagster.yml").exists()
    assert (REPO / "deploy" / "dagster.local.yaml").is_file()


def test_makefile_ignores_exactly_the_supersession_messages():
    makefile = (REPO / "Makefile").read_text()
    line = next(x for x in makefile.splitlines() if "PYTHONWARNINGS" in x)
    assert line.split("=", 1)[1].strip().split(",") == [
        "ignore:Function `dev_command` is superseded",
        "ignore:Function `definitions_validate_command` is superseded",
    ]
