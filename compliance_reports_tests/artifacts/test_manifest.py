"""Manifest: hashes, HMAC signature, offline verification, the verify-manifest command."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from compliance_reports.artifacts import manifest
from compliance_reports.cli.files import verify_manifest
from compliance_reports.config.models import ExportSettings
from compliance_reports.exporters.render import export_all
from compliance_reports.reports.document import canonical_json, document_sha256
from compliance_reports_tests.exporters.sample import sample_document, write_events

SIGNING_KEY = b"a-manifest-signing-key-of-32-bytes!"


@pytest.fixture
def run_folder(tmp_path):
    events = write_events(tmp_path / "events.parquet", n=20)
    folder = tmp_path / "run"
    files = export_all(sample_document(), events, ["csv", "json", "xml", "parquet"],
                       ExportSettings(compression="gzip"), folder, pdf_event_limit=5)
    return folder, files


def test_manifest_lists_every_file_with_matching_hashes(run_folder):
    folder, files = run_folder
    path = manifest.write_manifest(folder, sample_document(), files, key=SIGNING_KEY)
    data = json.loads(path.read_text(encoding="utf-8"))
    doc = sample_document()
    assert data["report_id"] == "hipaa-monthly" and data["organization_id"] == "acme-health"
    assert data["period"] == "2026-11-01" and data["run_id"] == "run-7f3a"
    assert data["generated_at"] == doc["header"]["generated_at"]
    assert data["events_sha256"] == doc["header"]["events_sha256"]
    assert data["document_sha256"] == document_sha256(doc)
    assert [f["filename"] for f in data["files"]] == sorted(f.filename for f in files)
    for entry in data["files"]:
        body = (folder / entry["filename"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(body).hexdigest()
        assert entry["size"] == len(body)
        assert entry["compressed"] == "gzip" and entry["encrypted"] is False and entry["key_id"] is None
        assert set(manifest.FILE_FIELDS) <= set(entry)
    assert data["signature_algorithm"] == "HMAC-SHA256"
    assert data["signature_key_id"] == manifest.key_id_for(SIGNING_KEY)
    assert "warning" not in data
    report = manifest.verify_folder(folder, SIGNING_KEY)
    assert report.ok and report.signature == "valid" and report.files_checked == len(files), report.problems


def test_manifest_is_reproducible(run_folder, tmp_path):
    folder, files = run_folder
    a = manifest.write_manifest(folder, sample_document(), files, key=SIGNING_KEY).read_bytes()
    b = manifest.write_manifest(folder, sample_document(), files, key=SIGNING_KEY).read_bytes()
    assert a == b


def test_unsigned_manifest_has_null_signature_and_warning(run_folder):
    folder, files = run_folder
    path = manifest.write_manifest(folder, sample_document(), files, key_env="NO_SUCH_VARIABLE_SET")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["signature"] is None and "unsigned" in data["warning"]
    # Without a key nothing proves the hashes were not rewritten: accepted only when asked for.
    report = manifest.verify_folder(folder, None)
    assert not report.ok and report.signature == "unsigned"
    assert any("signature NOT checked" in p for p in report.problems)
    report = manifest.verify_folder(folder, None, allow_unsigned=True)
    assert report.ok and report.signature == "unsigned" and report.files_checked == len(files)
    assert any(item.startswith("signature") for item in report.not_checked)
    # a verifier holding a key refuses an unsigned manifest (it may have been swapped)
    report = manifest.verify_folder(folder, SIGNING_KEY)
    assert not report.ok and report.signature == "unsigned"


def test_key_from_environment(run_folder):
    folder, files = run_folder
    env = {manifest.DEFAULT_KEY_ENV: SIGNING_KEY.decode()}
    manifest.write_manifest(folder, sample_document(), files, key_lookup=env.get)
    assert manifest.verify_folder(folder, SIGNING_KEY).signature == "valid"
    with pytest.raises(manifest.ManifestKeyError, match="SHORT"):
        manifest.load_manifest_key("SHORT", {"SHORT": "abc"}.get)


def test_changed_missing_and_forged(run_folder):
    folder, files = run_folder
    manifest.write_manifest(folder, sample_document(), files, key=SIGNING_KEY)
    target = folder / files[0].filename
    original = target.read_bytes()

    target.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    report = manifest.verify_folder(folder, SIGNING_KEY)
    assert not report.ok and any("sha256" in p for p in report.problems)
    target.write_bytes(original)

    target.unlink()
    report = manifest.verify_folder(folder, SIGNING_KEY)
    assert not report.ok and any("missing" in p for p in report.problems)
    target.write_bytes(original)

    # forge: change a listed hash and recompute the signature with another key
    path = folder / manifest.MANIFEST_NAME
    data = json.loads(path.read_text())
    data["files"][1]["sha256"] = "0" * 64
    data["signature"] = manifest.sign(data, b"attacker-key-attacker-key-123456")
    path.write_text(json.dumps(data))
    report = manifest.verify_folder(folder, SIGNING_KEY)
    assert report.signature == "invalid" and not report.ok

    # forge: keep the signature, edit content
    data = json.loads(manifest.manifest_bytes(manifest.build_manifest(sample_document(), files, key=SIGNING_KEY)))
    data["period"] = "2026-10-01"
    path.write_text(json.dumps(data))
    report = manifest.verify_folder(folder, SIGNING_KEY)
    assert report.signature == "invalid" and "changed after signing" in " ".join(report.problems)


def test_names_that_leave_the_folder_are_problems(run_folder, tmp_path):
    folder, files = run_folder
    (tmp_path / "secret.txt").write_text("x")
    data = manifest.build_manifest(sample_document(), files)
    data["files"].append({"filename": "../secret.txt", "size": 1, "sha256": "x"})
    (folder / manifest.MANIFEST_NAME).write_text(json.dumps(data))
    report = manifest.verify_folder(folder, None)
    assert not report.ok and any("not a plain file name" in p for p in report.problems)


def test_cli_verify_manifest(run_folder, monkeypatch):
    folder, files = run_folder
    manifest.write_manifest(folder, sample_document(), files, key=SIGNING_KEY)
    runner = CliRunner()
    monkeypatch.setenv("RUN_SIGNING_KEY", SIGNING_KEY.decode())
    monkeypatch.delenv(manifest.DEFAULT_KEY_ENV, raising=False)

    result = runner.invoke(verify_manifest, [str(folder), "--key-env", "RUN_SIGNING_KEY"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "signature: valid" in result.output

    result = runner.invoke(verify_manifest, [str(folder), "--key-env", "RUN_SIGNING_KEY", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["ok"] is True and report["signature"] == "valid" and report["files_checked"] == len(files)

    # without a key: a signed manifest fails unless --allow-unsigned accepts hashes only
    result = runner.invoke(verify_manifest, [str(folder)])
    assert result.exit_code == 1 and "signature: NOT checked (no key)" in result.output
    result = runner.invoke(verify_manifest, [str(folder), "--allow-unsigned"])
    assert result.exit_code == 0 and "signature: NOT checked (no key)" in result.output
    assert "NOT checked: signature (no key was given)" in result.output

    # changed file -> 1
    target = folder / files[0].filename
    original = target.read_bytes()
    target.write_bytes(original + b"x")
    result = runner.invoke(verify_manifest, [str(folder), "--key-env", "RUN_SIGNING_KEY", "--json"])
    assert result.exit_code == 1 and json.loads(result.output)["problems"]
    target.write_bytes(original)

    # missing file -> 1
    target.unlink()
    assert runner.invoke(verify_manifest, [str(folder), "--key-env", "RUN_SIGNING_KEY"]).exit_code == 1
    target.write_bytes(original)

    # forged signature -> 1
    path = folder / manifest.MANIFEST_NAME
    data = json.loads(path.read_text())
    data["signature"] = "ab" * 32
    path.write_text(json.dumps(data))
    result = runner.invoke(verify_manifest, [str(folder), "--key-env", "RUN_SIGNING_KEY"])
    assert result.exit_code == 1 and "signature" in result.output

    # bad input -> 2
    assert runner.invoke(verify_manifest, [str(folder / "nope")]).exit_code == 2
    assert runner.invoke(verify_manifest, [str(folder), "--key-env", "UNSET_VARIABLE_X"]).exit_code == 2
    path.unlink()
    assert runner.invoke(verify_manifest, [str(folder)]).exit_code == 2


@pytest.fixture
def stored_set(tmp_path):
    """A run folder as the artifact store keeps it: document, events, exports, manifest."""
    folder = tmp_path / "stored"
    files = export_all(sample_document(), write_events(tmp_path / "events.parquet", n=20),
                       ["csv", "json", "pdf"], ExportSettings(), folder, pdf_event_limit=5)
    (folder / "report.json").write_bytes(canonical_json(sample_document()))
    (folder / "events.parquet").write_bytes((tmp_path / "events.parquet").read_bytes())
    sources = [manifest.source_entry(folder / "report.json", "document"),
               manifest.source_entry(folder / "events.parquet", "events")]
    manifest.write_manifest(folder, sample_document(), files, sources=sources, key=SIGNING_KEY)
    return folder, files


def test_manifest_lists_the_document_and_events_with_the_exports(stored_set):
    folder, files = stored_set
    data = json.loads((folder / manifest.MANIFEST_NAME).read_text())
    assert data["manifest_version"] == 2
    assert [f["filename"] for f in data["files"]] == sorted(f.filename for f in files)
    assert [(s["filename"], s["role"], s["media_type"]) for s in data["sources"]] == [
        ("events.parquet", "events", "application/vnd.apache.parquet"),
        ("report.json", "document", "application/json"),
    ]
    for entry in data["sources"]:
        body = (folder / entry["filename"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(body).hexdigest() and entry["size"] == len(body)
    report = manifest.verify_folder(folder, SIGNING_KEY)
    assert report.ok, report.problems
    assert sorted(report.checked) == sorted([*(f.filename for f in files), "report.json", "events.parquet"])
    assert report.not_checked == []

    # a changed document is caught like any exported file
    document = folder / "report.json"
    document.write_bytes(document.read_bytes().replace(b"hipaa-monthly", b"hipaa-monthlx"))
    report = manifest.verify_folder(folder, SIGNING_KEY)
    assert not report.ok and any(p.startswith("report.json: sha256") for p in report.problems)


@pytest.mark.parametrize("extra", ["notes.txt", ".hidden", ".manifest.json.123.part"])
def test_a_file_that_is_not_listed_fails_the_verification(stored_set, monkeypatch, extra):
    folder, _ = stored_set
    (folder / extra).write_bytes(b"added later")
    monkeypatch.setenv("RUN_SIGNING_KEY", SIGNING_KEY.decode())
    result = CliRunner().invoke(verify_manifest, [str(folder), "--key-env", "RUN_SIGNING_KEY"])
    assert result.exit_code == 1
    assert f"PROBLEM: {extra}: file in the folder is not listed in the manifest" in result.output


def test_a_folder_that_is_not_listed_fails_the_verification(stored_set):
    folder, _ = stored_set
    (folder / ".git").mkdir()
    report = manifest.verify_folder(folder, SIGNING_KEY)
    assert report.problems == [".git: folder in the folder is not listed in the manifest"]


def test_file_and_hash_both_changed_is_not_passed_off_as_verified(stored_set, monkeypatch):
    folder, files = stored_set
    target = folder / files[0].filename
    target.write_bytes(b"forged content")
    path = folder / manifest.MANIFEST_NAME
    data = json.loads(path.read_text())
    entry = next(f for f in data["files"] if f["filename"] == files[0].filename)
    entry["sha256"], entry["size"] = hashlib.sha256(b"forged content").hexdigest(), len(b"forged content")
    path.write_text(json.dumps(data))
    monkeypatch.delenv(manifest.DEFAULT_KEY_ENV, raising=False)
    runner = CliRunner()

    result = runner.invoke(verify_manifest, [str(folder)])
    assert result.exit_code == 1
    assert "PROBLEM: signature NOT checked (no key was given)" in result.output

    result = runner.invoke(verify_manifest, [str(folder), "--allow-unsigned", "--json"])
    assert result.exit_code == 0  # only what was asked for: the hashes agree with the manifest
    report = json.loads(result.output)
    assert report["signature"] == "not_checked" and report["not_checked"][0].startswith("signature")

    monkeypatch.setenv("RUN_SIGNING_KEY", SIGNING_KEY.decode())
    result = runner.invoke(verify_manifest, [str(folder), "--key-env", "RUN_SIGNING_KEY"])
    assert result.exit_code == 1 and "signature: INVALID" in result.output


def test_exports_only_checks_a_delivered_copy_and_says_what_it_left_out(stored_set, tmp_path, monkeypatch):
    folder, files = stored_set
    delivered = tmp_path / "destination"
    delivered.mkdir()
    for name in [*(f.filename for f in files), manifest.MANIFEST_NAME]:
        (delivered / name).write_bytes((folder / name).read_bytes())
    monkeypatch.setenv("RUN_SIGNING_KEY", SIGNING_KEY.decode())
    runner = CliRunner()

    strict = runner.invoke(verify_manifest, [str(delivered), "--key-env", "RUN_SIGNING_KEY"])
    assert strict.exit_code == 1
    assert "PROBLEM: report.json: missing" in strict.output and "PROBLEM: events.parquet: missing" in strict.output

    result = runner.invoke(verify_manifest, [str(delivered), "--key-env", "RUN_SIGNING_KEY", "--exports-only"])
    assert result.exit_code == 0, result.output
    assert "NOT checked: report.json (sources: kept in the artifact store; --exports-only)" in result.output
    assert "NOT checked: events.parquet (sources: kept in the artifact store; --exports-only)" in result.output
    assert f"checked (size and SHA-256): {len(files)} file(s)" in result.output

    # --exports-only does not loosen the check of anything that is in the folder
    (delivered / files[0].filename).write_bytes(b"changed")
    result = runner.invoke(verify_manifest, [str(delivered), "--key-env", "RUN_SIGNING_KEY", "--exports-only"])
    assert result.exit_code == 1
