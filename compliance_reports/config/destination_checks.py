"""Checks of a destination against the place it will run in, made when it is applied.

The models check what a document says; these check where it leads: a local storage folder must
resolve (symbolic links followed) inside the storage root, and a webhook url or an S3
endpoint_url must not resolve to a loopback, link-local, private, multicast or other internal
address unless the destination sets allow_private_network. Both are checked again at every
write and every connection; a host that does not resolve here is left to that later check.
"""

from __future__ import annotations

from pathlib import Path


def destination_problems(destination, storage_root: Path) -> list[tuple[str, str]]:
    """(field, problem) pairs; empty when the destination may be applied."""
    from compliance_reports.artifacts.storage_root import OutsideRootError, check_folder
    from compliance_reports.delivery.outbound import url_problem

    problems: list[tuple[str, str]] = []
    if destination.type == "storage" and destination.provider == "local":
        try:
            check_folder(storage_root, destination.base_path, "base_path")
        except OutsideRootError as exc:
            problems.append(("base_path", str(exc)))
    allow_private = getattr(destination, "allow_private_network", False)
    if destination.type == "webhook" and not allow_private:
        problem = url_problem(destination.url, "url")
        if problem:
            problems.append(("url", problem))
    if destination.type == "storage" and destination.provider == "s3" and destination.endpoint_url and not allow_private:
        problem = url_problem(destination.endpoint_url, "endpoint_url")
        if problem:
            problems.append(("endpoint_url", problem))
    return problems
