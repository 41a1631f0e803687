"""SHA-256 of files, read in blocks (reports and exports can be large), or hashed while they
are written (`HashingWriter`), which saves reading them again."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


class HashingWriter:
    """Passes writes on to `raw` and feeds them to `digest`: the SHA-256 of a file written front
    to back (never seeked back into) without reading it again."""

    def __init__(self, raw: BinaryIO, digest) -> None:
        self.raw = raw
        self.digest = digest

    def write(self, data) -> int:
        self.digest.update(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()
