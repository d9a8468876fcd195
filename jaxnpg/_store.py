"""A sweep on disk: one ``.npz`` per chunk and a JSON manifest with checksums.

Layout of an output folder::

    manifest.json            parameters, versions, device, chunking, checksums
    chunks/chunk-00000.npz   per-cell arrays of games [start, stop), axes first
    chunks/chunk-00001.npz   (game, tau, eta[, iteration])
    ...

Every file is written to a temporary name and renamed, so an interrupted sweep
leaves either a complete file or none, and the manifest lists a chunk only after
its file is in place. A chunk counts as done when its file's SHA-256 equals the
manifest's and it loads (``allow_pickle=False``) with the expected arrays; anything
else is recomputed. A folder whose manifest holds different parameters is refused.
Only plain arrays and JSON are ever read back (no pickles).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import pathlib
import platform

import jax
import numpy as np

MANIFEST = "manifest.json"
CHUNK_DIR = "chunks"
FIELDS = ("qre_gap", "ne_gap", "iterations_to_tol", "linear_rate", "monotone",
          "status")
TRAJECTORY_FIELDS = ("qre_gap_trajectory", "ne_gap_trajectory")
# Parameters added after the first sweeps were written: a manifest without them
# holds a sweep with these values.
PARAM_DEFAULTS = {"algorithm": "npg", "algorithm_options": {}, "num_seeds": None}


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
  tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
  with open(tmp, "wb") as f:
    write(f)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


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


class SweepStore:
  """An output folder of a sweep (create with :meth:`open`)."""

  def __init__(self, path, manifest):
    self.path = pathlib.Path(path)
    self.manifest = manifest
    self._verified: dict[int, bool] = {}

  # ---------------------------------------------------------------- opening
  @classmethod
  def open(cls, path, params: dict, layout: dict, *,
           chunk_games_given: bool = False) -> "SweepStore":
    """Open ``path`` for the sweep ``params``: create it, or check and resume it.

    Raises:
      ValueError: the folder holds a different sweep (other parameters, or an
        explicit ``chunk_games`` other than the stored one), or is not a sweep
        folder.
    """
    path = pathlib.Path(path)
    params = _canonical(params)
    mpath = path / MANIFEST
    if mpath.exists():
      try:
        manifest = json.loads(mpath.read_text())
      except (OSError, ValueError) as e:
        raise ValueError(
            f"{mpath} is not a readable sweep manifest ({e}); move the folder "
            "away or pick another output folder.") from None
      if not isinstance(manifest, dict) or "params" not in manifest:
        raise ValueError(f"{mpath} is not a jaxnpg sweep manifest.")
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
    if path.exists() and any(path.iterdir()):
      raise ValueError(
          f"The folder {str(path)!r} exists, is not empty and holds no sweep "
          f"manifest; pick a new or empty output folder.")
    (path / CHUNK_DIR).mkdir(parents=True, exist_ok=True)
    dev = jax.devices()[0]
    manifest = {
        "format": "jaxnpg-sweep/1",
        "params": params,
        "layout": dict(layout),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "jaxnpg": _version(), "jax": jax.__version__, "numpy": np.__version__,
        "python": platform.python_version(),
        "device": f"{dev.platform}:{dev.device_kind}",
        "num_devices": jax.device_count(),
        "dtype": params.get("dtype"),
        "chunks": {},
    }
    store = cls(path, manifest)
    store._write_manifest()
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
    size = int(self.layout["chunk_games"])
    return c * size, min((c + 1) * size, int(self.manifest["params"]["num_games"]))

  # ---------------------------------------------------------------- chunks
  def expected_fields(self) -> tuple[str, ...]:
    if self.manifest["params"].get("trajectory_points", 0):
      return FIELDS + TRAJECTORY_FIELDS
    return FIELDS

  def is_complete(self, c: int) -> bool:
    """True when chunk ``c`` is listed, its checksum matches and it loads."""
    if c in self._verified:
      return self._verified[c]
    ok = False
    entry = self.manifest["chunks"].get(str(c))
    f = self.chunk_file(c)
    if entry is not None and f.exists():
      try:
        ok = _sha256(f) == entry["sha256"]
        if ok:
          self._check_arrays(c, self._load(f))
      except (OSError, ValueError, KeyError):
        ok = False
    self._verified[c] = ok
    return ok

  def _load(self, f) -> dict:
    with np.load(f, allow_pickle=False) as data:
      return {k: data[k] for k in data.files}

  def _check_arrays(self, c: int, arrays: dict) -> None:
    lo, hi = self.chunk_games_range(c)
    p = with_defaults(self.manifest["params"])
    shape = (hi - lo, len(p["taus"]), len(p["etas"]))
    if p["num_seeds"] is not None:
      shape += (int(p["num_seeds"]),)
    for name in self.expected_fields():
      if name not in arrays:
        raise ValueError(f"chunk {c} lacks {name}")
      if arrays[name].shape[:len(shape)] != shape:
        raise ValueError(f"chunk {c}: {name} has shape {arrays[name].shape}")

  def read_chunk(self, c: int) -> dict:
    """The arrays of a verified chunk."""
    if not self.is_complete(c):
      raise ValueError(
          f"Chunk {c} of {self.path} is missing or corrupt; run the sweep again "
          "to recompute it.")
    return self._load(self.chunk_file(c))

  def write_chunk(self, c: int, arrays: dict, *, games, seconds: float) -> None:
    """Write chunk ``c`` (atomically) and record it in the manifest."""
    if jax.process_index() != 0:  # multi-host: process 0 writes for everyone
      return
    f = self.chunk_file(c)
    f.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(f, lambda fh: np.savez(fh, **arrays))
    dev = jax.devices()[0]
    self.manifest["chunks"][str(c)] = {
        "file": f"{CHUNK_DIR}/{f.name}", "sha256": _sha256(f),
        "games": [int(games[0]), int(games[1])], "seconds": round(seconds, 4),
        "device": f"{dev.platform}:{dev.device_kind}", "jaxnpg": _version(),
        "jax": jax.__version__,
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
    }
    self._verified[c] = True
    self._write_manifest()

  def _write_manifest(self) -> None:
    if jax.process_index() != 0:
      return
    text = json.dumps(self.manifest, indent=1, sort_keys=False) + "\n"
    _atomic_write(self.path / MANIFEST, lambda fh: fh.write(text.encode()))


def _version() -> str:
  from jaxnpg import __version__
  return __version__


def load_sweep(path, *, allow_partial: bool = False):
  """Read a finished sweep back from its output folder.

  Args:
    path: the folder ``jaxnpg.sweep(..., out=path)`` or ``jaxnpg sweep --out``
      wrote.
    allow_partial: return the finished leading chunks of an unfinished sweep
      (games up to the first missing chunk) instead of raising.

  Returns:
    A :class:`jaxnpg.SweepResult`; its ``attrs`` hold the manifest's parameters.

  Raises:
    ValueError: not a sweep folder, or chunks missing or corrupt.
  """
  from jaxnpg._sweep import assemble
  path = pathlib.Path(path)
  mpath = path / MANIFEST
  if not mpath.exists():
    raise ValueError(f"{str(path)!r} holds no sweep (no {MANIFEST}).")
  try:
    manifest = json.loads(mpath.read_text())
  except ValueError as e:
    raise ValueError(f"{mpath} is not valid JSON: {e}") from None
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
  attrs = dict(params)
  attrs.update(chunk_games=manifest["layout"]["chunk_games"],
               num_chunks=store.num_chunks, out=str(path),
               jaxnpg=manifest.get("jaxnpg"), jax=manifest.get("jax"),
               device=manifest.get("device"),
               sum_actions=int(sum(manifest["params"]["num_actions"])),
               complete=not missing)
  return assemble(params, chunks, count, attrs)
