"""Real, reproducible compression of exported files: gzip and zip (one entry).

Reproducible means the same input bytes give the same output bytes on every run and machine:
- gzip: no file name in the header, mtime 0, fixed compression level; Python writes the OS
  byte as 255 ("unknown") everywhere.
- zip: one entry named after the source file, deflate at a fixed level, the DOS epoch
  1980-01-01 00:00:00 as its date, Unix permissions 0644, no extra fields or comment.
Both stream in chunks, so a file of any size compresses in constant memory.
"""

from __future__ import annotations

import gzip
import shutil
import zipfile
from pathlib import Path

from compliance_reports.artifacts.checksums import HashingWriter

COMPRESSIONS = ("none", "gzip", "zip")
EXTENSIONS = {"gzip": ".gz", "zip": ".zip"}
MEDIA_TYPES = {"gzip": "application/gzip", "zip": "application/zip"}

GZIP_LEVEL = 6
ZIP_LEVEL = 6
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
ZIP_PERMISSIONS = 0o100644  # regular file, rw-r--r--
_CHUNK = 1024 * 1024


def gzip_file(src: Path, dest: Path, digest=None) -> Path:
    """Write `src` gzip-compressed to `dest` (header without name, mtime 0); `digest` (a hashlib
    object) is fed every byte written."""
    with open(src, "rb") as fin, open(dest, "wb") as raw:
        sink = raw if digest is None else HashingWriter(raw, digest)
        with gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=GZIP_LEVEL, mtime=0) as gz:
            shutil.copyfileobj(fin, gz, _CHUNK)
    return dest


def zip_file(src: Path, dest: Path, arcname: str | None = None) -> Path:
    """Write a zip archive at `dest` holding `src` as its single entry `arcname`."""
    arcname = arcname or src.name
    if "/" in arcname or "\\" in arcname or arcname in ("", ".", ".."):
        raise ValueError(f"zip entry name {arcname!r} must be a plain file name")
    info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the permissions below are meaningful
    info.external_attr = ZIP_PERMISSIONS << 16
    size = src.stat().st_size
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf:
        info._compresslevel = ZIP_LEVEL  # ZipInfo has no public setter before Python 3.13
        with open(src, "rb") as fin, zf.open(info, "w", force_zip64=size >= 2**31 - 1) as entry:
            shutil.copyfileobj(fin, entry, _CHUNK)
    return dest


def compress_file(src: Path, compression: str, dest_dir: Path | None = None, digest=None) -> Path:
    """Compress `src` next to itself (or into dest_dir); "none" returns `src` unchanged.

    `digest` (gzip only) is fed every byte written; a zip archive is not written front to back
    (its entry header is completed after the data), so it is hashed once written.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, not {compression!r}")
    if compression == "none":
        return src
    dest = (dest_dir or src.parent) / (src.name + EXTENSIONS[compression])
    if compression == "gzip":
        return gzip_file(src, dest, digest)
    return zip_file(src, dest, src.name)


def decompress_bytes(data: bytes, compression: str) -> bytes:
    """The original bytes of a gzip or single-entry zip payload (tests and the CLI)."""
    if compression == "none":
        return data
    if compression == "gzip":
        return gzip.decompress(data)
    if compression == "zip":
        import io

        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if len(names) != 1:
                raise ValueError(f"expected one entry in the zip archive, found {len(names)}")
            return zf.read(names[0])
    raise ValueError(f"compression must be one of {COMPRESSIONS}, not {compression!r}")
