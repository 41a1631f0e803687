"""The publication of each report period, as its own asset downstream of the report.

The publish job records one materialization here per published (period, report): the files
table, the manifest and a link to the report run. Keeping it off the report asset leaves the
report's partition panel to the report's own figures, and the lineage graph shows report ->
publication.
"""

from dagster import AssetKey, AssetSpec

from compliance_reports.orchestration.report_partitions import FREQUENCIES, report_partitions


def publication_asset_key(frequency: str) -> AssetKey:
    return AssetKey(f"{frequency}_report_publication")


publication_assets = {
    frequency: AssetSpec(
        key=publication_asset_key(frequency),
        deps=[f"{frequency}_compliance_report"],
        partitions_def=report_partitions[frequency],
        group_name="compliance_reports",
        owners=["team:compliance"],
        kinds={"python"},
        description=(
            f"The exported files of a {frequency} report period (PDF, CSV, JSON, XML, Parquet and "
            "a signed manifest), recorded by publish_report_job before delivery."
        ),
    )
    for frequency in FREQUENCIES
}
