"""`export_all`: render every configured format of one report document, once (plus the JSON
document when the PDF needs a file that holds a long table whole, see `pdf_cap`).

Steps for each format: render the content file, then compress it (gzip or zip, reproducibly),
then encrypt it (AES-256-GCM) when the configuration asks. File names come from the header:

    {report_id}_{period}.{ext}[.gz|.zip][.enc]      e.g. hipaa-monthly_2026-11-01.csv.gz.enc

Everything is rendered into a private temporary folder inside `out_dir`; the final files are
moved into `out_dir` only when every format succeeded, so a failure leaves no partial set
behind. Bad input (unknown format, unusable header values, a missing or malformed encryption
key) is rejected before anything is written.

Concurrency: the PDF (WeasyPrint, CPU-heavy and by far the largest memory user) is laid out in
its own process (`pdf_process`: a fresh interpreter, so nothing of the caller, such as a Dagster
run worker's threads or open connections, is inherited; this process renders its HTML first),
while the other formats render one after another in this process. A short PDF (fewer than
PDF_PROCESS_MIN_ROWS table rows, as pdf_cap shortens them, and listed events) renders in this
process too: a process start would cost more than it saves. Each file holds what a sequential
rendering writes, since every exporter is a function of its inputs only (the PDF's bytes differ
between any two WeasyPrint renderings, in one process too; its pages and text do not). The PDF
process ends with the export, so its memory is returned at once.

Hashing: each rendered file is read once for its SHA-256, right after it is written (the PDF's in
its own process); an uncompressed, unencrypted file is its own content, so that hash is also the
file's. Gzip and encryption hash what they write as they write it; a zip archive is read once
more for its own hash.

Determinism: for the same document, events file and settings, the CSV, JSON, XML, Parquet and
XLSX files are byte-identical on every run, also gzip- or zip-compressed. Encrypted files differ
(a fresh nonce per file); their `content_sha256` (the rendered content) does not.

Identifier redaction (`export.redact_identifiers`) is not applied here: the report builders
redact the document and the events file they write, so that `events_sha256` describes what
is exported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compliance_reports.artifacts import compression, file_crypto
from compliance_reports.artifacts.checksums import sha256_file
from compliance_reports.config.models import ExportSettings
from compliance_reports.exporters import pdf_cap, pdf_process
from compliance_reports.exporters.common import (
    ENCRYPTED_MEDIA_TYPE,
    FORMAT_EXTENSIONS,
    FORMAT_MEDIA_TYPES,
    ExportedFile,
    base_name,
    content_filename,
)

FORMATS = tuple(FORMAT_EXTENSIONS)
# From this many table rows plus listed events on, the PDF renders in its own process. Measured:
# a process start costs ~1.2 s more than a PDF of a few dozen rows in a warm process, while a
# 134-page PDF (2,150-row appendix, 200 events) takes 27 s and ~800 MB.
PDF_PROCESS_MIN_ROWS = 500


def _render(
    fmt: str,
    document: dict[str, Any],
    events_path: Path | None,
    include_events: bool,
    out_path: Path,
    pdf_event_limit: int,
    formats: list[str],
    pdf_table_row_limit: int = pdf_cap.DEFAULT_TABLE_ROW_LIMIT,
    file_names: dict[str, str] | None = None,
) -> None:
    if fmt == "pdf":
        from compliance_reports.exporters.pdf_exporter import write_pdf

        write_pdf(document, events_path if include_events else None, out_path,
                  event_limit=pdf_event_limit, formats=formats,
                  table_row_limit=pdf_table_row_limit, file_names=file_names)
    elif fmt == "csv":
        from compliance_reports.exporters.csv_exporter import write_csv

        write_csv(document, events_path, out_path, include_events)
    elif fmt == "json":
        from compliance_reports.exporters.json_exporter import write_json

        write_json(document, out_path)
    elif fmt == "xml":
        from compliance_reports.exporters.xml_exporter import write_xml

        write_xml(document, events_path, out_path, include_events)
    elif fmt == "parquet":
        from compliance_reports.exporters.parquet_exporter import write_parquet

        write_parquet(document, events_path, out_path, include_events)
    elif fmt == "xlsx":
        from compliance_reports.exporters.xlsx_exporter import write_xlsx

        write_xlsx(document, events_path, out_path, include_events, formats=formats)
    else:  # pragma: no cover - rejected before rendering
        raise ValueError(fmt)


def pdf_rows(document: dict[str, Any], events_path: Path | None, include_events: bool, pdf_event_limit: int,
             pdf_table_row_limit: int = pdf_cap.DEFAULT_TABLE_ROW_LIMIT,
             formats: list[str] = ("pdf",), file_names: dict[str, str] | None = None) -> int:
    """The PDF's table rows: every section's rows (at most pdf_table_row_limit of a table the
    PDF shortens, see pdf_cap), findings and facts, plus the events listed (at most
    pdf_event_limit)."""
    event_rows = include_events and events_path is not None
    names = file_names or pdf_cap.published_names(document.get("header") or {}, formats)
    caps = pdf_cap.table_caps(document, pdf_table_row_limit, formats, event_rows, names)
    return pdf_cap.pdf_table_rows(document, caps) + (pdf_event_limit if event_rows else 0)


def render_and_hash(fmt: str, document: dict[str, Any], events_path: Path | None, include_events: bool,
                     out_path: Path, pdf_event_limit: int, formats: list[str],
                     pdf_table_row_limit: int = pdf_cap.DEFAULT_TABLE_ROW_LIMIT,
                     file_names: dict[str, str] | None = None) -> str:
    """Render one format; returns the SHA-256 of the written content."""
    _render(fmt, document, events_path, include_events, out_path, pdf_event_limit, formats,
            pdf_table_row_limit, file_names)
    return sha256_file(out_path)


def _finish(plain: Path, content_sha: str, how: str, key: bytes | None, key_id: str | None) -> tuple[Path, str]:
    """The rendered file compressed (`how`) and encrypted as configured, with its SHA-256: the
    content's for a plain file, else hashed while the last step writes it (a zip archive,
    which is not written front to back, after)."""
    if how == "none" and key is None:
        return plain, content_sha
    digest = hashlib.sha256()
    if key is not None:
        compressed = compression.compress_file(plain, how)
        return file_crypto.encrypt_file(compressed, key, key_id, digest=digest), digest.hexdigest()
    if how == "zip":
        compressed = compression.compress_file(plain, how)
        return compressed, sha256_file(compressed)
    return compression.compress_file(plain, how, digest=digest), digest.hexdigest()


def export_all(
    document: dict[str, Any],
    events_path: Path | None,
    formats: list[str],
    export: ExportSettings,
    out_dir: Path,
    *,
    pdf_event_limit: int,
    pdf_table_row_limit: int = pdf_cap.DEFAULT_TABLE_ROW_LIMIT,
    key_lookup: Callable[[str], str | None] = os.environ.get,
) -> list[ExportedFile]:
    """Render `formats` (in the given order, each once) into `out_dir`, plus the JSON document
    when the PDF needs it to shorten a long table (`pdf_cap.companion_formats`); see the module
    doc."""
    wanted: list[str] = []
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"formats: unknown format {fmt!r}; expected one of {list(FORMATS)}")
        if fmt not in wanted:
            wanted.append(fmt)
    if not wanted:
        raise ValueError("formats: at least one format is needed")
    header = document.get("header") or {}
    base_name(header)  # raises on header values unusable in a file name
    if export.compression not in compression.COMPRESSIONS:
        raise ValueError(f"export.compression must be one of {compression.COMPRESSIONS}")
    key = key_id = None
    if export.encrypt:
        if not export.encryption_key_env:
            raise ValueError("export.encrypt is true but export.encryption_key_env names no variable")
        key, key_id = file_crypto.load_key(export.encryption_key_env, key_lookup)
    if pdf_event_limit < 0:
        raise ValueError("pdf_event_limit must be 0 or more")
    if pdf_table_row_limit < 0:
        raise ValueError("pdf_table_row_limit must be 0 or more")
    if events_path is not None:
        events_path = Path(events_path)
        if not events_path.is_file():
            raise FileNotFoundError(f"the events file {events_path} does not exist")
    wanted += pdf_cap.companion_formats(document, pdf_table_row_limit, wanted,
                                        export.include_events and events_path is not None)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    pdf: pdf_process.PdfProcess | None = None
    try:
        plain_files = {}
        for fmt in wanted:
            (work / fmt).mkdir()
            plain_files[fmt] = work / fmt / content_filename(header, fmt)
        render_args = (document, events_path, export.include_events)
        # The PDF names the files of this publication that hold the rows it leaves out.
        names = pdf_cap.published_names(header, wanted, export.compression, key is not None)
        pdf_args = (pdf_event_limit, wanted, pdf_table_row_limit, names)
        if "pdf" in wanted and pdf_rows(*render_args, pdf_event_limit, pdf_table_row_limit,
                                        wanted, names) >= PDF_PROCESS_MIN_ROWS:
            pdf = pdf_process.start(*render_args, plain_files["pdf"], *pdf_args)
        hashes = {
            fmt: render_and_hash(fmt, *render_args, plain_files[fmt], *pdf_args)
            for fmt in wanted if fmt != "pdf" or pdf is None
        }
        if pdf is not None:
            hashes["pdf"] = pdf.result()

        staged: list[tuple[str, Path, str, str]] = []
        for fmt in wanted:
            content_sha = hashes[fmt]
            current, file_sha = _finish(plain_files[fmt], content_sha, export.compression, key, key_id)
            staged.append((fmt, current, content_sha, file_sha))

        results: list[ExportedFile] = []
        for fmt, path, content_sha, file_sha in staged:
            final = out_dir / path.name
            os.replace(path, final)
            if key is not None:
                media_type = ENCRYPTED_MEDIA_TYPE
            elif export.compression != "none":
                media_type = compression.MEDIA_TYPES[export.compression]
            else:
                media_type = FORMAT_MEDIA_TYPES[fmt]
            results.append(
                ExportedFile(
                    format=fmt,
                    path=final,
                    filename=final.name,
                    media_type=media_type,
                    size=final.stat().st_size,
                    sha256=file_sha,
                    compressed=export.compression,
                    encrypted=key is not None,
                    key_id=key_id,
                    content_sha256=content_sha,
                )
            )
        return results
    finally:
        if pdf is not None:
            pdf.stop()  # after a failure elsewhere: not left running, nor writing into `work`
        shutil.rmtree(work, ignore_errors=True)
