"""CLI commands for exported files: `decrypt` and `verify-manifest`.

The main group registers them with `for command in FILE_COMMANDS: main.add_command(command)`.

Exit status: 0 all good; 1 a problem was found (decryption failed, a file does not match
its manifest or is missing, a file is in the folder but not listed, the signature does not
verify or was not checked without --allow-unsigned); 2 bad input (missing file or folder, key
variable unset or malformed, output exists).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from compliance_reports.artifacts import file_crypto, manifest
from compliance_reports.cli.output import ENV_NAME, PATH, emit_json

DEFAULT_ENCRYPTION_KEY_ENV = "COMPLIANCE_ENCRYPTION_KEY"


def _fail(message: str, status: int) -> None:
    click.echo(message, err=True)
    sys.exit(status)


@click.command("decrypt")
@click.argument("file", type=PATH)
@click.option("--key-env", default=DEFAULT_ENCRYPTION_KEY_ENV, show_default=True, type=ENV_NAME,
              help="Environment variable holding the 32-byte key (64 hex characters or base64).")
@click.option("-o", "--output", "output", type=PATH, default=None,
              help="Where to write the plaintext (default: FILE without .enc).")
@click.option("--name", "original_name", default=None,
              help="The file's original name, when the .enc file was renamed.")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the file, key id and output path as JSON.")
def decrypt(file: Path, key_env: str, output: Path | None, original_name: str | None, force: bool,
            as_json: bool) -> None:
    """Decrypt an AES-256-GCM encrypted report file (NAME.enc -> NAME)."""
    if not file.is_file():
        _fail(f"decrypt: {file} is not a file", 2)
    try:
        key, key_id = file_crypto.load_key(key_env)
    except file_crypto.EncryptionKeyError as exc:
        _fail(f"decrypt: {exc}", 2)
    if original_name is None and not file.name.endswith(file_crypto.SUFFIX):
        _fail(f"decrypt: {file.name} does not end in .enc; give --name with its original name", 2)
    name = original_name or file.name[: -len(file_crypto.SUFFIX)]
    dest = output if output is not None else file.with_name(name)
    if dest.exists() and not force:
        _fail(f"decrypt: {dest} exists; use --force to overwrite or -o for another path", 2)
    try:
        file_crypto.decrypt_file(file, key, dest, original_name=name)
    except file_crypto.DecryptionError as exc:
        _fail(f"decrypt: {file.name}: {exc}", 1)
    if as_json:
        emit_json({"file": str(file), "key_id": key_id, "output": str(dest)})
        return
    click.echo(f"decrypted {file.name} with key {key_id} -> {dest}")


@click.command("verify-manifest")
@click.argument("folder", type=PATH)
@click.option("--key-env", default=None, type=ENV_NAME,
              help=f"Environment variable holding the signing key (default {manifest.DEFAULT_KEY_ENV}).")
@click.option("--allow-unsigned", is_flag=True,
              help="Accept a check of the hashes only when no key is given or the manifest is unsigned "
                   "(whoever changed a file could have rewritten its hash).")
@click.option("--exports-only", is_flag=True,
              help="The folder is a delivered copy (storage destination): the document and events "
                   "listed as sources stay in the artifact store and are reported as not checked.")
@click.option("--json", "as_json", is_flag=True, help="Print the verification report as JSON.")
def verify_manifest(folder: Path, key_env: str | None, allow_unsigned: bool, exports_only: bool,
                    as_json: bool) -> None:
    """Check FOLDER against its manifest.json: every listed file's size and SHA-256, no file
    that is not listed (dot-files included), and the signature."""
    try:
        if key_env is not None:  # named explicitly: it must be set
            key = manifest.load_manifest_key(key_env, os.environ.get, required=True)
        else:
            key = manifest.load_manifest_key(manifest.DEFAULT_KEY_ENV, os.environ.get)
    except manifest.ManifestKeyError as exc:
        _fail(f"verify-manifest: {exc}", 2)
    try:
        report = manifest.verify_folder(folder, key, allow_unsigned=allow_unsigned, exports_only=exports_only)
    except FileNotFoundError as exc:
        _fail(f"verify-manifest: {exc}", 2)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_report(folder, report, key)
    sys.exit(0 if report.ok else 1)


def _print_report(folder: Path, report: manifest.VerificationReport, key: bytes | None) -> None:
    m = report.manifest or {}
    click.echo(f"{folder}: report {m.get('report_id')} period {m.get('period')} run {m.get('run_id')}"
               f" (manifest version {m.get('manifest_version')})")
    click.echo(f"checked (size and SHA-256): {report.files_checked} file(s)"
               + (f": {', '.join(report.checked)}" if report.checked else ""))
    signature = {
        "valid": f"valid (HMAC-SHA256, key id {manifest.key_id_for(key) if key else '-'})",
        "invalid": "INVALID",
        "unsigned": "none (unsigned manifest)",
        "not_checked": "NOT checked (no key)",
    }[report.signature]
    click.echo(f"signature: {signature}")
    for item in report.not_checked:
        click.echo(f"NOT checked: {item}")
    for note in report.notes:
        click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(f"PROBLEM: {problem}")
    click.echo("OK" if report.ok else f"FAILED: {len(report.problems)} problem(s)")


FILE_COMMANDS = [decrypt, verify_manifest]
