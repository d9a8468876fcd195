"""A sweep on disk: one ``.npz`` per chunk and a JSON manifest with checksums.

Layout of an output folder::

    manifest.json            parameters, versions, device, chunking, checksums
    chunks/chunk-00000.npz   per-cell arrays of games [start, stop), axes first
    chunks/chunk-00001.npz   (game, tau, eta[, seed][, record])
    ...
    .jaxnpg-sweep.lock       the folder lock (who holds it, while a sweep runs)

The manifest lists a chunk only after its file is in place (written atomically,
:mod:`jaxnpg.sweeps.folder`). A chunk counts as done when its file is a regular
file whose SHA-256 equals the manifest's and it loads (``allow_pickle=False``)
with exactly the expected arrays (:mod:`jaxnpg.sweeps.schema`), each of the
expected dtype and shape; anything else is recomputed. Only plain arrays and
JSON are ever read back (no pickles). The manifest itself is checked by
:func:`jaxnpg.sweeps.manifest.validate_manifest`.

A write that fails midway (a full disk) raises :class:`SweepStoreError` saying
so; the chunks finished until then stay valid, and the same sweep run again
resumes from them.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import io
import json
import math
import pathlib
import platform

import jax
import numpy as np

from jaxnpg._version import __version__
from jaxnpg.sweeps import schema
from jaxnpg.sweeps.config import FORMAT
from jaxnpg.sweeps.folder import (
  CHUNK_DIR,
  LOCK,
  MANIFEST,
  FolderLock,
  SweepLockedError,
  SweepStoreError,
  atomic_write,
  check_out_path,
  held,
  one_line,
  os_error,
  probe_writable,
  read_regular,
  refuse_foreign,
  remove_temp_files,
  sha256_file,
)
from jaxnpg.sweeps.manifest import (
  SweepManifestError,
  canonical,
  chunk_range,
  describe_difference,
  params_checksums,
  read_manifest,
  short,
  validate_manifest,
  with_defaults,
)
from jaxnpg.sweeps.results import assemble, record_iterations, trajectory_indices

__all__ = ["LOCK", "MANIFEST", "FolderLock", "SweepLockedError",
           "SweepManifestError", "SweepStore", "SweepStoreError",
           "check_out_path", "held", "load_sweep"]


def load_npz(data: bytes) -> dict:
  """The arrays of an ``.npz`` held in ``data``: plain arrays only, no pickles."""
  try:
    npz = np.load(io.BytesIO(data), allow_pickle=False)
    if not hasattr(npz, "files"):
      raise ValueError("not an .npz archive")
    with npz:
      return {k: npz[k] for k in npz.files}
  except Exception as e:  # anything np.load/zipfile raise: not a usable chunk
    raise ValueError(f"unreadable .npz ({one_line(e, 80)})") from None



class SweepStore:
  """An output folder of a sweep (create with :meth:`open`, then :meth:`close`)."""

  def __init__(self, path, manifest, *, lock: FolderLock | None = None):
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
           chunk_games_given: bool = False) -> SweepStore:
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
    params = canonical(params)
    writer = jax.process_index() == 0
    check_out_path(path)
    lock = None
    if writer:
      refuse_foreign(path)      # before touching a folder that is not ours
      try:
        path.mkdir(parents=True, exist_ok=True)
      except OSError as e:
        raise os_error(f"Cannot create the output folder {str(path)!r}",
                        e) from e
      lock = FolderLock.acquire(path)
    try:
      if writer:
        probe_writable(path)
        if (path / CHUNK_DIR).is_dir():
          probe_writable(path / CHUNK_DIR)
        remove_temp_files(path)
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
      manifest = read_manifest(mpath)
      validate_manifest(manifest, mpath)
      stored_params = with_defaults(manifest["params"])
      rules = stored_params["verdict_rules"]
      if rules != params.get("verdict_rules"):
        raise ValueError(
            f"The folder {str(path)!r} holds a sweep judged by other verdict "
            f"rules (verdict_rules {rules}; this jaxnpg applies "
            f"{params.get('verdict_rules')}: per-agent tolerances, STALLED only "
            "on evidence); resuming it would mix the two. Read it with "
            "jaxnpg.load_sweep, or run the sweep again in another folder.")
      for key, what in (("algorithm", "the algorithm"),
                        ("algorithm_options", "the algorithm's settings"),
                        ("num_seeds", "the number of seeds")):
        if stored_params[key] != params.get(key):
          raise ValueError(
              f"The folder {str(path)!r} holds a different sweep: its {key} is "
              f"{short(stored_params[key])}, this sweep's is "
              f"{short(params.get(key))}; resuming it with {what} changed "
              "would mix results. Use another output folder, or delete this "
              "one to start over.")
      if stored_params != params:
        raise ValueError(
            f"The folder {str(path)!r} holds a different sweep "
            f"({describe_difference(stored_params, params)}). Use another "
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
      refuse_foreign(path)      # again, now under the lock
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
        "params_sha256": params_checksums(params),
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
      data = read_regular(self.chunk_file(c), "the chunk file")
    except OSError:
      return None
    # The checksum and the arrays are of the same bytes: nothing can change
    # between verifying and reading.
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
      return None
    try:
      arrays = load_npz(data)
      self._check_arrays(c, arrays)
    except ValueError:
      return None
    return arrays

  def _expected_shapes(self, c: int) -> dict:
    lo, hi = self.chunk_games_range(c)
    p = with_defaults(self.manifest["params"])
    shape: tuple[int, ...] = (hi - lo, len(p["taus"]), len(p["etas"]))
    if p["num_seeds"] is not None:
      shape += (int(p["num_seeds"]),)
    points = 0
    if p.get("trajectory_points", 0):
      records = record_iterations(p["num_iters"], p["record_every"]).size
      points = trajectory_indices(records, p["trajectory_points"]).size
    extra = dict.fromkeys(schema.TRAJECTORY_FIELDS, (points,))
    if p.get("policy_shapes") is not None:
      size = sum(math.prod(s) for s in p["policy_shapes"])
      extra.update(dict.fromkeys(schema.POLICY_FIELDS, (size,)))
    return {name: shape + extra.get(name, ()) for name in schema.recorded(p)}

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
      if not isinstance(x, np.ndarray) or x.dtype.kind not in schema.KINDS[name]:
        raise ValueError(f"chunk {c}: {name} is not a plain array of kind "
                         f"{schema.KINDS[name]!r}")
      if schema.KINDS[name] == "f" and fdt is not None and x.dtype != fdt:
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
      atomic_write(f, lambda fh: np.savez(fh, **arrays))
      sha = sha256_file(f)
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
      atomic_write(target, lambda fh: fh.write(text.encode()))
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
      cause = one_line(e.strerror or e, 80)
    done = sum(1 for k in self.manifest.get("chunks", {})
               if self._verified.get(int(k), True))
    err = SweepStoreError(
        f"Could not write {str(target)!r}: {cause}. The {done} finished chunks "
        f"(of {self.num_chunks}) in {str(self.path)!r} are kept; "
        f"{'free some space' if full else 'fix that'} and run the same sweep "
        "again to resume it.")
    err.errno = e.errno
    return err




class NoFinishedChunkError(ValueError):
  """``load_sweep(..., allow_partial=True)`` of a sweep with no chunk finished."""


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

  Example:
    >>> import tempfile, numpy as np, jaxnpg
    >>> with tempfile.TemporaryDirectory() as folder:
    ...   res = jaxnpg.sweep("random", num_actions=(2, 2), num_games=4,
    ...                      taus=[0.1, 1.0], etas=[0.1], num_iters=100,
    ...                      out=folder, quiet=True)
    ...   back = jaxnpg.load_sweep(folder)
    >>> back.config == res.config, np.array_equal(back.qre_gap, res.qre_gap)
    (True, True)
  """
  path = pathlib.Path(path)
  check_out_path(path)
  mpath = path / MANIFEST
  if not path.is_dir():
    raise ValueError(f"{str(path)!r} holds no sweep (no such folder).")
  if not (mpath.exists() or mpath.is_symlink()):
    raise ValueError(f"{str(path)!r} holds no sweep (no {MANIFEST}).")
  manifest = read_manifest(mpath)
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
      raise NoFinishedChunkError(
          f"The sweep in {str(path)!r} has no finished chunk yet.")
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

