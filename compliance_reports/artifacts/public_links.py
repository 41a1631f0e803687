"""Links that a report's recipients can open: never a filesystem path.

- A file in an S3-compatible bucket: a presigned GET URL (time-limited; 7 days at most with
  S3 signature version 4).
- A file under the local storage root: COMPLIANCE_PUBLIC_BASE_URL + the file's path below the
  root, each segment URL-quoted, e.g. `https://files.example.org/compliance/delivered/org-1/
  r/2026-11-01/r_2026-11-01.pdf` for `<root>/delivered/org-1/...`. The operator publishes the
  folders meant for readers there (a storage destination's base_path), never the whole root.
  Without that setting there is no link (None), and a mail names the file and its sha256 instead.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

DEFAULT_LINK_EXPIRY_S = 7 * 24 * 3600


def public_url(path: Path, root: Path, base_url: str | None) -> str | None:
    """The published URL of a local file, or None (no base URL, or a path outside the root)."""
    if not base_url:
        return None
    try:
        relative = Path(path).relative_to(Path(root))
    except ValueError:
        return None
    return base_url.rstrip("/") + "/" + "/".join(quote(part, safe="") for part in relative.parts)
