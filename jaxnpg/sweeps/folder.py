"""A sweep's output folder: path checks, atomic writes, regular files, the lock.

What is refused, before any computation (each a one-line error naming the path):
``out`` is a file, lies under a file, cannot be created or written
(:class:`SweepStoreError`, both an ``OSError`` and a ``ValueError``); another
sweep holds the folder (:class:`SweepLockedError`, naming the holder); the folder
is not empty and holds no sweep (``ValueError``).

Files are written to a temporary name and renamed (:func:`atomic_write`), so an
interrupted sweep leaves either a complete file or none, and read only when they
are regular files (:func:`read_regular`: a pipe, device or folder where a file
belongs is refused, never waited on).

The lock is a ``filelock.FileLock`` (``flock`` on POSIX) on ``.jaxnpg-sweep.lock``,
taken before the folder is checked or created and held until the sweep returns or
raises; the kernel drops it when its holder dies, so a stale lock never blocks.
While it is held the lock file names its holder (pid, host, command, start
time). In a multi-process (multi-host) sweep only process 0 takes it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import json
import os
import pathlib
import re
import socket
import stat
import sys
import time

import filelock

MANIFEST = "manifest.json"
CHUNK_DIR = "chunks"
LOCK = ".jaxnpg-sweep.lock"
_TEMP = re.compile(r"^\..+\.tmp-\d+$|^\.write-probe-\d+$")


class SweepStoreError(OSError, ValueError):
  """A sweep's output folder cannot be used (a path, permission or disk fault).

  Both an ``OSError`` and a ``ValueError``; ``errno`` is the operating system's
  error number where one caused it. The message names the path and the cause.
  """


class SweepLockedError(SweepStoreError):
  """Another sweep holds the output folder; ``holder`` describes it (a dict)."""

  def __init__(self, message, holder=None):
    super().__init__(message)
    self.errno = errno.EWOULDBLOCK
    self.holder = holder or {}



def sha256_file(path) -> str:
  """SHA-256 (hex) of a regular file's bytes."""
  return hashlib.sha256(read_regular(path)).hexdigest()


