"""export_all: naming, rendering once, compression, encryption, determinism, bad input."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile

import pytest

from compliance_reports.artifacts import file_crypto
from compliance_reports.config.models import ExportSettings
from compliance_reports.exporters import render
from compliance_reports.exporters.common import FLAT_COLUMNS
from compliance_reports.exporters.render import export_all
from compliance_reports_tests.exporters.sample import sample_document, write_events

DETERMINISTIC = ["csv", "json", "xml", "parquet", "xlsx"]
KEY_HEX = "00112233445566778899aabbccddeeff" * 2


@pytest.fixture
def events(tmp_path):
    return write_events(tmp_path / "events.parquet", n=40)


@pytest.mark.parametrize("compression", ["none", "gzip", "zip"])
def test_two_exports_are_byte_identical(tmp_path, events, compression):
    settings = ExportSettings(compression=compression)
    doc = sample_document()
    a = export_all(doc, events, DETERMINISTIC, settings, tmp_path / "a", pdf_event_limit=10)
    b = export_all(sample_document(), events, DETERMINISTIC, settings, tmp_path / "b", pdf_event_limit=10)
    assert [f.filename for f in a] == [f.filename for f in b]
    for fa, fb in zip(a, b):
        assert fa.path.read_bytes() == fb.path.read_bytes(), fa.filename
        assert fa.sha256 == fb.sha256 == hashlib.sha256(fa.path.read_bytes()).hexdigest()
        assert fa.size == fa.path.stat().st_size
        assert fa.compressed == compression and not fa.encrypted and fa.key_id is None


def test_names_media_types_and_real_compression(tmp_path, events):
    plain = export_all(sample_document(), events, ["pdf", "csv", "json", "xml", "parquet"],
                       ExportSettings(), tmp_path / "plain", pdf_event_limit=5)
    assert [f.filename for f in plain] == [
        "hipaa-monthly_2026-11-01.pdf", "hipaa-monthly_2026-11-01.csv", "hipaa-monthly_2026-11-01.json",
        "hipaa-monthly_2026-11-01.xml", "hipaa-monthly_2026-11-01.parquet",
    ]
    assert [f.media_type for f in plain] == [
        "application/pdf", "text/csv", "application/json", "application/xml", "application/vnd.apache.parquet",
    ]
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == sorted(f.filename for f in plain)
    by_format = {f.format: f for f in plain}

    gz = export_all(sample_document(), events, ["csv", "json"], ExportSettings(compression="gzip"),
                    tmp_path / "gz", pdf_event_limit=5)
    assert [f.filename for f in gz] == ["hipaa-monthly_2026-11-01.csv.gz", "hipaa-monthly_2026-11-01.json.gz"]
    for f in gz:
        raw = f.path.read_bytes()
        assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # gzip, mtime 0
        assert not raw[3] & 0x08  # no file name stored
        assert gzip.decompress(raw) == by_format[f.format].path.read_bytes()
        assert f.content_sha256 == by_format[f.format].sha256
        assert f.media_type == "application/gzip"

    zp = export_all(sample_document(), events, ["xml"], ExportSettings(compression="zip"),
                    tmp_path / "zip", pdf_event_limit=5)
    [zf_file] = zp
    assert zf_file.filename == "hipaa-monthly_2026-11-01.xml.zip"
    with zipfile.ZipFile(zf_file.path) as zf:
        [info] = zf.infolist()
        assert info.filename == "hipaa-monthly_2026-11-01.xml"
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert (info.external_attr >> 16) & 0o777 == 0o644
        assert zf.read(info) == by_format["xml"].path.read_bytes()
    assert zf_file.size < by_format["xml"].size


def test_encrypted_exports_decrypt_to_the_deterministic_content(tmp_path, events):
    settings = ExportSettings(compression="gzip", encrypt=True, encryption_key_env="REPORT_KEY")
    env = {"REPORT_KEY": KEY_HEX}
    files = export_all(sample_document(), events, ["csv", "json"], settings, tmp_path / "enc",
                       pdf_event_limit=5, key_lookup=env.get)
    again = export_all(sample_document(), events, ["csv", "json"], settings, tmp_path / "enc2",
                       pdf_event_limit=5, key_lookup=env.get)
    key = bytes.fromhex(KEY_HEX)
    for f, g in zip(files, again):
        assert f.filename.endswith(".gz.enc") and f.encrypted
        assert f.key_id == file_crypto.key_id_for(key)
        assert f.media_type == "application/octet-stream"
        raw = f.path.read_bytes()
        assert raw.startswith(b"CRENC1")
        assert KEY_HEX.encode() not in raw and key not in raw
        assert raw != g.path.read_bytes()  # fresh nonce
        assert f.content_sha256 == g.content_sha256
        plain = gzip.decompress(file_crypto.decrypt_bytes(raw, key, f.filename[: -len(".enc")]))
        assert hashlib.sha256(plain).hexdigest() == f.content_sha256
    doc_json = [f for f in files if f.format == "json"][0]
    plain = gzip.decompress(file_crypto.decrypt_bytes(doc_json.path.read_bytes(), key, doc_json.filename[:-4]))
    assert json.loads(plain) == sample_document()


def test_without_events_csv_and_parquet_hold_the_document_tables(tmp_path, events):
    files = export_all(sample_document(), events, ["csv", "xml", "parquet"],
                       ExportSettings(include_events=False), tmp_path / "noev", pdf_event_limit=5)
    csv_text = files[0].path.read_bytes().decode("utf-8")
    assert csv_text.startswith("section_id,section_kind,section_title,row,key,label,value\r\n")
    assert "<events " not in files[1].path.read_text(encoding="utf-8")
    import pyarrow.parquet as pq

    assert pq.read_schema(files[2].path).names == list(FLAT_COLUMNS)
    files = export_all(sample_document(), None, ["csv"], ExportSettings(), tmp_path / "none", pdf_event_limit=5)
    assert files[0].path.read_bytes().startswith(b"section_id,")


@pytest.mark.parametrize(
    ("formats", "settings", "env", "message"),
    [
        (["csv", "docx"], ExportSettings(), {}, "unknown format 'docx'"),
        (["csv"], ExportSettings(encrypt=True, encryption_key_env="MISSING_KEY"), {}, "MISSING_KEY"),
        (["csv"], ExportSettings(encrypt=True, encryption_key_env="SHORT_KEY"), {"SHORT_KEY": "abcd"}, "SHORT_KEY"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, events, formats, settings, env, message):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        export_all(sample_document(), events, formats, settings, out, pdf_event_limit=5, key_lookup=env.get)
    assert not out.exists() or not any(out.iterdir())


def test_unsafe_header_values_are_refused(tmp_path, events):
    doc = sample_document()
    doc["header"]["report_id"] = "../../etc"
    with pytest.raises(ValueError, match="header.report_id"):
        export_all(doc, events, ["json"], ExportSettings(), tmp_path / "x", pdf_event_limit=5)


def test_failure_mid_way_leaves_no_partial_set(tmp_path, events, monkeypatch):
    original = render._render

    def broken(fmt, *args, **kwargs):
        if fmt == "xml":
            raise RuntimeError("disk full")
        return original(fmt, *args, **kwargs)

    monkeypatch.setattr(render, "_render", broken)
    with pytest.raises(RuntimeError):
        export_all(sample_document(), events, ["csv", "json", "xml"], ExportSettings(), tmp_path / "p",
                   pdf_event_limit=5)
    assert list((tmp_path / "p").iterdir()) == []


def test_each_format_rendered_once(tmp_path, events, monkeypatch):
    calls = []
    original = render._render
    monkeypatch.setattr(render, "_render", lambda fmt, *a, **k: (calls.append(fmt), original(fmt, *a, **k)))
    files = export_all(sample_document(), events, ["json", "csv", "json"], ExportSettings(), tmp_path / "o",
                       pdf_event_limit=5)
    assert calls == ["json", "csv"] and len(files) == 2


def test_zip_payload_is_exactly_the_plain_file(tmp_path, events):
    [f] = export_all(sample_document(), events, ["json"], ExportSettings(compression="zip"), tmp_path / "z",
                     pdf_event_limit=5)
    with zipfile.ZipFile(io.BytesIO(f.path.read_bytes())) as zf:
        assert json.loads(zf.read("hipaa-monthly_2026-11-01.json")) == sample_document()


def test_byte_identical_across_processes(tmp_path, events):
    """Another interpreter (another hash seed) writes the same bytes, compressed too."""
    import os
    import subprocess
    import sys

    script = (
        "import sys; from pathlib import Path\n"
        "from compliance_reports.config.models import ExportSettings\n"
        "from compliance_reports.exporters.render import export_all\n"
        "from compliance_reports_tests.exporters.sample import sample_document\n"
        "for c in ('none', 'gzip', 'zip'):\n"
        "    export_all(sample_document(), Path(sys.argv[1]), ['csv', 'json', 'xml', 'parquet', 'xlsx'],\n"
        "               ExportSettings(compression=c), Path(sys.argv[2]), pdf_event_limit=5)\n"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", script, str(events), str(tmp_path / "child")], check=True, env=env,
                   cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    mine = []
    for c in ("none", "gzip", "zip"):
        mine += export_all(sample_document(), events, DETERMINISTIC, ExportSettings(compression=c),
                           tmp_path / "parent", pdf_event_limit=5)
    assert len(mine) == 3 * len(DETERMINISTIC)
    for f in mine:
        assert (tmp_path / "child" / f.filename).read_bytes() == f.path.read_bytes(), f.filename


@pytest.mark.parametrize("min_rows", [0, 10_000])
def test_pdf_renders_in_its_own_process_with_the_sequential_content(tmp_path, events, min_rows):
    """A PDF of at least PDF_PROCESS_MIN_ROWS rows comes from another process (WeasyPrint never
    loads in the caller, a script without a main guard), a shorter one from the caller; both
    hold what write_pdf called in this process writes. (WeasyPrint's bytes differ between any
    two renderings, in one process too, so pages and text are compared; the other formats are
    compared byte for byte above.)"""
    import os
    import subprocess
    import sys

    from pypdf import PdfReader

    from compliance_reports.exporters.pdf_exporter import write_pdf

    script = tmp_path / "no_main_guard.py"
    script.write_text(
        "import sys; from pathlib import Path\n"
        "from compliance_reports.config.models import ExportSettings\n"
        "from compliance_reports.exporters import render\n"
        "from compliance_reports_tests.exporters.sample import sample_document\n"
        f"render.PDF_PROCESS_MIN_ROWS = {min_rows}\n"
        "[pdf] = [f for f in render.export_all(sample_document(), Path(sys.argv[1]), ['csv', 'pdf', 'json'],\n"
        "         ExportSettings(), Path(sys.argv[2]), pdf_event_limit=5) if f.format == 'pdf']\n"
        "print('weasyprint' in sys.modules, pdf.sha256, pdf.content_sha256)\n"
    )
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, str(script), str(events), str(tmp_path / "child")], check=True,
                          capture_output=True, text=True, cwd=repo,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])})
    concurrent = tmp_path / "child" / "hipaa-monthly_2026-11-01.pdf"
    written = hashlib.sha256(concurrent.read_bytes()).hexdigest()
    loaded_here = "True" if min_rows else "False"
    assert done.stdout.split() == [loaded_here, written, written]
    sequential = write_pdf(sample_document(), events, tmp_path / "sequential.pdf", event_limit=5,
                           formats=["csv", "pdf", "json"])
    pages = [[p.extract_text() for p in PdfReader(path).pages] for path in (concurrent, sequential)]
    assert len(pages[0]) > 1 and pages[0] == pages[1]


@pytest.mark.parametrize(("compression", "encrypt", "reads"), [
    ("none", False, 1), ("gzip", False, 1), ("gzip", True, 1), ("none", True, 1), ("zip", False, 2),
])
def test_each_file_is_read_once_for_its_hashes(tmp_path, events, monkeypatch, compression, encrypt, reads):
    """The content is hashed once after rendering; gzip and encryption hash what they write as
    they write it (only a zip archive, completed after its data, is read again)."""
    counted: list[str] = []
    original = render.sha256_file
    monkeypatch.setattr(render, "sha256_file", lambda path, *a: (counted.append(path.name), original(path, *a))[1])
    settings = ExportSettings(compression=compression, encrypt=encrypt, encryption_key_env="REPORT_KEY")
    files = export_all(sample_document(), events, ["csv", "json", "parquet"], settings, tmp_path / "h",
                       pdf_event_limit=5, key_lookup={"REPORT_KEY": KEY_HEX}.get)
    assert len(counted) == reads * len(files)
    for f in files:
        assert f.sha256 == hashlib.sha256(f.path.read_bytes()).hexdigest() and f.size == f.path.stat().st_size


def test_a_failed_pdf_process_fails_the_export(tmp_path, events, monkeypatch):
    from compliance_reports.exporters import pdf_process

    monkeypatch.setattr(render, "PDF_PROCESS_MIN_ROWS", 0)
    monkeypatch.setattr(pdf_process, "_CHILD", "import sys; sys.stderr.write('fonts missing'); sys.exit(3)")
    with pytest.raises(RuntimeError, match="exit status 3.*fonts missing"):
        export_all(sample_document(), events, ["pdf", "json"], ExportSettings(), tmp_path / "p", pdf_event_limit=5)
    assert list((tmp_path / "p").iterdir()) == []


def test_a_failure_elsewhere_stops_the_pdf_process(tmp_path, events, monkeypatch):
    import time

    from compliance_reports.exporters import pdf_process

    monkeypatch.setattr(render, "PDF_PROCESS_MIN_ROWS", 0)
    monkeypatch.setattr(pdf_process, "_CHILD", "import time; time.sleep(60)")
    original = render._render

    def broken(fmt, *args, **kwargs):
        if fmt == "csv":
            raise RuntimeError("disk full")
        return original(fmt, *args, **kwargs)

    monkeypatch.setattr(render, "_render", broken)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="disk full"):
        export_all(sample_document(), events, ["pdf", "csv"], ExportSettings(), tmp_path / "p", pdf_event_limit=5)
    assert time.monotonic() - started < 30  # the sleeping PDF process was ended, not awaited
    assert list((tmp_path / "p").iterdir()) == []
