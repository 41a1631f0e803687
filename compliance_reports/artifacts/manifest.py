"""The SHA-256 manifest of a run's stored set, its HMAC signature, and offline verification.

`manifest.json`, written next to the files it lists (the artifact store's run folder):

    {
      "manifest_version": 2,
      "report_id": ..., "organization_id": ..., "period": ..., "run_id": ...,
      "generated_at": ...,           (from the document header, not the clock: reproducible)
      "events_sha256": ...,          (header.events_sha256)
      "document_sha256": ...,        (report_document.document_sha256: canonical JSON)
      "content_fingerprint": ...,    (document.content_fingerprint: without run-specific fields;
                                      the delivery ledger's identity of the content)
      "reissue_of": {...} | null,    (the earlier issue this one supersedes, see document.py)
      "files": [                     (the exported files, the ones delivered; sorted by filename)
        {"filename", "format", "media_type", "size", "sha256", "content_sha256",
         "compressed", "encrypted", "key_id"}
      ],
      "sources": [                   (what the files were rendered from, kept in the store and
        {"filename", "role", "media_type", "size", "sha256"}   never delivered: report.json
      ],                             with role "document", events.parquet with role "events")
      "signature_algorithm": "HMAC-SHA256" | null,
      "signature_key_id": "<first 16 hex of SHA-256(key)>" | null,
      "signature": "<hex>" | null,
      "warning": "..."               (only in an unsigned manifest)
    }

Version 1 manifests had no "sources". Delivery reads "files" only, so a webhook receiver or a
storage destination sees the same list as before.

Signature: HMAC-SHA256, keyed with the bytes of the environment variable named by the
configuration (default COMPLIANCE_MANIFEST_KEY; its value is used as UTF-8 text, at least 16
bytes), over the canonical JSON (keys sorted, no whitespace, UTF-8, non-ASCII kept) of the
manifest without its "signature" field. The algorithm, key id and sources are therefore signed
too. Without a key the manifest is still written, with "signature": null and a "warning" that
says it proves integrity against accidents only (anyone can recompute plain hashes).

`verify_folder(folder, key, ...)` checks offline that every listed file is present with the
listed size and SHA-256, that nothing else is in the folder (dot-files included), that listed
names are plain file names (a forged manifest cannot point outside the folder), and the
signature. Without a key the signature cannot be checked, so anyone able to change a file could
have rewritten the manifest too: that is a problem unless the caller accepts it
(`allow_unsigned`). A storage destination holds the exported files and the manifest only;
with `exports_only` a source that is not in the folder is listed as not checked instead of
missing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compliance_reports.artifacts.checksums import sha256_file
from compliance_reports.reports.document import content_fingerprint, document_sha256

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2
DEFAULT_KEY_ENV = "COMPLIANCE_MANIFEST_KEY"
SIGNATURE_ALGORITHM = "HMAC-SHA256"
MIN_KEY_BYTES = 16
UNSIGNED_WARNING = (
    "unsigned manifest: no signing key was configured, so these hashes detect accidental "
    "damage only; anyone able to change a file can also rewrite this manifest"
)
FILE_FIELDS = (
    "filename", "format", "media_type", "size", "sha256", "content_sha256", "compressed",
    "encrypted", "key_id",
)
# Role of each source file -> its media type.
SOURCE_ROLES = {"document": "application/json", "events": "application/vnd.apache.parquet"}


class StoredSetChanged(ValueError):
    """A stored file (an export or the report document) no longer matches its manifest entry:
    never delivered, and retrying does not help."""


class ManifestKeyError(ValueError):
    """The signing-key variable holds no usable key."""


def key_id_for(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def load_manifest_key(
    variable: str | None = DEFAULT_KEY_ENV,
    lookup: Callable[[str], str | None] = os.environ.get,
    required: bool = False,
) -> bytes | None:
    """The signing key from `variable`, None when it is unset (an error when `required`)."""
    if not variable:
        return None
    value = lookup(variable)
    if value is None or value == "":
        if required:
            raise ManifestKeyError(f"environment variable {variable} (the manifest signing key) is not set")
        return None
    try:
        key = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ManifestKeyError(
            f"environment variable {variable} is not valid UTF-8 (at character {exc.start})"
        ) from None
    if len(key) < MIN_KEY_BYTES:
        raise ManifestKeyError(
            f"environment variable {variable} holds a manifest signing key shorter than "
            f"{MIN_KEY_BYTES} bytes; use a random value such as `openssl rand -hex 32`"
        )
    return key


def canonical_bytes(manifest: dict[str, Any]) -> bytes:
    """The signed bytes: canonical JSON of the manifest without its signature field."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sign(manifest: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical_bytes(manifest), hashlib.sha256).hexdigest()


