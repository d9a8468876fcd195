"""A stored sweep's ``manifest.json``: its schema, its checks and its checksums.

The manifest holds the sweep's parameters (:meth:`SweepConfig.to_params`), its
chunking (``layout``), versions and device, and one entry per finished chunk
(the chunk file's SHA-256 and its games). :func:`validate_manifest` checks all of
it before anything is trusted:

* the schema (required keys of the right JSON types, a known format);
* the parameters: they must be exactly what a :class:`SweepConfig` writes (so a
  value no sweep writes is refused, naming its field), and each must equal the
  checksum written with it (``params_sha256``), so an edit of ``taus``,
  ``etas`` or ``num_iters`` is refused instead of labelling old data with new
  axes (manifests written before the checksums load unchecked);
* the chunking: a chunk count that covers the games, and chunk entries whose
  games agree with it, so an edited manifest never yields a short result marked
  complete.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re

from jaxnpg.sweeps.config import FORMAT, PARAM_DEFAULTS, ConfigError, SweepConfig
from jaxnpg.sweeps.folder import CHUNK_DIR, one_line, read_regular


class SweepManifestError(ValueError):
  """A folder's ``manifest.json`` is damaged, edited or not a sweep manifest."""


def canonical(obj):
  """JSON round trip, so stored and requested parameters compare equal."""
  return json.loads(json.dumps(obj))


def short(value) -> str:
  """``value`` as JSON, cut to 60 characters (for messages)."""
  text = json.dumps(value)
  return text if len(text) <= 60 else text[:57] + "..."


def describe_difference(stored: dict, wanted: dict) -> str:
  """The first three parameters that differ, stored and requested (messages)."""
  keys = sorted(set(stored) | set(wanted))
  diffs = [k for k in keys if stored.get(k) != wanted.get(k)]
  parts = []
  for k in diffs[:3]:
    parts.append(f"{k}: stored {short(stored.get(k))}, requested "
                 f"{short(wanted.get(k))}")
  more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
  return "; ".join(parts) + more


def with_defaults(params: dict) -> dict:
  """``params`` with the parameters added after the first sweeps filled in."""
  return {**PARAM_DEFAULTS, **params}


def params_checksums(params: dict) -> dict:
  """``{name: sha256}`` of each parameter's canonical JSON (written with them)."""
  return {k: hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()
          for k, v in canonical(params).items()}


def json_type(x) -> str:
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



def _damaged(mpath, problem: str) -> SweepManifestError:
  return SweepManifestError(
      f"The sweep manifest {str(mpath)!r} is damaged or was edited: {problem}. "
      "Move the folder away (or delete it) and run the sweep again.")


def chunk_range(c: int, chunk_games: int, num_games: int) -> tuple[int, int]:
  """Games ``[start, stop)`` of chunk ``c``."""
  return c * chunk_games, min((c + 1) * chunk_games, num_games)


def _check_params(manifest, mpath) -> dict:
  """The manifest's parameters, checked against their checksums and the config."""
  params = manifest["params"]
  sums = manifest.get("params_sha256")
  if sums is not None:
    if not isinstance(sums, dict):
      raise _damaged(mpath, f"params_sha256 is {json_type(sums)}, not an "
                     "object")
    now = params_checksums(params)
    for key in sorted(set(now) | set(sums)):
      if now.get(key) != sums.get(key):
        what = ("was added" if key not in sums else "is missing"
                if key not in now else "does not match its checksum")
        raise _damaged(mpath, f"params.{key} {what} (the parameters must not "
                       "be edited: the stored results would be read under "
                       "other labels)")
  full = with_defaults(params)
  try:
    config = SweepConfig.from_params(full)
  except ConfigError as e:
    raise _damaged(mpath, f"params.{e.field} is {short(full.get(e.field))} "
                   f"({one_line(e, 100)})") from None
  written = config.to_params()
  for key, value in written.items():
    if key in params and canonical(params[key]) != value:
      raise _damaged(mpath, f"params.{key} is {short(full[key])}, not a value "
                     f"a sweep writes ({short(value)})")
  return full


def validate_manifest(manifest, mpath) -> None:
  """Check ``manifest``'s schema, parameters and chunking.

  Raises:
    SweepManifestError: not an object, a required key missing or of the wrong
      type, an unknown format, an edited or impossible parameter, a chunk count
      that does not cover the games, a chunk entry that is not a chunk of this
      layout.
  """
  if not isinstance(manifest, dict):
    raise SweepManifestError(
        f"{str(mpath)!r} is not a jaxnpg sweep manifest (it holds "
        f"{json_type(manifest)}, not an object); move the folder away or pick "
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
    raise _damaged(mpath, f"format is {short(fmt)}, not {FORMAT!r}")
  for key in ("params", "layout", "chunks"):
    if not isinstance(manifest[key], dict):
      raise _damaged(mpath, f"{key} is {json_type(manifest[key])}, not an "
                     "object")
  params = _check_params(manifest, mpath)
  _check_chunks(manifest, params["num_games"], mpath)


def _check_chunks(manifest, num_games, mpath) -> None:
  layout = manifest["layout"]
  for key in ("chunk_games", "num_chunks"):
    if key not in layout:
      raise _damaged(mpath, f"layout.{key} is missing")
    if not _is_int(layout[key], 1):
      raise _damaged(mpath, f"layout.{key} is {short(layout[key])}, not an "
                     "integer >= 1")
  G, size, n = num_games, layout["chunk_games"], layout["num_chunks"]
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
      raise _damaged(mpath, f"{where} is {json_type(entry)}, not an object")
    sha = entry.get("sha256")
    if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
      raise _damaged(mpath, f"{where}.sha256 is {short(sha)}, not a SHA-256 "
                     "hex digest")
    games = entry.get("games")
    want = list(chunk_range(c, size, G))
    if games != want or not all(_is_int(g) for g in games):
      raise _damaged(mpath, f"{where}.games is {short(games)}, but chunk {c} "
                     f"of {G} games in chunks of {size} holds games {want}")
    if "file" in entry and entry["file"] != f"{CHUNK_DIR}/chunk-{c:05d}.npz":
      raise _damaged(mpath, f"{where}.file is {short(entry['file'])}, not "
                     f"{CHUNK_DIR}/chunk-{c:05d}.npz")


def read_manifest(mpath: pathlib.Path):
  """The JSON in ``mpath`` (a regular file).

  Raises:
    SweepStoreError: not a regular file or unreadable.
    SweepManifestError: not valid JSON.
  """
  data = read_regular(mpath, "the sweep manifest")
  try:
    return json.loads(data.decode("utf-8"))
  except (ValueError, RecursionError) as e:
    raise SweepManifestError(
        f"{str(mpath)!r} is not a readable sweep manifest "
        f"({one_line(e, 80)}); move the folder away or pick another output "
        "folder.") from None

