"""Exporters: one report document (plus its events file) to PDF, CSV, JSON, XML and Parquet.

Plain Python (no Dagster). Entry point: `export_all` in `render.py`; one module per format.
"""

from compliance_reports.exporters.common import ExportedFile, FORMAT_EXTENSIONS, FORMAT_MEDIA_TYPES
from compliance_reports.exporters.render import FORMATS, export_all

__all__ = ["ExportedFile", "FORMATS", "FORMAT_EXTENSIONS", "FORMAT_MEDIA_TYPES", "export_all"]
