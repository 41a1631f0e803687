"""The PDF laid out in a child interpreter while the caller renders the other formats.

WeasyPrint is CPU-heavy and by far the largest memory user of an export (hundreds of MB for a
long report): in its own process it runs on another core, and its memory is returned when the
process ends. The child is a fresh `python -c`, not a multiprocessing "spawn" or "forkserver"
worker: those re-run the caller's main script when it lacks an `if __name__ == "__main__"`
guard, and inherit nothing else useful either. The caller renders the report's HTML (a few
hundred KB; it reads the listed events with Arrow, which it has loaded for the other formats);
the child receives the caller's sys.path, the HTML and the chart sections pickled on stdin,
loads only WeasyPrint and matplotlib (pdf_writer, which draws the charts), writes the file, and
answers the SHA-256 of what it wrote.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_PREFIX = "sha256:"
_CHILD = (
    "import pickle, sys\n"
    "path, kwargs = pickle.load(sys.stdin.buffer)\n"
    "sys.path[:0] = path\n"
    "from compliance_reports.exporters.pdf_writer import write_and_hash\n"
    f"sys.stdout.write({_PREFIX!r} + write_and_hash(**kwargs) + '\\n')\n"
)


class PdfProcess:
    """`pdf_writer.write_and_hash(html, charts, out_path, identifier)` running in a child process
    from construction on."""

    def __init__(self, **kwargs: Any) -> None:
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                      stdout=self._out, stderr=self._err)
        try:
            with self._proc.stdin:
                pickle.dump((list(sys.path), kwargs), self._proc.stdin)
        except BrokenPipeError:
            pass  # the child died at start: result() reports its exit status and output

    def result(self) -> str:
        """The SHA-256 of the written PDF, once the child is done; RuntimeError if it failed."""
        code = self._proc.wait()
        self._out.seek(0)
        self._err.seek(0)
        output, errors = self._out.read().decode(errors="replace"), self._err.read().decode(errors="replace")
        if errors:
            sys.stderr.write(errors)  # WeasyPrint's warnings, as when it ran in this process
        answer = [line for line in output.splitlines() if line.startswith(_PREFIX)]
        if code != 0 or not answer:
            raise RuntimeError(f"the PDF process failed (exit status {code}): {errors.strip()[-2000:]}")
        return answer[-1][len(_PREFIX):]

    def stop(self) -> None:
        """End the child (if still running) and release its files."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._out.close()
        self._err.close()


def start(document: dict[str, Any], events_path: Path | None, include_events: bool, out_path: Path,
          pdf_event_limit: int, formats: list[str], pdf_table_row_limit: int,
          file_names: dict[str, str]) -> PdfProcess:
    """The report's HTML rendered here, its PDF written by a child process."""
    from compliance_reports.exporters.pdf_exporter import charts, pdf_identifier, render_html

    html = render_html(document, events_path if include_events else None,
                       event_limit=pdf_event_limit, formats=formats,
                       table_row_limit=pdf_table_row_limit, file_names=file_names)
    return PdfProcess(html=html, charts=charts(document), out_path=out_path,
                      identifier=pdf_identifier(document))
