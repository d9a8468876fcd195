"""A sweep on disk: one ``.npz`` per chunk and a JSON manifest with checksums.

Layout of an output folder::

    manifest.json            parameters, versions, device, chunking, checksums
    chunks/chunk-00000.npz   per-cell arrays of games [start, stop), axes first
    chunks/chunk-00001.npz   (game, tau, eta[, seed][, record])
    ...
    .jaxnpg-sweep.lock       the folder lock (who holds it, while a sweep runs)

Every file is written to a temporary name and renamed, so an interrupted sweep
leaves either a complete file or none, and the manifest lists a chunk only after
its file is in place. A chunk counts as done when its file's SHA-256 equals the
manifest's and it loads (``allow_pickle=False``) with exactly the expected arrays,
each of the expected dtype and shape; anything else is recomputed. Only plain
arrays and JSON are ever read back (no pickles).

What is refused, before any computation (each a one-line error naming the path):

* ``out`` is a file, lies under a file, cannot be created or written
  (:class:`SweepStoreError`, both an ``OSError`` and a ``ValueError``);
* another sweep holds the folder (:class:`SweepLockedError`, naming the holder);
* the folder holds a different sweep, or is not empty and holds no sweep
  (``ValueError``);
* the manifest is not a well-formed, self-consistent jaxnpg manifest: a missing
  or mistyped key, a chunk count that does not cover the games, a chunk entry
  whose games disagree with the chunking (:class:`SweepManifestError`, a
  ``ValueError``). :func:`load_sweep` makes the same checks, so a damaged or
  edited manifest never yields a short result marked complete.

A write that fails midway (a full disk) raises :class:`SweepStoreError` saying
so; the chunks finished until then stay valid, and the same sweep run again
resumes from them.

The lock is ``fcntl.flock`` on ``.jaxnpg-sweep.lock``, taken before the folder is
checked or created and held until the sweep returns or raises; the kernel drops
it when its holder dies, so a stale lock never blocks. In a multi-process
(multi-host) sweep only process 0 takes the lock and writes.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import io
import json
import os
import pathlib
import platform
import re
import socket
import stat
import sys
import time

try:
  import fcntl
except ImportError:  # not POSIX: no folder lock
  fcntl = None

import jax
import numpy as np

from jaxnpg.sweeps.results import record_iterations, trajectory_indices, assemble
from jaxnpg._version import __version__

FORMAT = "jaxnpg-sweep/1"
MANIFEST = "manifest.json"
CHUNK_DIR = "chunks"
LOCK = ".jaxnpg-sweep.lock"
FIELDS = ("qre_gap", "ne_gap", "iterations_to_tol", "linear_rate", "monotone",
          "status")
TRAJECTORY_FIELDS = ("qre_gap_trajectory", "ne_gap_trajectory")
# Optional per-cell fields: a chunk holds them exactly when the sweep recorded
# them (params ``lyapunov``; ``num_inits`` for the last), never otherwise.
ATLAS_FIELDS = ("exponent", "exponent_stderr", "attractor", "period")
INITS_FIELDS = ("num_fixed_points",)
# The dtype kind each stored array must have ("f" arrays: the sweep's dtype).
_KINDS = {"qre_gap": "f", "ne_gap": "f", "iterations_to_tol": "iu",
          "linear_rate": "f", "monotone": "b", "status": "iu",
          "qre_gap_trajectory": "f", "ne_gap_trajectory": "f",
          "exponent": "f", "exponent_stderr": "f", "attractor": "i",
          "period": "iu", "num_fixed_points": "iu"}
# Parameters added after the first sweeps were written: a manifest without them
# holds a sweep with these values.
PARAM_DEFAULTS = {"algorithm": "npg", "algorithm_options": {}, "num_seeds": None,
                  "lyapunov": False, "num_inits": None, "burn_in": None,
                  "max_period": None}
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


class SweepManifestError(ValueError):
  """A folder's ``manifest.json`` is damaged, edited or not a sweep manifest."""


def with_defaults(params: dict) -> dict:
  """``params`` with :data:`PARAM_DEFAULTS` filled in where absent."""
  return {**PARAM_DEFAULTS, **params}


