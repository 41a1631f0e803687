"""The storage root: every local file this project writes lies below one folder.

`COMPLIANCE_STORAGE_ROOT` (default: the data folder) holds the local artifact store and the
folder of every local storage destination. A destination names its folder relative to the root
(`base_path`); an absolute path, a leading `~`, a `..` segment or a backslash is refused as
written, and a folder whose real path (symbolic links followed) lies outside the root is
refused when it is applied and again at every write.

Writes and deletions do not trust a path checked a moment earlier: they descend from the root
one folder at a time through directory file descriptors opened with O_NOFOLLOW. A symbolic
link met on the way is followed only after its real path was checked to be inside the boundary,
by walking that real path again from the boundary, so a link planted or swapped at any time
cannot lead a write (or a deletion) out of the root.

`link_file` places a hard link of a finished file by the same route instead of writing a copy
(the local artifact store's put_file); the caller falls back to `write_file` where the file
system cannot link it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_LINK_HOPS = 40
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


class OutsideRootError(ValueError):
    """A path that is, or would lead, outside the folder it must stay in."""


class NameTaken(FileExistsError):
    """An exclusive write met an existing name; `sha256` is what it holds (None: not a regular
    file, e.g. a symbolic link, which is never followed)."""

    def __init__(self, name: str, sha256: str | None) -> None:
        super().__init__(errno.EEXIST, "name exists", name)
        self.sha256 = sha256


def folder_problem(text: str) -> str | None:
    """Why `text` is not a folder relative to the storage root, or None when it is one."""
    if not text or not text.strip():
        return "must name a folder relative to the storage root"
    if _CONTROL.search(text):
        return "contains a control character"
    if "\\" in text:
        return "contains a backslash; use '/' between folders"
    if text.startswith("~"):
        return "starts with '~'; home folders are not expanded: give a folder relative to the storage root"
    if PurePosixPath(text).is_absolute() or re.match(r"^[A-Za-z]:", text):
        return "is absolute; give a folder relative to the storage root (COMPLIANCE_STORAGE_ROOT)"
    if ".." in text.split("/"):
        return "contains '..'; the folder must stay inside the storage root"
    return None


def relative_parts(text: str) -> tuple[str, ...]:
    """The folder names of a checked relative folder (`a/./b/` -> ('a', 'b'))."""
    problem = folder_problem(text)
    if problem:
        raise OutsideRootError(f"{text!r} {problem}")
    return tuple(p for p in text.split("/") if p not in ("", "."))


def is_inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def check_folder(root: Path, text: str, what: str = "base_path") -> Path:
    """root/text if its real path (symbolic links followed) is inside the real root.

    Returns the lexical path under the real root: it names the folder in the ledger and does
    not change when a link is swapped (every write checks again).
    """
    problem = folder_problem(text)
    if problem:
        raise OutsideRootError(f"{what} {text!r} {problem}")
    real_root = Path(os.path.realpath(root))
    folder = real_root.joinpath(*relative_parts(text))
    real = Path(os.path.realpath(folder))
    if not is_inside(real, real_root):
        raise OutsideRootError(
            f"{what} {text!r} leads to {real} through a symbolic link, outside the storage root "
            f"{real_root}"
        )
    return folder


def _open_root(root: Path) -> tuple[int, Path]:
    real = Path(os.path.realpath(root))
    real.mkdir(parents=True, exist_ok=True)
    return os.open(real, _DIR_FLAGS), real


def _descend(start_fd: int, start_real: Path, parts: Sequence[str], create: bool) -> tuple[int, Path]:
    """A new fd of start/parts, reached without following any link that leaves start.

    Returns (fd, real path). With `create`, missing folders are made on the way.
    """
    pending = list(parts)
    fd, done, hops = os.dup(start_fd), [], 0
    try:
        while pending:
            part = pending.pop(0)
            if part in ("", ".", "..") or "/" in part:
                raise OutsideRootError(f"path part {part!r} is not a plain folder name")
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                if not stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
                    raise OutsideRootError(f"{start_real.joinpath(*done, part)} is not a folder") from None
                hops += 1
                link = start_real.joinpath(*done, part)
                real = Path(os.path.realpath(link))
                if hops > _MAX_LINK_HOPS or not is_inside(real, start_real):
                    raise OutsideRootError(
                        f"{link} is a symbolic link to {real}, outside {start_real}; nothing is "
                        "written or removed through it"
                    ) from None
                # Walk the link's real path again from the start, without following links.
                pending = list(real.relative_to(start_real).parts) + pending
                os.close(fd)
                fd, done = os.dup(start_fd), []
                continue
            os.close(fd)
            fd = child
            done.append(part)
        return fd, start_real.joinpath(*done)
    except BaseException:
        os.close(fd)
        raise


def _target_folder(root: Path, parts: Sequence[str], boundary_parts: int) -> tuple[int, Path]:
    """An fd of the folder of root/parts (created as needed) and its real path; see write_file."""
    root_fd, real_root = _open_root(root)
    try:
        base_fd, base_real = _descend(root_fd, real_root, parts[:boundary_parts], create=True)
    finally:
        os.close(root_fd)
    try:
        return _descend(base_fd, base_real, parts[boundary_parts:-1], create=True)
    finally:
        os.close(base_fd)


def _temporary_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part"  # unique per writer, even per thread


def _place(dir_fd: int, tmp: str, name: str, mode: int, exclusive: bool) -> None:
    if exclusive:
        _place_exclusive(dir_fd, tmp, name, mode)
    else:
        # rename never follows a link at the destination name: a planted link is replaced.
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def write_file(
    root: Path,
    parts: Sequence[str],
    writer: Callable[[BinaryIO], None],
    *,
    boundary_parts: int = 0,
    mode: int = 0o600,
    exclusive: bool = False,
) -> Path:
    """Write root/parts atomically (temporary file, then rename) without leaving the root.

    The first `boundary_parts` folders (e.g. a destination's base_path) may be reached through
    symbolic links that stay inside the root; the rest (the key) must stay inside the folder
    they lead to. `writer` receives the open temporary file. Returns the real path written.
    `exclusive` never replaces an existing name (hard link into place, or O_EXCL create where
    links are not supported): NameTaken says what the name already holds.
    """
    parts = list(parts)
    if not parts:
        raise OutsideRootError("no file name given")
    dir_fd, dir_real = _target_folder(root, parts, boundary_parts)
    name = parts[-1]
    tmp = _temporary_name(name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as out:
                writer(out)
                out.flush()
                os.fsync(out.fileno())
            _place(dir_fd, tmp, name, mode, exclusive)
        finally:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(dir_fd)
    return dir_real / name


# Errors of link() meaning "no hard link here" (another file system, none supported, too many).
_NO_LINK = (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK)


def link_file(
    root: Path,
    parts: Sequence[str],
    source: Path,
    *,
    boundary_parts: int = 0,
    mode: int = 0o600,
) -> Path | None:
    """Place a hard link of the regular file `source` at root/parts, like write_file places a
    written one (same descent from the root, same atomic replacement); the file gets `mode` and
    is synced. Returns the real path, or None when `source` cannot be linked there
    (another file system, no hard links, not a regular file): the caller copies instead.

    The name then shares `source`'s content (one inode): only link a file that nobody writes
    to any more.
    """
    parts = list(parts)
    if not parts:
        raise OutsideRootError("no file name given")
    if not stat.S_ISREG(os.lstat(source).st_mode):
        return None
    dir_fd, dir_real = _target_folder(root, parts, boundary_parts)
    name = parts[-1]
    tmp = _temporary_name(name)
    try:
        try:
            os.link(source, tmp, dst_dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _NO_LINK:
                return None
            raise
        try:
            try:
                fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:  # `source` was swapped for a link meanwhile
                    return None
                raise
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            _place(dir_fd, tmp, name, mode, exclusive=False)
        finally:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
    finally:
        os.close(dir_fd)
    return dir_real / name


def _place_exclusive(dir_fd: int, tmp: str, name: str, mode: int) -> None:
    try:
        os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        return
    except FileExistsError:
        raise NameTaken(name, _sha256_at(dir_fd, name)) from None
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    try:  # no hard links on this file system: exclusive create, then copy
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode,
                     dir_fd=dir_fd)
    except FileExistsError:
        raise NameTaken(name, _sha256_at(dir_fd, name)) from None
    src = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
    with os.fdopen(src, "rb") as inp, os.fdopen(fd, "wb") as out:
        while block := inp.read(1 << 20):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())


def _sha256_at(dir_fd: int, name: str) -> str | None:
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
    except OSError:  # a symbolic link (ELOOP) or gone: not our content
        return None
    with os.fdopen(fd, "rb") as inp:
        if not stat.S_ISREG(os.fstat(inp.fileno()).st_mode):
            return None
        digest = hashlib.sha256()
        while block := inp.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def copy_writer(source: Path, expected_sha256: str | None = None) -> Callable[[BinaryIO], None]:
    """A writer copying `source`; with `expected_sha256`, the copy is hashed as it is written
    and ValueError raised (nothing placed) when it holds other content."""
    def write(out: BinaryIO) -> None:
        digest = hashlib.sha256()
        with open(source, "rb") as inp:
            while block := inp.read(1 << 20):
                digest.update(block)
                out.write(block)
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise ValueError(f"{source} does not hold the content of sha256 {expected_sha256}")

    return write


def remove_file(root: Path, parts: Sequence[str], expected_sha256: str | None, *, stop_parts: int = 0) -> str:
    """Delete root/parts if it is a regular file whose SHA-256 is the recorded one.

    Returns "removed", "missing" or "changed" (the file now holds other content, or is not a
    regular file: it is left alone). Emptied folders below the first `stop_parts` folders are
    removed too. Never follows a link out of the root.
    """
    parts = list(parts)
    root_fd, real_root = _open_root(root)
    try:
        try:
            dir_fd, _ = _descend(root_fd, real_root, parts[:-1], create=False)
        except FileNotFoundError:
            return "missing"
    finally:
        os.close(root_fd)
    name = parts[-1]
    try:
        try:
            info = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return "missing"
        if not stat.S_ISREG(info.st_mode):
            return "changed"
        if expected_sha256 is not None:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=dir_fd)
            digest = hashlib.sha256()
            with os.fdopen(fd, "rb") as inp:
                while block := inp.read(1 << 20):
                    digest.update(block)
            if digest.hexdigest() != expected_sha256:
                return "changed"
        os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    _remove_empty_folders(root, parts[:-1], stop_parts)
    return "removed"


def _remove_empty_folders(root: Path, folders: list[str], stop_parts: int) -> None:
    for depth in range(len(folders), stop_parts, -1):
        root_fd, real_root = _open_root(root)
        try:
            try:
                parent_fd, _ = _descend(root_fd, real_root, folders[: depth - 1], create=False)
            except (OSError, OutsideRootError):
                return
        finally:
            os.close(root_fd)
        try:
            os.rmdir(folders[depth - 1], dir_fd=parent_fd)
        except OSError:  # not empty (or already gone): stop climbing
            return
        finally:
            os.close(parent_fd)
