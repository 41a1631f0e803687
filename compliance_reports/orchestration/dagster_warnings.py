"""Dagster warnings that this code location cannot cause nor fix, silenced by exact message.

Dagster 1.13 copies each sensor when it binds jobs to resources (`SensorDefinition.
with_attributes`) and passes the copy `owners=[]`, which trips the beta-parameter warning
although no sensor here sets owners. Only that message is ignored; every other BetaWarning,
from our own code or a future upgrade, still shows.
"""

from __future__ import annotations

import warnings

SENSOR_OWNERS_BETA = r"Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta"


def silence_internal_warnings() -> None:
    from dagster import BetaWarning

    warnings.filterwarnings("ignore", message=SENSOR_OWNERS_BETA, category=BetaWarning)
