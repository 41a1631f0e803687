"""Report builders (plain Python, no Dagster): one module per report type.

``builder.build_report`` is the entry point; ``common`` holds the query scope and helpers.
"""