def _file_entry(item: Any) -> dict[str, Any]:
    data = item.to_dict() if hasattr(item, "to_dict") else dict(item)
    return {name: data.get(name) for name in FILE_FIELDS}


def source_entry(path: Path, role: str, filename: str | None = None) -> dict[str, Any]:
    """The manifest entry of a stored source file (`role`: document or events)."""
    if role not in SOURCE_ROLES:
        raise ValueError(f"source role must be one of {', '.join(SOURCE_ROLES)}, not {role!r}")
    path = Path(path)
    return {
        "filename": filename or path.name,
        "role": role,
        "media_type": SOURCE_ROLES[role],
        "size": path.stat().st_size,
        "sha256": sha256_file(path),
    }


def build_manifest(
    document: dict[str, Any],
    files: Iterable[Any],
    *,
    sources: Iterable[dict[str, Any]] = (),
    key: bytes | None = None,
) -> dict[str, Any]:
    """The manifest dict for `files` (ExportedFile objects or dicts with FILE_FIELDS) and the
    `sources` they were rendered from (entries made by source_entry)."""
    header = document.get("header") or {}
    entries = sorted((_file_entry(f) for f in files), key=lambda e: e["filename"])
    source_entries = sorted((dict(e) for e in sources), key=lambda e: e["filename"])
    names = [e["filename"] for e in entries + source_entries]
    if len(set(names)) != len(names):
        raise ValueError("the manifest would list a file name twice")
    for name in names:
        _check_name(name)
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "report_id": header.get("report_id"),
        "organization_id": header.get("organization_id"),
        "period": header.get("period"),
        "run_id": header.get("run_id"),
        "generated_at": header.get("generated_at"),
        "events_sha256": header.get("events_sha256"),
        "document_sha256": document_sha256(document),
        "content_fingerprint": content_fingerprint(document),
        "reissue_of": document.get("reissue_of"),
        "files": entries,
        "sources": source_entries,
    }
    if key:
        manifest["signature_algorithm"] = SIGNATURE_ALGORITHM
        manifest["signature_key_id"] = key_id_for(key)
        manifest["signature"] = sign(manifest, key)
    else:
        manifest["signature_algorithm"] = None
        manifest["signature_key_id"] = None
        manifest["warning"] = UNSIGNED_WARNING
        manifest["signature"] = None
    return manifest


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_manifest(
    folder: Path,
    document: dict[str, Any],
    files: Iterable[Any],
    *,
    sources: Iterable[dict[str, Any]] = (),
    key: bytes | None = None,
    key_env: str | None = DEFAULT_KEY_ENV,
    key_lookup: Callable[[str], str | None] = os.environ.get,
) -> Path:
    """Write `folder/manifest.json`; signed with `key`, else with the key in `key_env` if set."""
    if key is None:
        key = load_manifest_key(key_env, key_lookup)
    manifest = build_manifest(document, files, sources=sources, key=key)
    path = Path(folder) / MANIFEST_NAME
    tmp = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.part")
    tmp.write_bytes(manifest_bytes(manifest))
    os.replace(tmp, path)
    return path


def _check_name(name: Any) -> None:
    if (
        not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name
        or "\x00" in name or name == MANIFEST_NAME
    ):
        raise ValueError(f"manifest file name {name!r} is not a plain file name")


@dataclass
class VerificationReport:
    folder: Path
    ok: bool = False
    files_checked: int = 0
    signature: str = "not_checked"  # valid | invalid | unsigned | not_checked
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # files whose size and SHA-256 matched or were compared
    not_checked: list[str] = field(default_factory=list)  # what this verification did not establish
    manifest: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "ok": self.ok,
            "files_checked": self.files_checked,
            "checked": list(self.checked),
            "not_checked": list(self.not_checked),
            "signature": self.signature,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "manifest_version": (self.manifest or {}).get("manifest_version"),
            "report_id": (self.manifest or {}).get("report_id"),
            "period": (self.manifest or {}).get("period"),
            "run_id": (self.manifest or {}).get("run_id"),
        }