def _sha256(path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def _atomic_write(path: pathlib.Path, write) -> None:
  """Write ``path`` through a temporary file and a rename; no temp file is left
  behind when writing fails."""
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


def _canonical(obj):
  """JSON round trip, so stored and requested parameters compare equal."""
  return json.loads(json.dumps(obj))


def _short(value) -> str:
  text = json.dumps(value)
  return text if len(text) <= 60 else text[:57] + "..."


def _describe_difference(stored: dict, wanted: dict) -> str:
  keys = sorted(set(stored) | set(wanted))
  diffs = [k for k in keys if stored.get(k) != wanted.get(k)]
  parts = []
  for k in diffs[:3]:
    parts.append(f"{k}: stored {_short(stored.get(k))}, requested "
                 f"{_short(wanted.get(k))}")
  more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
  return "; ".join(parts) + more


def _one_line(text, limit: int = 120) -> str:
  text = " ".join(str(text).split())
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _os_error(message: str, e: OSError) -> SweepStoreError:
  """A :class:`SweepStoreError` ``message (cause)`` carrying ``e.errno``."""
  cause = e.strerror or str(e) or type(e).__name__
  err = SweepStoreError(f"{message} ({cause}).")
  err.errno = e.errno
  return err


# ------------------------------------------------------------------ the path


def _what(mode: int) -> str:
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
      raise _os_error(f"Cannot use the output folder {str(path)!r}: "
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
    raise _os_error(f"Cannot list the output folder {str(path)!r}", e) from e
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


def _refuse_foreign(path: pathlib.Path) -> None:
  if path.is_dir() and not (path / MANIFEST).exists() and _foreign_entries(path):
    raise ValueError(
        f"The folder {str(path)!r} exists, is not empty and holds no sweep "
        f"manifest; pick a new or empty output folder.")


def _probe_writable(folder: pathlib.Path) -> None:
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
      raise _os_error(f"The output folder {str(folder)!r} has no space left "
                      "on its device; free some space or pick another folder",
                      e) from e
    raise _os_error(
        f"The output folder {str(folder)!r} is not writable; pick another "
        "folder (jaxnpg.load_sweep reads a finished sweep from a read-only one)",
        e) from e


def _remove_temp_files(path: pathlib.Path) -> None:
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


class _FolderLock:
  """An exclusive ``flock`` on the folder's lock file, held until released."""

  def __init__(self, fd: int | None):
    self.fd = fd

  @classmethod
  def acquire(cls, folder: pathlib.Path) -> "_FolderLock":
    lpath = folder / LOCK
    try:
      fd = os.open(lpath, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise _os_error(
          f"The output folder {str(folder)!r} is not writable: cannot create "
          f"its lock file {LOCK}", e) from e
    if fcntl is None:
      return cls(fd)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        holder = _read_holder(fd)
        for _ in range(50):   # a holder that just locked writes its name next
          if holder:
            break
          time.sleep(0.005)
          holder = _read_holder(fd)
        os.close(fd)
        raise SweepLockedError(
            f"The folder {str(folder)!r} is in use by another sweep "
            f"({_describe_holder(holder)}); wait for it to finish, or pick "
            "another output folder.", holder) from None
      if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS,
                     errno.EINVAL):
        return cls(fd)   # a file system without locks: proceed unlocked
      os.close(fd)
      raise _os_error(f"Cannot lock the output folder {str(folder)!r}",
                      e) from e
    holder = {
        "pid": os.getpid(), "host": socket.gethostname(),
        "command": _one_line(" ".join(sys.argv) or sys.executable),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    except OSError as e:
      os.close(fd)
      raise _os_error(
          f"The output folder {str(folder)!r} is not writable: cannot write "
          f"its lock file {LOCK}", e) from e
    return cls(fd)

  def release(self) -> None:
    if self.fd is None:
      return
    fd, self.fd = self.fd, None
    with contextlib.suppress(OSError):
      os.ftruncate(fd, 0)        # no stale holder left to read
    os.close(fd)                 # drops the flock


def _read_holder(fd: int) -> dict:
  try:
    holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
  except (OSError, ValueError):
    return {}
  return holder if isinstance(holder, dict) else {}


def _describe_holder(holder: dict) -> str:
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
    who += f", command {_one_line(holder['command'], 80)!r}"
  return _one_line(who, 200)


@contextlib.contextmanager
def held(store: "SweepStore | None"):
  """Release ``store``'s folder lock when the block ends (``None``: nothing)."""
  try:
    yield store
  finally:
    if store is not None:
      store.close()


# ------------------------------------------------------------- the manifest


def _json_type(x) -> str:
  if x is None:
    return "null"
  if isinstance(x, bool):
    return "a boolean"
  if isinstance(x, (int, float)):
    return "a number"
  if isinstance(x, str):
    return "a string"
  if isinstance(x, list):
    return "a list"
  if isinstance(x, dict):
    return "an object"
  return type(x).__name__


def _is_int(x, low: int = 0) -> bool:
  return isinstance(x, int) and not isinstance(x, bool) and x >= low


def _is_number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def _int_list(x, low):
  return isinstance(x, list) and x and all(_is_int(v, low) for v in x)


def _number_list(x):
  return isinstance(x, list) and x and all(_is_number(v) for v in x)


# The parameters the store reads back: (check, what it must be).
_PARAM_CHECKS = {
    "num_games": (lambda x: _is_int(x, 1), "an integer >= 1"),
    "num_actions": (lambda x: _int_list(x, 1), "a list of integers >= 1"),
    "taus": (_number_list, "a non-empty list of numbers"),
    "etas": (_number_list, "a non-empty list of numbers"),
    "eta_rule": (lambda x: isinstance(x, str), "a string"),
    "num_iters": (lambda x: _is_int(x, 1), "an integer >= 1"),
    "record_every": (lambda x: _is_int(x, 1), "an integer >= 1"),
    "trajectory_points": (lambda x: _is_int(x, 0), "an integer >= 0"),
    "num_seeds": (lambda x: x is None or _is_int(x, 1),
                  "null or an integer >= 1"),
    "algorithm": (lambda x: isinstance(x, str), "a string"),
    "algorithm_options": (lambda x: isinstance(x, dict), "an object"),
    "dtype": (lambda x: x is None or isinstance(x, str), "a string"),
    "lyapunov": (lambda x: isinstance(x, bool), "a boolean"),
    "num_inits": (lambda x: x is None or _is_int(x, 1),
                  "null or an integer >= 1"),
}


def _damaged(mpath, problem: str) -> SweepManifestError:
  return SweepManifestError(
      f"The sweep manifest {str(mpath)!r} is damaged or was edited: {problem}. "
      "Move the folder away (or delete it) and run the sweep again.")


def chunk_range(c: int, chunk_games: int, num_games: int) -> tuple[int, int]:
  return c * chunk_games, min((c + 1) * chunk_games, num_games)


def validate_manifest(manifest, mpath) -> None:
  """Check ``manifest``'s schema and its consistency with itself.

  Raises:
    SweepManifestError: not an object, a required key missing or of the wrong
      type, an unknown format, a chunk count that does not cover the games, a
      chunk entry that is not a chunk of this layout.
  """
  if not isinstance(manifest, dict):
    raise SweepManifestError(
        f"{str(mpath)!r} is not a jaxnpg sweep manifest (it holds "
        f"{_json_type(manifest)}, not an object); move the folder away or pick "
        "another output folder.")
  for key in ("format", "params", "layout", "chunks"):
    if key not in manifest:
      raise _damaged(mpath, f"the key {key!r} is missing")
  fmt = manifest["format"]
  if fmt != FORMAT:
    if isinstance(fmt, str) and fmt.startswith("jaxnpg-sweep/"):
      raise SweepManifestError(
          f"{str(mpath)!r} holds a sweep of format {fmt!r}; this jaxnpg reads "
          f"{FORMAT!r}. Use the jaxnpg version that wrote it.")
    raise _damaged(mpath, f"format is {_short(fmt)}, not {FORMAT!r}")
  for key in ("params", "layout", "chunks"):
    if not isinstance(manifest[key], dict):
      raise _damaged(mpath, f"{key} is {_json_type(manifest[key])}, not an "
                     "object")
  params = with_defaults(manifest["params"])
  for key, (ok, what) in _PARAM_CHECKS.items():
    if key not in params:
      raise _damaged(mpath, f"params.{key} is missing")
    if not ok(params[key]):
      raise _damaged(mpath, f"params.{key} is {_short(params[key])}, not {what}")
  layout = manifest["layout"]
  for key in ("chunk_games", "num_chunks"):
    if key not in layout:
      raise _damaged(mpath, f"layout.{key} is missing")
    if not _is_int(layout[key], 1):
      raise _damaged(mpath, f"layout.{key} is {_short(layout[key])}, not an "
                     "integer >= 1")
  G, size, n = params["num_games"], layout["chunk_games"], layout["num_chunks"]
  if n != -(-G // size):
    raise _damaged(
        mpath, f"layout.num_chunks is {n}, but {G} games in chunks of {size} "
        f"make {-(-G // size)} chunks")
  for key, entry in manifest["chunks"].items():
    if not (re.fullmatch(r"0|[1-9][0-9]*", key) and int(key) < n):
      raise _damaged(mpath, f"chunks lists {key!r}, not a chunk number in "
                     f"[0, {n})")
    c = int(key)
    where = f"chunks[{key!r}]"
    if not isinstance(entry, dict):
      raise _damaged(mpath, f"{where} is {_json_type(entry)}, not an object")
    sha = entry.get("sha256")
    if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
      raise _damaged(mpath, f"{where}.sha256 is {_short(sha)}, not a SHA-256 "
                     "hex digest")
    games = entry.get("games")
    want = list(chunk_range(c, size, G))
    if games != want or not all(_is_int(g) for g in games):
      raise _damaged(mpath, f"{where}.games is {_short(games)}, but chunk {c} "
                     f"of {G} games in chunks of {size} holds games {want}")
    if "file" in entry and entry["file"] != f"{CHUNK_DIR}/chunk-{c:05d}.npz":
      raise _damaged(mpath, f"{where}.file is {_short(entry['file'])}, not "
                     f"{CHUNK_DIR}/chunk-{c:05d}.npz")


def _read_manifest(mpath: pathlib.Path):
  try:
    data = mpath.read_bytes()
  except OSError as e:
    raise _os_error(f"Cannot read the sweep manifest {str(mpath)!r}", e) from e
  try:
    return json.loads(data.decode("utf-8"))
  except (ValueError, RecursionError) as e:
    raise SweepManifestError(
        f"{str(mpath)!r} is not a readable sweep manifest "
        f"({_one_line(e, 80)}); move the folder away or pick another output "
        "folder.") from None


def _load_npz(data: bytes) -> dict:
  """The arrays of an ``.npz`` held in ``data``: plain arrays only, no pickles."""
  try:
    npz = np.load(io.BytesIO(data), allow_pickle=False)
    if not hasattr(npz, "files"):
      raise ValueError("not an .npz archive")
    with npz:
      return {k: npz[k] for k in npz.files}
  except Exception as e:  # anything np.load/zipfile raise: not a usable chunk
    raise ValueError(f"unreadable .npz ({_one_line(e, 80)})") from None


# ------------------------------------------------------------------ the store


class SweepStore:
  """An output folder of a sweep (create with :meth:`open`, then :meth:`close`)."""

  def __init__(self, path, manifest, *, lock: _FolderLock | None = None):
    self.path = pathlib.Path(path)
    self.manifest = manifest
    self._lock = lock
    self._verified: dict[int, bool] = {}
    self._arrays: dict[int, dict] = {}

  def close(self) -> None:
    """Release the folder lock (idempotent)."""
    if self._lock is not None:
      self._lock.release()
      self._lock = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # ---------------------------------------------------------------- opening
  @classmethod
  def open(cls, path, params: dict, layout: dict, *,
           chunk_games_given: bool = False) -> "SweepStore":
    """Open ``path`` for the sweep ``params``: create it, or check and resume it.

    On process 0 this takes the folder lock (held until :meth:`close`) before
    checking or creating the folder; other processes of a multi-process sweep
    only read.

    Raises:
      SweepStoreError: ``path`` is a file or under one, cannot be created or
        written (an ``OSError`` and a ``ValueError``).
      SweepLockedError: another sweep holds the folder.
      SweepManifestError: the folder's manifest is damaged or inconsistent.
      ValueError: the folder holds a different sweep (other parameters, or an
        explicit ``chunk_games`` other than the stored one), or is not empty and
        holds no sweep.
    """
    path = pathlib.Path(path)
    params = _canonical(params)
    writer = jax.process_index() == 0
    check_out_path(path)
    lock = None
    if writer:
      _refuse_foreign(path)      # before touching a folder that is not ours
      try:
        path.mkdir(parents=True, exist_ok=True)
      except OSError as e:
        raise _os_error(f"Cannot create the output folder {str(path)!r}",
                        e) from e
      lock = _FolderLock.acquire(path)
    try:
      if writer:
        _probe_writable(path)
        if (path / CHUNK_DIR).is_dir():
          _probe_writable(path / CHUNK_DIR)
        _remove_temp_files(path)
      store = cls._open_checked(path, params, layout, chunk_games_given, writer)
    except BaseException:
      if lock is not None:
        lock.release()
      raise
    store._lock = lock
    return store

  @classmethod
  def _open_checked(cls, path, params, layout, chunk_games_given, writer):
    mpath = path / MANIFEST
    if mpath.exists() or mpath.is_symlink():
      manifest = _read_manifest(mpath)
      validate_manifest(manifest, mpath)
      stored_params = with_defaults(manifest["params"])
      for key, what in (("algorithm", "the algorithm"),
                        ("algorithm_options", "the algorithm's settings"),
                        ("num_seeds", "the number of seeds")):
        if stored_params[key] != params.get(key):
          raise ValueError(
              f"The folder {str(path)!r} holds a different sweep: its {key} is "
              f"{_short(stored_params[key])}, this sweep's is "
              f"{_short(params.get(key))}; resuming it with {what} changed "
              "would mix results. Use another output folder, or delete this "
              "one to start over.")
      if stored_params != params:
        raise ValueError(
            f"The folder {str(path)!r} holds a different sweep "
            f"({_describe_difference(stored_params, params)}). Use another "
            "output folder, or delete this one to start over.")
      stored = manifest["layout"]
      if chunk_games_given and stored["chunk_games"] != layout["chunk_games"]:
        raise ValueError(
            f"The folder {str(path)!r} holds this sweep in chunks of "
            f"{stored['chunk_games']} games, but chunk_games="
            f"{layout['chunk_games']} was requested; leave chunk_games unset to "
            "resume it.")
      return cls(path, manifest)
    if writer:
      _refuse_foreign(path)      # again, now under the lock
    dev = jax.devices()[0]
    manifest = {
        "format": FORMAT,
        "params": params,
        "layout": dict(layout),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "jaxnpg": __version__, "jax": jax.__version__, "numpy": np.__version__,
        "python": platform.python_version(),
        "device": f"{dev.platform}:{dev.device_kind}",
        "num_devices": jax.device_count(),
        "dtype": params.get("dtype"),
        "chunks": {},
    }
    store = cls(path, manifest)
    if writer:
      store._write_manifest()
      try:
        (path / CHUNK_DIR).mkdir(exist_ok=True)
      except OSError as e:
        raise store._write_error(path / CHUNK_DIR, e) from e
    return store

  @property
  def layout(self) -> dict:
    return self.manifest["layout"]

  @property
  def num_chunks(self) -> int:
    return int(self.layout["num_chunks"])

  def chunk_file(self, c: int) -> pathlib.Path:
    return self.path / CHUNK_DIR / f"chunk-{c:05d}.npz"

  def chunk_games_range(self, c: int) -> tuple[int, int]:
    return chunk_range(c, int(self.layout["chunk_games"]),
                       int(self.manifest["params"]["num_games"]))

  # ---------------------------------------------------------------- chunks
  def expected_fields(self) -> tuple[str, ...]:
    return tuple(self._expected_shapes(0))

  def is_complete(self, c: int) -> bool:
    """True when chunk ``c`` is listed, its checksum matches and it loads with
    exactly the expected arrays (dtype and shape)."""
    if c in self._verified:
      return self._verified[c]
    arrays = self._read_verified(c)
    self._verified[c] = arrays is not None
    if arrays is not None:
      self._arrays[c] = arrays   # handed out by read_chunk, read only once
    return arrays is not None

  def damaged_chunks(self, chunks) -> list[int]:
    """Those of ``chunks`` that are on disk or listed but fail verification.

    Call after :meth:`is_complete` has seen them (before any is rewritten): these
    are the chunks a resume recomputes because they were damaged or incomplete,
    not because they were never written.
    """
    return [c for c in chunks if not self.is_complete(c)
            and (str(c) in self.manifest["chunks"] or self.chunk_file(c).exists())]

  def _read_verified(self, c: int) -> dict | None:
    entry = self.manifest["chunks"].get(str(c))
    if not isinstance(entry, dict):
      return None
    try:
      data = self.chunk_file(c).read_bytes()
    except OSError:
      return None
    # The checksum and the arrays are of the same bytes: nothing can change
    # between verifying and reading.
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
      return None
    try:
      arrays = _load_npz(data)
      self._check_arrays(c, arrays)
    except ValueError:
      return None
    return arrays

  def _expected_shapes(self, c: int) -> dict:
    lo, hi = self.chunk_games_range(c)
    p = with_defaults(self.manifest["params"])
    shape = (hi - lo, len(p["taus"]), len(p["etas"]))
    if p["num_seeds"] is not None:
      shape += (int(p["num_seeds"]),)
    shapes = {name: shape for name in FIELDS}
    if p.get("trajectory_points", 0):
      records = record_iterations(p["num_iters"], p["record_every"]).size
      points = trajectory_indices(records, p["trajectory_points"]).size
      shapes.update({name: shape + (points,) for name in TRAJECTORY_FIELDS})
    if p["lyapunov"]:
      shapes.update({name: shape for name in ATLAS_FIELDS})
      if p["num_inits"] is not None:
        shapes.update({name: shape for name in INITS_FIELDS})
    return shapes

  def _float_dtype(self):
    try:
      dt = np.dtype(self.manifest["params"].get("dtype"))
    except TypeError:
      return None
    return dt if dt.kind == "f" else None

  def _check_arrays(self, c: int, arrays: dict) -> None:
    """Raise ``ValueError`` unless ``arrays`` are exactly chunk ``c``'s: the
    expected names, each a plain array of the expected dtype and shape."""
    shapes = self._expected_shapes(c)
    if set(arrays) != set(shapes):
      raise ValueError(
          f"chunk {c} holds arrays {sorted(arrays)}, expected {sorted(shapes)}")
    fdt = self._float_dtype()
    for name, shape in shapes.items():
      x = arrays[name]
      if not isinstance(x, np.ndarray) or x.dtype.kind not in _KINDS[name]:
        raise ValueError(f"chunk {c}: {name} is not a plain array of kind "
                         f"{_KINDS[name]!r}")
      if _KINDS[name] == "f" and fdt is not None and x.dtype != fdt:
        raise ValueError(f"chunk {c}: {name} has dtype {x.dtype}, not {fdt}")
      if x.shape != shape:
        raise ValueError(f"chunk {c}: {name} has shape {x.shape}, not {shape}")

  def read_chunk(self, c: int) -> dict:
    """The arrays of a verified chunk."""
    arrays = self._arrays.pop(c, None)
    if arrays is None and self._verified.get(c, True):
      arrays = self._read_verified(c)
    if arrays is None:
      raise ValueError(
          f"Chunk {c} of {self.path} is missing or corrupt; run the sweep again "
          "to recompute it.")
    return arrays

  def write_chunk(self, c: int, arrays: dict, *, games, seconds: float) -> None:
    """Write chunk ``c`` (atomically) and record it in the manifest.

    Raises:
      SweepStoreError: the file or the manifest could not be written (a full
        disk); the chunks finished before stay valid.
    """
    if jax.process_index() != 0:  # multi-host: process 0 writes for everyone
      return
    try:
      self._check_arrays(c, arrays)
    except ValueError as e:   # a bug, not a user error: say so loudly
      raise RuntimeError(f"jaxnpg internal error: the sweep computed arrays "
                         f"the store cannot verify ({e}).") from None
    f = self.chunk_file(c)
    try:
      f.parent.mkdir(parents=True, exist_ok=True)
      _atomic_write(f, lambda fh: np.savez(fh, **arrays))
      sha = _sha256(f)
    except OSError as e:
      raise self._write_error(f, e) from e
    dev = jax.devices()[0]
    chunks = dict(self.manifest["chunks"])
    chunks[str(c)] = {
        "file": f"{CHUNK_DIR}/{f.name}", "sha256": sha,
        "games": [int(games[0]), int(games[1])], "seconds": round(seconds, 4),
        "device": f"{dev.platform}:{dev.device_kind}", "jaxnpg": __version__,
        "jax": jax.__version__,
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    # Listed in memory only once listed on disk (a failed write keeps the count
    # of finished chunks in the error message true).
    self._write_manifest({**self.manifest, "chunks": chunks})
    self.manifest["chunks"] = chunks
    self._verified[c] = True

  def _write_manifest(self, manifest: dict | None = None) -> None:
    if jax.process_index() != 0:
      return
    manifest = self.manifest if manifest is None else manifest
    text = json.dumps(manifest, indent=1, sort_keys=False) + "\n"
    target = self.path / MANIFEST
    try:
      _atomic_write(target, lambda fh: fh.write(text.encode()))
    except OSError as e:
      raise self._write_error(target, e) from e

  def _write_error(self, target, e: OSError) -> SweepStoreError:
    """The one-line error of a failed write, saying what is kept."""
    full = e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    if e.errno == errno.ENOSPC:
      cause = "no space left on device"
    elif full:
      cause = "disk quota exceeded"
    else:
      cause = _one_line(e.strerror or e, 80)
    done = len(self.manifest.get("chunks", {}))
    err = SweepStoreError(
        f"Could not write {str(target)!r}: {cause}. The {done} finished chunks "
        f"(of {self.num_chunks}) in {str(self.path)!r} are kept; "
        f"{'free some space' if full else 'fix that'} and run the same sweep "
        "again to resume it.")
    err.errno = e.errno
    return err



def load_sweep(path, *, allow_partial: bool = False):
  """Read a finished sweep back from its output folder.

  The manifest is checked as by :func:`jaxnpg.sweep` (schema and consistency)
  and every chunk by checksum, array names, dtypes and shapes, so the result is
  either the whole sweep or an error (a prefix with ``allow_partial``, marked
  ``attrs["complete"] = False``).

  Args:
    path: the folder ``jaxnpg.sweep(..., out=path)`` or ``jaxnpg sweep --out``
      wrote.
    allow_partial: return the finished leading chunks of an unfinished sweep
      (games up to the first missing chunk) instead of raising.

  Returns:
    A :class:`jaxnpg.SweepResult`; its ``attrs`` hold the manifest's parameters.

  Raises:
    SweepManifestError: the manifest is damaged or inconsistent (a
      ``ValueError``).
    SweepStoreError: ``path`` is a file, or the manifest cannot be read (an
      ``OSError`` and a ``ValueError``).
    ValueError: not a sweep folder, or chunks missing or corrupt.
  """
  path = pathlib.Path(path)
  check_out_path(path)
  mpath = path / MANIFEST
  if not path.is_dir():
    raise ValueError(f"{str(path)!r} holds no sweep (no such folder).")
  if not (mpath.exists() or mpath.is_symlink()):
    raise ValueError(f"{str(path)!r} holds no sweep (no {MANIFEST}).")
  manifest = _read_manifest(mpath)
  validate_manifest(manifest, mpath)
  store = SweepStore(path, manifest)
  done = [c for c in range(store.num_chunks) if store.is_complete(c)]
  missing = [c for c in range(store.num_chunks) if c not in done]
  if missing:
    if not allow_partial:
      raise ValueError(
          f"The sweep in {str(path)!r} is unfinished: {len(missing)} of "
          f"{store.num_chunks} chunks missing or corrupt (first: {missing[0]}). "
          "Run the same sweep command again to resume it.")
    count = missing[0]
    if count == 0:
      raise ValueError(f"The sweep in {str(path)!r} has no finished chunk yet.")
  else:
    count = store.num_chunks
  chunks = {c: store.read_chunk(c) for c in range(count)}
  params = with_defaults(manifest["params"])
  games = sum(hi - lo for lo, hi in map(store.chunk_games_range, range(count)))
  complete = not missing
  if complete and games != params["num_games"]:   # validated above: never
    raise SweepManifestError(f"{str(mpath)!r}: the chunks hold {games} of "
                             f"{params['num_games']} games.")
  attrs = dict(params)
  attrs.update(chunk_games=manifest["layout"]["chunk_games"],
               num_chunks=store.num_chunks, out=str(path),
               jaxnpg=manifest.get("jaxnpg"), jax=manifest.get("jax"),
               device=manifest.get("device"),
               sum_actions=int(sum(params["num_actions"])),
               complete=complete)
  return assemble(params, chunks, count, attrs)
