"""The thin Dagster layer: partitions, assets, checks, jobs, schedules, sensors, resources."""