def _check_signature(report: VerificationReport, manifest: dict[str, Any], key: bytes | None,
                     allow_unsigned: bool) -> None:
    signature = manifest.get("signature")
    if key is None:
        report.signature = "unsigned" if signature is None else "not_checked"
        what = "the manifest is unsigned" if signature is None else "no key was given"
        report.not_checked.append(
            f"signature ({what}): whoever changed a file could have rewritten its hash in the manifest"
        )
        if allow_unsigned:
            report.notes.append("signature NOT checked, accepted with --allow-unsigned: hashes only")
        else:
            report.problems.append(
                f"signature NOT checked ({what}): give the signing key with --key-env, "
                "or --allow-unsigned to accept a check of the hashes only"
            )
        return
    if signature is None:
        report.signature = "unsigned"
        report.problems.append("the manifest is unsigned, but a signing key was given: it may have been replaced")
        return
    own_id = key_id_for(key)
    if manifest.get("signature_algorithm") != SIGNATURE_ALGORITHM:
        report.signature = "invalid"
        report.problems.append(f"unsupported signature algorithm {manifest.get('signature_algorithm')!r}")
    elif not isinstance(signature, str) or not hmac.compare_digest(signature, sign(manifest, key)):
        report.signature = "invalid"
        if manifest.get("signature_key_id") != own_id:
            report.problems.append(
                f"signature does not verify: the manifest names key id "
                f"{manifest.get('signature_key_id')}, the given key has id {own_id}"
            )
        else:
            report.problems.append("signature does not verify: the manifest was changed after signing")
    else:
        report.signature = "valid"


def _check_entries(
    report: VerificationReport, folder: Path, label: str, entries: Any, missing_ok: bool = False
) -> set[str]:
    """Compare each listed file with the folder; returns the listed names."""
    listed: set[str] = set()
    if not isinstance(entries, list):
        report.problems.append(f"{MANIFEST_NAME}: '{label}' is not a list")
        return listed
    for index, entry in enumerate(entries):
        name = entry.get("filename") if isinstance(entry, dict) else None
        try:
            _check_name(name)
        except ValueError as exc:
            report.problems.append(f"{label}[{index}]: {exc}")
            continue
        listed.add(name)
        target = folder / name
        if not target.is_file():
            if missing_ok:
                report.not_checked.append(f"{name} ({label}: kept in the artifact store; --exports-only)")
            else:
                report.problems.append(f"{name}: missing")
            continue
        report.files_checked += 1
        report.checked.append(name)
        size = target.stat().st_size
        if size != entry.get("size"):
            report.problems.append(f"{name}: size {size} differs from the manifest's {entry.get('size')}")
        actual = sha256_file(target)
        if actual != entry.get("sha256"):
            report.problems.append(f"{name}: sha256 {actual} differs from the manifest's {entry.get('sha256')}")
    return listed


def verify_folder(
    folder: Path, key: bytes | None, *, allow_unsigned: bool = False, exports_only: bool = False
) -> VerificationReport:
    """Check a folder against its manifest.json; see the module docstring.

    Raises FileNotFoundError when the folder or its manifest does not exist (bad input);
    everything else found wrong is listed in `problems`, and what was not established is
    listed in `not_checked`.
    """
    folder = Path(folder)
    report = VerificationReport(folder=folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no {MANIFEST_NAME}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.problems.append(f"{MANIFEST_NAME} is not valid JSON: {exc}")
        return report
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        report.problems.append(f"{MANIFEST_NAME} does not have the manifest structure (a 'files' list)")
        return report
    report.manifest = manifest

    # Signature first: when it fails, the listed hashes cannot be trusted either.
    _check_signature(report, manifest, key, allow_unsigned)
    listed = _check_entries(report, folder, "files", manifest["files"])
    sources = manifest.get("sources", [])
    listed |= _check_entries(report, folder, "sources", sources, missing_ok=exports_only)
    if not sources:
        report.notes.append(
            f"the manifest (version {manifest.get('manifest_version')}) lists no document or events file"
        )
    # Anything else in the folder is not covered by the manifest: dot-files and folders too.
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name != MANIFEST_NAME and entry.name not in listed:
            kind = "folder" if entry.is_dir() else "file"
            report.problems.append(f"{entry.name}: {kind} in the folder is not listed in the manifest")
    report.ok = not report.problems
    return report
