"""Local storage stays under the storage root: at apply and again at every write."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil

import pytest

from compliance_reports.config import store as config_store
from compliance_reports.config.loader import ConfigError
from compliance_reports.config.models import StorageDestination, parse_destination
from compliance_reports.delivery.dispatcher import deliver_publication
from compliance_reports_tests.delivery.conftest import fast_retry

KEYS = "{organization_id}/{report_id}/{period}/{filename}"


def local(base: str, name: str = "share") -> StorageDestination:
    return StorageDestination.model_validate({
        "type": "storage", "name": name, "provider": "local", "base_path": base, "key_template": KEYS,
        "retry": fast_retry().model_dump(),
    })


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "id_rsa").write_text("private key")
    return folder


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("base", ["../x", "/etc/compliance", "~/reports", "a/../../x", "a\\b"])
def test_the_model_refuses_a_base_path_that_is_not_a_folder_below_the_root(base):
    with pytest.raises(ValueError, match="base_path"):
        parse_destination({"type": "storage", "name": "x", "provider": "local", "base_path": base})


def test_apply_refuses_a_base_path_leading_out_through_a_link(engine, storage_root, outside):
    storage_root.mkdir(parents=True)
    (storage_root / "exports").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConfigError) as refused:
        config_store.apply_destinations(engine, [local("fine", "ok"), local("exports/reports")], ["f.yaml document 1", "f.yaml document 2"])
    [problem] = refused.value.problems
    assert problem.startswith("f.yaml document 2: destination 'share' field 'base_path': ")
    assert "symbolic link" in problem and str(outside) in problem
    assert config_store.list_destinations(engine) == []  # nothing of the list was written


def test_a_link_planted_after_apply_is_refused_at_write(engine, storage_root, outside, publication):
    config_store.apply_destinations(engine, [local("share")])
    storage_root.mkdir(parents=True, exist_ok=True)
    (storage_root / "share").symlink_to(outside, target_is_directory=True)  # planted later
    (outcome,) = deliver_publication(engine, publication, [local("share")], sleep_fn=lambda s: None)
    assert outcome.status == "dead"
    assert "symbolic link" in outcome.error and "outside" in outcome.error
    assert _files(outside) == ["id_rsa"]


def test_a_link_planted_inside_the_key_path_is_refused(engine, storage_root, outside, publication):
    (outcome,) = deliver_publication(engine, publication, [local("share")], sleep_fn=lambda s: None)
    assert outcome.status == "sent"
    org = storage_root / "share" / "org-1"
    shutil.rmtree(org)
    org.symlink_to(outside, target_is_directory=True)
    again = dataclasses.replace(publication, period="2026-11-30")
    (refused,) = deliver_publication(engine, again, [local("share")], sleep_fn=lambda s: None)
    assert refused.status == "dead" and "symbolic link" in refused.error
    assert _files(outside) == ["id_rsa"]


def test_a_link_staying_inside_the_root_is_followed(engine, storage_root, publication):
    (storage_root / "volumes" / "reports").mkdir(parents=True)
    (storage_root / "share").symlink_to(storage_root / "volumes" / "reports", target_is_directory=True)
    (outcome,) = deliver_publication(engine, publication, [local("share")], sleep_fn=lambda s: None)
    assert outcome.status == "sent"
    stored = storage_root / "volumes" / "reports" / "org-1" / "hipaa-weekly" / "2026-11-23" / "report.pdf"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == publication.files[0].sha256


def test_a_link_planted_at_the_file_name_is_neither_followed_nor_replaced(engine, storage_root, outside, publication):
    folder = storage_root / "share" / "org-1" / "hipaa-weekly" / "2026-11-23"
    folder.mkdir(parents=True)
    (folder / "report.pdf").symlink_to(outside / "id_rsa")
    (outcome,) = deliver_publication(engine, publication, [local("share")], sleep_fn=lambda s: None)
    # the name is taken (evidence is never overwritten), and a link is never read through
    assert outcome.status == "dead" and "already holds other content (sha256 unknown" in outcome.error
    assert (outside / "id_rsa").read_text() == "private key"
    assert (folder / "report.pdf").is_symlink()
    assert not list(folder.glob(".*.part"))
