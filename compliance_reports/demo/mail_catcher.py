"""A local SMTP server that saves every message as an .eml file (the demo's mail catcher)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _SaveToFolder:
    folder: Path
    saved: list[Path] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.folder.mkdir(parents=True, exist_ok=True)
        index = len(self.saved) + 1
        recipient = re.sub(r"[^A-Za-z0-9@._-]", "_", envelope.rcpt_tos[0] if envelope.rcpt_tos else "unknown")
        path = self.folder / f"{index:04d}-{recipient}.eml"
        while path.exists():
            index += 1
            path = self.folder / f"{index:04d}-{recipient}.eml"
        path.write_bytes(bytes(envelope.original_content or envelope.content))
        self.saved.append(path)
        return f"250 OK saved as {path.name}"


class MailCatcher:
    """Context manager: `with MailCatcher(folder, port=8025) as catcher: ...`."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 8025) -> None:
        self.handler = _SaveToFolder(Path(folder))
        self.host, self.port = host, port
        self._controller = None

    @property
    def saved(self) -> list[Path]:
        return self.handler.saved

    def __enter__(self) -> "MailCatcher":
        from aiosmtpd.controller import Controller

        self._controller = Controller(self.handler, hostname=self.host, port=self.port)
        try:
            self._controller.start()
        except (OSError, RuntimeError) as exc:
            raise RuntimeError(
                f"cannot start the demo mail catcher on {self.host}:{self.port} ({exc}); "
                "is another process using the port?"
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        if self._controller is not None:
            self._controller.stop()
