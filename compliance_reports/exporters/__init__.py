"""Exporters: one report document (plus its events file) to PDF, CSV, JSON, XML and Parquet.

Plain Python (no Dagster). Entry point: `export_all` in `render.py`; one module per format.
"""
