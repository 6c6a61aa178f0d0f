"""Files lexmargin writes and reads: atomic saves, single-writer locks, safe loads, strict JSON.

Guarantees (docs/reliability.md):

* **Atomic saves.**  ``atomic_write(path)`` writes to a fresh, uniquely named temporary file in the
  target's folder (``.<name>.<random>.tmp``), flushes and ``fsync``s it, renames it over the target
  with ``os.replace`` (atomic on POSIX and Windows) and ``fsync``s the folder.  A reader sees the old
  file or the new one, never a mix; a kill at any point leaves the old file intact and at most a stale
  temporary, which the next save to the same target removes (``remove_stale_temporaries``).
* **One writer.**  ``exclusive_writer(path)`` holds an advisory lock (``fcntl.flock`` on
  ``<path>.lock``) for as long as a run writes ``path``; a second writer fails at once with
  ``FileInUseError`` instead of racing the first one mid-run.  The lock dies with its process, so a
  killed run never leaves a stale lock behind.
* **Safe loads.**  ``read_npz(path, kind)`` never unpickles (``allow_pickle=False``), reads every array
  eagerly (decompression errors surface here, not later) and turns every failure of a truncated,
  empty, random or foreign file into one ``DataError("<path> is corrupt or not a lexmargin <kind>
  file (...)")``.
* **Strict JSON.**  ``dumps_strict`` writes non-finite floats as ``null`` (RFC 8259 has no NaN or
  Infinity), so every JSON file lexmargin writes parses with a strict parser.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import DataError, FileInUseError

TEMP_SUFFIX = ".tmp"


# ---- atomic saves -----------------------------------------------------------------------------------
def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_stale_temporaries(path) -> list[Path]:
    """Delete temporaries that an interrupted save to ``path`` left behind; return what was removed."""
    path = Path(path)
    removed: list[Path] = []
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        return removed
    prefix = _temporary_prefix(path)
    for candidate in folder.iterdir():
        if candidate.name.startswith(prefix) and candidate.name.endswith(TEMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
    legacy = path.with_name(path.name + TEMP_SUFFIX)   # lexmargin <= 0.2 used one fixed temporary name
    with contextlib.suppress(FileNotFoundError):
        legacy.unlink()
        removed.append(legacy)
    return removed


def _current_umask() -> int:
    try:   # Linux: read it without changing it (os.umask would race with other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _permissions_for(path: Path) -> int:
    """An existing file's permission bits, else what ``open(path, "w")`` would give (0o666 less the umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_current_umask()


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not support syncing a folder
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb") -> Iterator:
    """Open a temporary file for writing; on success it replaces ``path`` atomically.

    Args:
        path: the target file; its folder is created when missing.
        mode: ``"wb"`` (binary) or ``"w"`` (text, UTF-8).

    Yields:
        The open temporary file.  If the block raises, the temporary is removed and ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, name = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=TEMP_SUFFIX, dir=folder)
    temporary = Path(name)
    try:
        os.chmod(temporary, _permissions_for(path))     # mkstemp creates 0600; a save keeps normal permissions
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _fsync_folder(folder)


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see ``atomic_write``)."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def savez_atomic(path, **arrays) -> Path:
    """``np.savez`` to ``path`` atomically (see ``atomic_write``)."""
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)
    return Path(path)


# ---- one writer ---------------------------------------------------------------------------------------
_HELD: dict[str, int] = {}   # lock files held by this process (flock is per open file, not per process)


@contextlib.contextmanager
def exclusive_writer(path, what: str = "file") -> Iterator[None]:
    """Hold the advisory write lock of ``path`` for the duration of the block.

    Raises:
        FileInUseError: another writer (process or trainer in this process) holds it.
    """
    path = Path(path).resolve()
    lock = path.with_name(path.name + ".lock")
    key = str(lock)
    if key in _HELD:
        raise FileInUseError(f"{what} {path} is already being written by another run in this process")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock_or_raise(fd, path, what)
    except BaseException:
        os.close(fd)
        raise
    _HELD[key] = fd
    try:
        yield
    finally:
        del _HELD[key]
        os.close(fd)          # closing releases the lock; the empty .lock file may stay (harmless)


def _lock_or_raise(fd: int, path: Path, what: str) -> None:
    try:
        import fcntl
    except ImportError:       # Windows: no advisory locks; the in-process registry still applies
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FileInUseError(f"{what} {path} is being written by another process; "
                             "wait for it to finish or use another path") from None


# ---- safe loads ---------------------------------------------------------------------------------------
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a zip archive with entries, an empty one
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError,
                UnicodeDecodeError, NotImplementedError, RuntimeError)


def corrupt(path, kind: str, reason) -> DataError:
    """The one error for a file that is damaged or of another kind."""
    text = str(reason).split("\n")[0]
    if "allow_pickle" in text:
        text = "it holds Python objects, which lexmargin never loads"
    return DataError(f"{path} is corrupt or not a lexmargin {kind} file ({text})")


def read_npz(path, kind: str, required=()) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read eagerly and without unpickling.

    Args:
        path: the file.
        kind: what it should be ("checkpoint", "data", "History", "parameter"), for the message.
        required: array names that must be present.

    Raises:
        DataError: missing, corrupt, foreign (object arrays, other names) or lacking ``required``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{kind} file not found: {path}")
    try:
        with open(path, "rb") as fh:
            if fh.read(4) not in _ZIP_MAGIC:
                raise ValueError("not an .npz archive")
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
    except _READ_ERRORS as exc:
        raise corrupt(path, kind, exc) from None
    missing = sorted(set(required) - set(arrays))
    if missing:
        raise corrupt(path, kind, f"arrays {missing} missing; it has {sorted(arrays)}")
    return arrays


def read_json(path, kind: str):
    """Parse a JSON file (UTF-8), turning every decoding failure into ``DataError``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{kind} file not found: {path}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise corrupt(path, kind, exc) from None


def json_from_array(value, path, kind: str):
    """Decode a JSON document stored as a 0-d string array (the ``meta`` entry of lexmargin's .npz files)."""
    try:
        if np.asarray(value).dtype.kind != "U" or np.asarray(value).ndim != 0:
            raise ValueError("meta is not a text entry")
        return json.loads(str(value))
    except (ValueError, RecursionError) as exc:
        raise corrupt(path, kind, exc) from None


# ---- strict JSON --------------------------------------------------------------------------------------
def finite_or_none(obj):
    """``obj`` with every non-finite float (and numpy scalar/array entry) replaced by ``None``."""
    if isinstance(obj, dict):
        return {key: finite_or_none(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return finite_or_none(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_strict(obj, **kwargs) -> str:
    """``json.dumps`` that writes non-finite numbers as ``null`` and never emits NaN/Infinity."""
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)


__all__ = ["FileInUseError", "atomic_write", "corrupt", "dumps_strict", "exclusive_writer", "finite_or_none",
           "json_from_array", "read_json", "read_npz", "remove_stale_temporaries", "savez_atomic",
           "write_text_atomic"]
