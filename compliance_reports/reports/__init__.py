"""Report builders (plain Python, no Dagster): one module per report type.

``builder.build_report`` is the entry point; ``common`` holds the query scope and helpers.
"""

from compliance_reports.reports.builder import (
    GENERATOR_VERSION,
    BuildResult,
    build_report,
    build_report_for_window,
)

__all__ = ["GENERATOR_VERSION", "BuildResult", "build_report", "build_report_for_window"]
