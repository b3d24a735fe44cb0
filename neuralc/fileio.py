"""Atomic file writes: a temporary file beside the target, then a rename, so a failure never
leaves a half-written artifact (build outputs, weight files, checkpoints, reports).

A path the user named that cannot be written (a directory, a file where a directory is needed,
no permission, a read-only or full disk) is a user error: every function here raises a
`CompileError` naming the path and the reason, with a note, never a bare `OSError`.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from neuralc.diagnostics import CompileError, error

_WRITABLE_NOTE = "choose a location you can write to"


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename: never a half-written artifact."""
    target = Path(path)
    _check_not_directory(target)
    ensure_dir(target.parent, for_file=target)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise write_error(target, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        _ordinary_permissions(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(target, exc) from None
        raise


def write_atomic_with_companions(path: str | Path, produce: Callable[[Path], bytes]) -> None:
    """Write the bytes `produce(staged)` returns to `path`, together with the files `produce`
    writes beside `staged` (ONNX external data, `<model>.onnx.data`), all or nothing.

    `staged` has `path`'s name in a staging directory beside it, so names that files record
    of each other (the model names its data file) stay right after the move. The main file is
    written completely before anything is renamed into place: a failed write leaves no new
    companion beside an old artifact. Companions get the permissions a plain open() gives
    (some writers create them 0600), then are renamed in place, then the main file is."""
    target = Path(path)
    _check_not_directory(target)
    ensure_dir(target.parent, for_file=target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise write_error(target, exc) from None
    try:
        staged = staging / target.name
        try:
            payload = produce(staged)
        except OSError as exc:
            # Only failures writing into the staging directory are the user's disk; anything
            # else the producer raises is its own bug and keeps its traceback.
            if not _inside(exc.filename, staging):
                raise
            raise write_error(target, exc) from None
        try:
            staged.write_bytes(payload)
            _ordinary_permissions(staged)
            companions = sorted(p for p in staging.iterdir() if p != staged and p.is_file())
            for companion in companions:
                _ordinary_permissions(companion)
        except OSError as exc:
            raise write_error(target, exc) from None
        moves = [(companion, target.parent / companion.name) for companion in companions]
        for _, final in moves:  # all checked before any is moved
            _check_not_directory(final)
        for companion, final in moves:
            try:
                os.replace(companion, final)
            except OSError as exc:
                raise write_error(final, exc) from None
        try:
            os.replace(staged, target)
        except OSError as exc:
            raise write_error(target, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_output_path(path: str | Path) -> None:
    """Fail early, before long work, for an output path that cannot be a file: a directory, or
    a file where one of its directories should be. Creates nothing; the write checks the rest."""
    target = Path(path)
    _check_not_directory(target)
    blocker = _file_in_the_way(target.parent)
    if blocker is not None:
        raise write_error(target, NotADirectoryError(errno.ENOTDIR, "not a directory"))


def ensure_dir(path: str | Path, *, writable: bool = False,
               for_file: Path | None = None) -> Path:
    """Create the directory `path` (and its parents) if it is missing; with `writable`, also
    check that files can be created in it (an existing directory may not allow it).

    `for_file`: the file this directory is for, named in the error instead of the directory."""
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if for_file is not None:
            raise write_error(for_file, exc) from None
        raise _error(f"cannot create directory '{directory}'", directory, exc,
                     is_dir=True) from None
    if writable:
        try:
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as exc:
            raise _error(f"cannot create files in directory '{directory}'", directory,
                         exc, is_dir=True) from None
    return directory


def write_error(path: Path, exc: OSError) -> CompileError:
    """The diagnostic for failing to write `path`: its name, the OS's reason and a note."""
    return _error(f"cannot write '{path}'", path, exc)


def _error(what: str, path: Path, exc: OSError, *, is_dir: bool = False) -> CompileError:
    reason, note = _reason(path, exc, is_dir)
    return error(f"{what}: {reason}", None, note)


def _reason(path: Path, exc: OSError, is_dir: bool) -> tuple[str, str]:
    """Why `path` (a file, or a directory when `is_dir`) cannot be written, and the fix."""
    blocker = _file_in_the_way(path)
    if blocker is not None and blocker != path:
        return (f"'{blocker}' is a file, not a directory",
                f"choose another path, or remove the file '{blocker}'")
    if blocker == path and is_dir:
        return ("it is a file, not a directory",
                f"choose another directory, or remove the file '{path}'")
    if isinstance(exc, IsADirectoryError) or (not is_dir and os.path.isdir(path)):
        return "it is a directory", f"name a file, e.g. '{path / 'NAME'}'"
    if isinstance(exc, PermissionError):
        return "permission denied", _WRITABLE_NOTE
    if exc.errno == errno.EROFS:
        return "read-only file system", _WRITABLE_NOTE
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device", "free some space, or write to another disk"
    return (exc.strerror or type(exc).__name__).lower(), _WRITABLE_NOTE


def _file_in_the_way(path: Path) -> Path | None:
    """The first existing component of `path` (from the root) that is not a directory."""
    # os.path's tests, unlike Path's, never raise (a component without search permission).
    for part in reversed([path, *path.parents]):
        if not os.path.exists(part):
            return None
        if not os.path.isdir(part):
            return part
    return None


def _inside(filename: object, directory: Path) -> bool:
    if not isinstance(filename, str | bytes | os.PathLike):
        return False
    name = os.path.abspath(os.fsdecode(filename))
    return os.path.commonpath([name, os.path.abspath(directory)]) == os.path.abspath(directory)


def _check_not_directory(target: Path) -> None:
    # Checked before anything is written: os.replace would only refuse after a full write.
    if os.path.isdir(target):
        raise error(f"cannot write '{target}': it is a directory", None,
                    f"name a file, e.g. '{target / 'NAME'}'")


def _ordinary_permissions(path: str | Path) -> None:
    # mkstemp (and some library writers) create 0600; give the file the permissions a plain
    # open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
