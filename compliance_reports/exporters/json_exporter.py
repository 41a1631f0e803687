"""JSON export: the whole report document, UTF-8, keys sorted, indented by 2, non-ASCII kept
as is, one trailing newline. `json.loads(file) == document` holds for every valid document
(NaN and infinity are refused: they are not JSON).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def document_json_bytes(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def write_json(document: dict[str, Any], out_path: Path) -> Path:
    Path(out_path).write_bytes(document_json_bytes(document))
    return out_path