def atomic_write(path: pathlib.Path, write) -> None:
  """Write ``path`` through a temporary file and a rename; no temp file is left
  behind when writing fails. ``write`` gets the open binary file."""
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  try:
    with open(tmp, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise



def read_regular(path, what: str = "the file") -> bytes:
  """The bytes of ``path``, which must be a regular file (``what`` names it).

  Opened without blocking and checked with ``fstat`` before reading, so a named
  pipe, a device or a folder in a file's place raises at once instead of hanging
  or reading forever.

  Raises:
    SweepStoreError: not a regular file, or it cannot be read (naming it).
  """
  flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
  try:
    fd = os.open(path, flags)
  except OSError as e:
    raise os_error(f"Cannot read {what} {str(path)!r}", e) from e
  try:
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
      err = SweepStoreError(
          f"Cannot read {what} {str(path)!r}: it is {_what(mode)}, not a "
          "regular file; move it away.")
      err.errno = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
      raise err
    chunks = []
    while True:
      block = os.read(fd, 1 << 20)
      if not block:
        break
      chunks.append(block)
    return b"".join(chunks)
  except SweepStoreError:
    raise
  except OSError as e:
    raise os_error(f"Cannot read {what} {str(path)!r}", e) from e
  finally:
    os.close(fd)


def one_line(text, limit: int = 120) -> str:
  text = " ".join(str(text).split())
  return text if len(text) <= limit else text[:limit - 3] + "..."


def os_error(message: str, e: OSError) -> SweepStoreError:
  """A :class:`SweepStoreError` ``message (cause)`` carrying ``e.errno``."""
  cause = e.strerror or str(e) or type(e).__name__
  err = SweepStoreError(f"{message} ({cause}).")
  err.errno = e.errno
  return err



# ------------------------------------------------------------------ the path


def _what(mode: int) -> str:
  if stat.S_ISDIR(mode):
    return "a folder"
  if stat.S_ISREG(mode):
    return "a regular file"
  if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
    return "a device"
  if stat.S_ISFIFO(mode):
    return "a pipe"
  if stat.S_ISSOCK(mode):
    return "a socket"
  return "not a folder"


def check_out_path(path: pathlib.Path) -> None:
  """Refuse an ``out`` that is, or lies under, something other than a folder."""
  for p in (path, *path.parents):
    try:
      st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
      if p == path and os.path.islink(p):
        err = SweepStoreError(
            f"The output folder {str(path)!r} is a broken symbolic link; "
            "remove it or pick another folder.")
        err.errno = errno.ENOENT
        raise err from None
      continue
    except OSError as e:
      raise os_error(f"Cannot use the output folder {str(path)!r}: "
                      f"{str(p)!r} is not accessible", e) from e
    if stat.S_ISDIR(st.st_mode):
      return
    if p == path:
      err = SweepStoreError(
          f"The output folder {str(path)!r} exists and is {_what(st.st_mode)}, "
          "not a folder; pick a folder path for the sweep.")
      err.errno = errno.EEXIST
    else:
      err = SweepStoreError(
          f"The output folder {str(path)!r} lies under {str(p)!r}, which is "
          f"{_what(st.st_mode)}, not a folder; pick another path.")
      err.errno = errno.ENOTDIR
    raise err


def _foreign_entries(path: pathlib.Path) -> list[str]:
  """Names in ``path`` other than the lock, temporary files and an empty
  ``chunks`` folder (what a sweep killed while creating the folder leaves)."""
  try:
    names = os.listdir(path)
  except FileNotFoundError:
    return []
  except OSError as e:
    raise os_error(f"Cannot list the output folder {str(path)!r}", e) from e
  if MANIFEST in names:
    return []
  foreign = []
  for name in names:
    if name == LOCK or _TEMP.match(name):
      continue
    if name == CHUNK_DIR:
      sub = path / name
      if sub.is_dir() and not sub.is_symlink() and all(
          _TEMP.match(n) for n in os.listdir(sub)):
        continue
    foreign.append(name)
  return foreign


def refuse_foreign(path: pathlib.Path) -> None:
  """``ValueError`` if ``path`` is a folder that holds something but no sweep.

  Read without the lock: a sweep that holds it may write its manifest between
  the two looks, so a listing that shows the manifest holds a sweep too (the
  lock then decides: :class:`SweepLockedError`).
  """
  if path.is_dir() and not (path / MANIFEST).exists() and _foreign_entries(path):
    raise ValueError(
        f"The folder {str(path)!r} exists, is not empty and holds no sweep "
        f"manifest; pick a new or empty output folder.")


def probe_writable(folder: pathlib.Path) -> None:
  """Create and remove a file in ``folder``: the only sure test of writing."""
  probe = folder / f".write-probe-{os.getpid()}"
  try:
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
      os.write(fd, b"0")
    finally:
      os.close(fd)
    os.unlink(probe)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.unlink(probe)
    if e.errno == errno.ENOSPC:
      raise os_error(f"The output folder {str(folder)!r} has no space left "
                      "on its device; free some space or pick another folder",
                      e) from e
    raise os_error(
        f"The output folder {str(folder)!r} is not writable; pick another "
        "folder (jaxnpg.load_sweep reads a finished sweep from a read-only one)",
        e) from e


def remove_temp_files(path: pathlib.Path) -> None:
  """Remove temporary files of earlier, interrupted sweeps (under the lock)."""
  for folder in (path, path / CHUNK_DIR):
    try:
      names = os.listdir(folder)
    except OSError:
      continue
    for name in names:
      if _TEMP.match(name):
        with contextlib.suppress(OSError):
          os.unlink(folder / name)


# ------------------------------------------------------------------ the lock


class FolderLock:
  """The folder's exclusive lock (``filelock``), with its holder named in the file."""

  def __init__(self, lock: filelock.BaseFileLock | None, path: pathlib.Path):
    self._lock = lock
    self.path = path

  @classmethod
  def acquire(cls, folder: pathlib.Path) -> FolderLock:
    """Take the lock of ``folder`` at once, or raise.

    Raises:
      SweepLockedError: another sweep (another process or thread, or this
        one) holds it; its holder is named.
      SweepStoreError: the lock file cannot be created or written.
    """
    lpath = folder / LOCK
    lock = filelock.FileLock(str(lpath), timeout=0, fallback_to_soft=False)
    try:
      lock.acquire()
    except filelock.Timeout:
      holder = read_holder(lpath)
      for _ in range(50):   # a holder that just locked writes its name next
        if holder:
          break
        time.sleep(0.005)
        holder = read_holder(lpath)
      raise SweepLockedError(
          f"The folder {str(folder)!r} is in use by another sweep "
          f"({describe_holder(holder)}); wait for it to finish, or pick "
          "another output folder.", holder) from None
    except OSError as e:
      if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS,
                     errno.EINVAL):
        return cls(None, lpath)   # a file system without locks: unlocked
      raise os_error(
          f"The output folder {str(folder)!r} is not writable: cannot create "
          f"its lock file {LOCK}", e) from e
    holder = {
        "pid": os.getpid(), "host": socket.gethostname(),
        "command": one_line(" ".join(sys.argv) or sys.executable),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    try:
      _write_holder(lpath, (json.dumps(holder) + "\n").encode())
    except OSError as e:
      lock.release()
      raise os_error(
          f"The output folder {str(folder)!r} is not writable: cannot write "
          f"its lock file {LOCK}", e) from e
    return cls(lock, lpath)

  def release(self) -> None:
    """Release the lock (idempotent); the file then names no holder."""
    if self._lock is None:
      return
    lock, self._lock = self._lock, None
    with contextlib.suppress(OSError):
      _write_holder(self.path, b"")
    lock.release()


def _write_holder(path: pathlib.Path, data: bytes) -> None:
  fd = os.open(path, os.O_WRONLY)
  try:
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
  finally:
    os.close(fd)


def read_holder(path: pathlib.Path) -> dict:
  """The holder a lock file names (``{}`` when it names none)."""
  try:
    holder = json.loads(read_regular(path).decode("utf-8", "replace"))
  except (OSError, ValueError):
    return {}
  return holder if isinstance(holder, dict) else {}


def describe_holder(holder: dict) -> str:
  pid, host = holder.get("pid"), holder.get("host")
  if pid is None:
    return "holder unknown"
  who = f"pid {pid}"
  if host:
    who += f" on {host}"
  if pid == os.getpid() and host == socket.gethostname():
    who = f"this process, {who}"
  if holder.get("started"):
    who += f", started {holder['started']}"
  if holder.get("command"):
    who += f", command {one_line(holder['command'], 80)!r}"
  return one_line(who, 200)


@contextlib.contextmanager
def held(store):
  """Release ``store``'s folder lock when the block ends (``None``: nothing)."""
  try:
    yield store
  finally:
    if store is not None:
      store.close()
