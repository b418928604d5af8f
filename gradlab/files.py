"""Writing files safely: every write of gradlab (bundles, exports, sweeps) goes through `atomic_write`.

A temporary file is created next to the target with an unpredictable name (tempfile: O_CREAT | O_EXCL, so it never
follows a planted link or overwrites anything), filled, flushed to disk and renamed over the target in one step. A
failure (a full disk, an interruption) removes the temporary file and leaves the target as it was, and the error
names the user's file, not the temporary one. `locked` serialises read-modify-write cycles on one file across
processes (two sweeps writing the same output keep every row). `shipped` finds the data files that come with the
package. Standard library only.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(tmp_path) to fill a fresh temporary file beside `path`, then move it over `path` atomically."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".part")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private (0600); the user's file gets what open() would give
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None  # the user's file, not the temporary name
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would set it, for every thread, for a moment)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        return 0o022  # the usual one, where /proc cannot say


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
    atomic_write(path, write)


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive lock on `path` + ".lock", held across processes for the block (POSIX advisory lock)."""
    lock = os.fspath(path) + ".lock"
    try:  # never through a planted link: O_NOFOLLOW refuses one instead of creating or truncating its target
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        raise OSError(e.errno, f"cannot use the lock file beside it ({e.strerror})", os.fspath(path)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def shipped(name: str) -> Path:
    """A data file that comes with gradlab (gradlab/data/NAME), wherever the package is installed."""
    # gradlab is installed as plain files, never zipped, so this is a real path that pandas and os.stat can open
    return Path(os.fspath(resources.files("gradlab") / "data" / name))
