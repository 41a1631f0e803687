"""The part of a report document a type-specific builder returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Body:
    summary: list[tuple[str, Any]]            # headline figures, in display order
    sections: list[dict[str, Any]]             # report_document sections, in display order
    data: dict[str, Any] = field(default_factory=dict)  # the same numbers for JSON consumers
