"""Hostile sweep folders: damaged or edited manifests, crafted chunk files, path
faults, a full disk midway, and the folder lock (in this process and between two
processes started together).

Every case asserts the clean error (a ``ValueError``/``OSError`` subclass naming
the path, one line; exit code 2 at the CLI) or a recomputation that ends bit for
bit at the uninterrupted result. Never a ``KeyError``/``TypeError``, never a short
result marked complete.
"""

import errno
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import zipfile

import jax
import numpy as np
import pytest

import jaxnpg
from jaxnpg.sweeps import store as _store
from jaxnpg.sweeps import run as _sweep
from jaxnpg import cli
from conftest import scaled

FIELDS = ("qre_gap", "ne_gap", "iterations_to_tol", "linear_rate", "monotone",
          "status", "qre_gap_trajectory", "ne_gap_trajectory")
KW = dict(num_actions=(2, 2), num_games=8, taus=[0.1, 1.0], etas=[0.1],
          num_iters=20, chunk_games=2, trajectory_points=3, quiet=True)


def _sweep_into(out, **kw):
  args = dict(KW)
  args.update(kw)
  return jaxnpg.sweep("random", out=out, **args)


def _equal(a, b):
  assert a.shape == b.shape
  for name in FIELDS:
    np.testing.assert_array_equal(getattr(a, name), getattr(b, name),
                                  err_msg=name)


@pytest.fixture(scope="module")
def reference():
  return jaxnpg.sweep("random", **KW)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  out = tmp_path_factory.mktemp("hostile") / "done"
  _sweep_into(out)
  return out


@pytest.fixture
def folder(finished, tmp_path):
  """A private copy of a finished sweep folder."""
  out = tmp_path / "s"
  shutil.copytree(finished, out)
  return out


def _manifest(folder):
  return json.loads((folder / "manifest.json").read_text())


def _write_manifest(folder, manifest):
  (folder / "manifest.json").write_text(json.dumps(manifest))


def _one_line_error(err):
  text = str(err)
  assert "\n" not in text and "Traceback" not in text
  return text


# ------------------------------------------------------------ damaged manifests


def _drop(*keys):
  def edit(m):
    d = m
    for k in keys[:-1]:
      d = d[k]
    del d[keys[-1]]
    return m
  return edit


def _set(*keys, value):
  def edit(m):
    d = m
    for k in keys[:-1]:
      d = d[k]
    d[keys[-1]] = value
    return m
  return edit


def _replace(value):
  return lambda m: value


def _halve_chunks(m):
  m["layout"]["num_chunks"] = 2       # 8 games in chunks of 2 make 4
  return m


def _regroup(m):
  # Consistent layout (8 games in 2 chunks of 4), but the listed chunks hold
  # games [0, 2) and [2, 4): a short result, if believed.
  m["layout"] = {"chunk_games": 4, "num_chunks": 2}
  m["chunks"] = {k: v for k, v in m["chunks"].items() if k in ("0", "1")}
  return m


DAMAGES = {
    # the whole file
    "list": (_replace([]), "holds a list"),
    "null": (_replace(None), "holds null"),
    "number": (_replace(3), "holds a number"),
    "string": (_replace("manifest"), "holds a string"),
    # required keys missing
    "no-format": (_drop("format"), "'format' is missing"),
    "no-params": (_drop("params"), "'params' is missing"),
    "no-layout": (_drop("layout"), "'layout' is missing"),
    "no-chunks": (_drop("chunks"), "'chunks' is missing"),
    "no-num_games": (_drop("params", "num_games"), "params.num_games is missing"),
    "no-num_actions": (_drop("params", "num_actions"),
                       "params.num_actions is missing"),
    "no-taus": (_drop("params", "taus"), "params.taus is missing"),
    "no-etas": (_drop("params", "etas"), "params.etas is missing"),
    "no-eta_rule": (_drop("params", "eta_rule"), "params.eta_rule is missing"),
    "no-num_iters": (_drop("params", "num_iters"), "params.num_iters is missing"),
    "no-record_every": (_drop("params", "record_every"),
                        "params.record_every is missing"),
    "no-trajectory_points": (_drop("params", "trajectory_points"),
                             "params.trajectory_points is missing"),
    "no-chunk_games": (_drop("layout", "chunk_games"),
                       "layout.chunk_games is missing"),
    "no-num_chunks": (_drop("layout", "num_chunks"),
                      "layout.num_chunks is missing"),
    "no-sha256": (_drop("chunks", "1", "sha256"), r"chunks\['1'\].sha256"),
    "no-games": (_drop("chunks", "1", "games"), r"chunks\['1'\].games"),
    # wrong types
    "params-list": (_set("params", value=[]), "params is a list"),
    "layout-string": (_set("layout", value="2"), "layout is a string"),
    "chunks-list": (_set("chunks", value=[]), "chunks is a list"),
    "chunks-null": (_set("chunks", value=None), "chunks is null"),
    "format-number": (_set("format", value=1), "format is 1"),
    "format-future": (_set("format", value="jaxnpg-sweep/9"), "format"),
    "num_games-string": (_set("params", "num_games", value="8"),
                         "params.num_games"),
    "num_games-float": (_set("params", "num_games", value=8.0),
                        "params.num_games"),
    "num_games-bool": (_set("params", "num_games", value=True),
                       "params.num_games"),
    "num_games-zero": (_set("params", "num_games", value=0),
                       "params.num_games"),
    "num_actions-string": (_set("params", "num_actions", value="2,2"),
                           "params.num_actions"),
    "taus-empty": (_set("params", "taus", value=[]), "params.taus"),
    "taus-strings": (_set("params", "taus", value=["0.1", "1"]), "params.taus"),
    "etas-null": (_set("params", "etas", value=None), "params.etas"),
    "num_iters-negative": (_set("params", "num_iters", value=-20),
                           "params.num_iters"),
    "record_every-zero": (_set("params", "record_every", value=0),
                          "params.record_every"),
    "trajectory_points-float": (_set("params", "trajectory_points", value=1.5),
                                "params.trajectory_points"),
    "num_seeds-string": (_set("params", "num_seeds", value="1"),
                         "params.num_seeds"),
    "chunk_games-string": (_set("layout", "chunk_games", value="2"),
                           "layout.chunk_games"),
    "chunk_games-zero": (_set("layout", "chunk_games", value=0),
                         "layout.chunk_games"),
    "num_chunks-null": (_set("layout", "num_chunks", value=None),
                        "layout.num_chunks"),
    "entry-null": (_set("chunks", "1", value=None), r"chunks\['1'\] is null"),
    "entry-list": (_set("chunks", "1", value=[]), r"chunks\['1'\] is a list"),
    "sha256-number": (_set("chunks", "1", "sha256", value=5),
                      r"chunks\['1'\].sha256"),
    "games-string": (_set("chunks", "1", "games", value="2:4"),
                     r"chunks\['1'\].games"),
    # edits that would make a short result look complete
    "num_chunks-halved": (_halve_chunks, "layout.num_chunks is 2, but 8 games"),
    "num_chunks-doubled": (_set("layout", "num_chunks", value=8),
                           "layout.num_chunks is 8"),
    "chunk_games-edited": (_set("layout", "chunk_games", value=3),
                           "layout.num_chunks is 4, but 8 games in chunks of 3"),
    "regrouped": (_regroup, r"chunks\['0'\].games is \[0, 2\]"),
    "num_games-shrunk": (_set("params", "num_games", value=7),
                         "params.num_games does not match its checksum"),
    "games-shifted": (_set("chunks", "1", "games", value=[0, 2]),
                      r"chunks\['1'\].games"),
    "chunk-out-of-range": (lambda m: (m["chunks"].update({"4": m["chunks"]["0"]}),
                                      m)[1], "chunks lists '4'"),
    "chunk-key-padded": (lambda m: (m["chunks"].update(
        {"01": m["chunks"].pop("1")}), m)[1], "chunks lists '01'"),
    "file-renamed": (_set("chunks", "1", "file",
                          value="chunks/chunk-00000.npz"),
                     r"chunks\['1'\].file"),
}


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_damaged_manifest_is_refused_everywhere(folder, name, capsys):
  edit, match = DAMAGES[name]
  _write_manifest(folder, edit(_manifest(folder)))
  for call in (lambda: jaxnpg.load_sweep(folder),
               lambda: jaxnpg.load_sweep(folder, allow_partial=True),
               lambda: _sweep_into(folder)):
    with pytest.raises(_store.SweepManifestError, match=match) as info:
      call()
    assert str(folder) in _one_line_error(info.value)
  # `jaxnpg plot` reads through load_sweep: exit 2, one line, no traceback.
  assert cli.main(["plot", str(folder), "--out", str(folder / "png")]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "Traceback" not in err
  assert str(folder) in err and re.search(match, err)


@pytest.mark.parametrize("text", [b"", b"{\"format\": \"jaxnpg-sw", b"\xff\xfe\x00",
                                  b"[" * 100000 + b"]" * 100000],
                         ids=["empty", "truncated", "binary", "deep"])
def test_unreadable_manifest_is_refused(folder, text):
  (folder / "manifest.json").write_bytes(text)
  for call in (lambda: jaxnpg.load_sweep(folder), lambda: _sweep_into(folder)):
    with pytest.raises(_store.SweepManifestError, match="not a readable sweep "
                       "manifest") as info:
      call()
    _one_line_error(info.value)


def test_manifest_that_is_a_folder(folder):
  (folder / "manifest.json").unlink()
  (folder / "manifest.json").mkdir()
  for call in (lambda: jaxnpg.load_sweep(folder), lambda: _sweep_into(folder)):
    with pytest.raises(_store.SweepStoreError, match="Cannot read the sweep "
                       "manifest") as info:
      call()
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)


def test_params_edited_to_another_sweep_is_refused(folder):
  m = _manifest(folder)
  m["params"]["seed"] = 1
  _write_manifest(folder, m)
  with pytest.raises(ValueError, match="params.seed does not match its checksum"):
    _sweep_into(folder)


def test_another_sweep_into_the_folder_is_refused(folder):
  with pytest.raises(ValueError, match=r"holds a different sweep \(seed"):
    _sweep_into(folder, seed=1)


# ------------------------------------------------------------ crafted chunk files


def _npz_bytes(arrays):
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  return buf.getvalue()


def _chunk_arrays(folder, c=1):
  with np.load(folder / "chunks" / f"chunk-{c:05d}.npz") as data:
    return {k: data[k] for k in data.files}


def _npy_bytes(x):
  buf = io.BytesIO()
  np.save(buf, x)
  return buf.getvalue()


def _zip_with_text():
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    z.writestr("status", "hello")
  return buf.getvalue()


CRAFTED = {
    "extra-array": lambda a: _npz_bytes({**a, "extra": a["qre_gap"]}),
    "missing-array": lambda a: _npz_bytes(
        {k: v for k, v in a.items() if k != "status"}),
    "wrong-shape": lambda a: _npz_bytes({**a, "qre_gap": a["qre_gap"][:1]}),
    "short-trajectory": lambda a: _npz_bytes(
        {**a, "qre_gap_trajectory": a["qre_gap_trajectory"][..., :2]}),
    "wrong-dtype-float64": lambda a: _npz_bytes(
        {**a, "ne_gap": a["ne_gap"].astype(np.float64)}),
    "status-as-float": lambda a: _npz_bytes(
        {**a, "status": a["status"].astype(np.float32)}),
    "monotone-as-int": lambda a: _npz_bytes(
        {**a, "monotone": a["monotone"].astype(np.int8)}),
    "pickled-object-array": lambda a: _npz_bytes(
        {**a, "status": a["status"].astype(object)}),
    "structured-dtype": lambda a: _npz_bytes(
        {**a, "linear_rate": np.zeros(a["linear_rate"].shape,
                                      [("x", "f4"), ("y", "f4")])}),
    "npy-not-npz": lambda a: _npy_bytes(a["qre_gap"]),
    "zip-with-text": lambda a: _zip_with_text(),
    "empty-file": lambda a: b"",
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_chunk_with_matching_checksum_is_recomputed(folder, reference,
                                                            name):
  """The manifest's checksum is updated to the crafted file, so only the checks
  of names, dtypes and shapes can tell: the chunk must count as missing."""
  data = CRAFTED[name](_chunk_arrays(folder))
  f = folder / "chunks" / "chunk-00001.npz"
  f.write_bytes(data)
  m = _manifest(folder)
  m["chunks"]["1"]["sha256"] = _store.sha256_file(f)
  _write_manifest(folder, m)
  with pytest.raises(ValueError, match="unfinished: 1 of 4 chunks") as info:
    jaxnpg.load_sweep(folder)
  _one_line_error(info.value)
  partial = jaxnpg.load_sweep(folder, allow_partial=True)
  assert partial.shape[0] == 2 and partial.attrs["complete"] is False
  events = []
  res = _sweep_into(folder, on_chunk=events.append)
  assert {e["chunk"]: e["skipped"] for e in events} == {0: True, 1: False,
                                                        2: True, 3: True}
  _equal(res, reference)
  full = jaxnpg.load_sweep(folder)
  assert full.attrs["complete"] is True
  _equal(full, reference)


def test_chunk_checksum_mismatch_is_recomputed(folder, reference):
  m = _manifest(folder)
  m["chunks"]["2"]["sha256"] = "0" * 64
  _write_manifest(folder, m)
  with pytest.raises(ValueError, match=r"unfinished.*first: 2"):
    jaxnpg.load_sweep(folder)
  _equal(_sweep_into(folder), reference)


def test_no_pickles_are_ever_loaded(folder, monkeypatch):
  """Every np.load in the store passes allow_pickle=False."""
  seen = []
  real = np.load

  def spy(*args, **kwargs):
    seen.append(kwargs.get("allow_pickle"))
    return real(*args, **kwargs)

  monkeypatch.setattr(np, "load", spy)
  jaxnpg.load_sweep(folder)
  assert seen and all(v is False for v in seen)


# ------------------------------------------------------------ path faults


def _no_execute(monkeypatch):
  """Fail if a sweep gets as far as computing."""
  def fail(*args, **kwargs):
    raise AssertionError("the sweep started computing before the error")
  monkeypatch.setattr(_sweep, "_execute", fail)


def _first_empty_dir(root):
  for dirpath, dirnames, filenames in os.walk(root):
    if not dirnames and not filenames:
      return pathlib.Path(dirpath)
    if dirpath.count(os.sep) > 3:
      dirnames[:] = []
  return None


def _path_fault(kind, tmp_path):
  if kind == "regular-file":
    p = tmp_path / "file"
    p.write_text("x")
    return p, "exists and is a regular file"
  if kind == "under-file":
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "sub" / "out", "lies under"
  if kind == "device":
    return pathlib.Path("/dev/null"), "is a device"
  if kind == "broken-symlink":
    p = tmp_path / "link"
    p.symlink_to(tmp_path / "nowhere")
    return p, "broken symbolic link"
  if kind == "proc":
    return pathlib.Path("/proc/x"), "Cannot create the output folder"
  if kind == "sys":
    if not os.path.isdir("/sys/kernel"):
      pytest.skip("no /sys")
    return pathlib.Path("/sys/x/y"), "Cannot create the output folder"
  if kind == "read-only-sysfs-dir":
    p = _first_empty_dir("/sys/kernel") if os.path.isdir("/sys/kernel") else None
    if p is None:
      pytest.skip("no empty folder in /sys/kernel")
    return p, "not writable"
  if kind == "read-only-mode":
    if os.geteuid() == 0:
      pytest.skip("root ignores permission bits")
    p = tmp_path / "ro"
    p.mkdir()
    p.chmod(0o555)
    return p, "not writable"
  raise AssertionError(kind)


PATH_FAULTS = ["regular-file", "under-file", "device", "broken-symlink", "proc",
               "sys", "read-only-sysfs-dir", "read-only-mode"]


@pytest.mark.parametrize("kind", PATH_FAULTS)
def test_path_fault_is_one_line_before_any_work(tmp_path, monkeypatch, kind):
  out, match = _path_fault(kind, tmp_path)
  _no_execute(monkeypatch)
  with pytest.raises(_store.SweepStoreError, match=match) as info:
    _sweep_into(out)
  err = info.value
  assert isinstance(err, OSError) and isinstance(err, ValueError)
  assert str(out) in _one_line_error(err) and err.errno
  if kind in ("regular-file", "under-file", "device"):
    with pytest.raises(_store.SweepStoreError, match=match):
      jaxnpg.load_sweep(out)


def test_unwritable_folder_is_found_by_a_write_probe(tmp_path, monkeypatch):
  """A folder that refuses new files (EROFS) is refused before computing."""
  out = tmp_path / "out"
  real_open = os.open

  def read_only(path, flags, *args, **kwargs):
    if str(path).startswith(str(out)) and flags & os.O_CREAT:
      raise OSError(errno.EROFS, "Read-only file system", str(path))
    return real_open(path, flags, *args, **kwargs)

  monkeypatch.setattr(os, "open", read_only)
  _no_execute(monkeypatch)
  with pytest.raises(_store.SweepStoreError,
                     match="not writable.*Read-only file system") as info:
    _sweep_into(out)
  assert info.value.errno == errno.EROFS


def test_full_disk_up_front_is_found_by_the_write_probe(tmp_path, monkeypatch):
  out = tmp_path / "out"
  real_write = os.write

  def full(fd, data):
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(os, "write", full)
  _no_execute(monkeypatch)
  with pytest.raises(_store.SweepStoreError, match="has no space left") as info:
    _sweep_into(out)
  assert info.value.errno == errno.ENOSPC and str(out) in str(info.value)
  monkeypatch.setattr(os, "write", real_write)
  assert not [p for p in out.iterdir() if p.name.startswith(".write-probe")]


@pytest.mark.parametrize("kind", ["regular-file", "under-file", "proc"])
def test_cli_path_fault_exits_2_with_one_line(tmp_path, capsys, kind):
  out, match = _path_fault(kind, tmp_path)
  before = jax.config.jax_enable_x64
  try:
    rc = cli.main(["sweep", "--actions", "2,2", "--games", "2", "--taus", "1",
                   "--etas", "0.1", "--iters", "5", "--quiet", "--out",
                   str(out)])
  finally:
    jax.config.update("jax_enable_x64", before)
  err = capsys.readouterr().err
  assert rc == 2 and "Traceback" not in err
  errors = [line for line in err.splitlines() if "error:" in line]
  assert len(errors) == 1 and str(out) in errors[0]
  assert errors[0].startswith("jaxnpg sweep: error: ")


CLI_TINY = ["sweep", "--actions", "2,2", "--games", "4", "--taus", "1",
            "--etas", "0.1", "--iters", "5", "--chunk-games", "2", "--quiet"]


@pytest.mark.parametrize("fault", ["locked", "num_chunks-edited",
                                   "manifest-null"])
def test_cli_sweep_refuses_a_busy_or_damaged_folder(tmp_path, capsys, fault):
  out = tmp_path / "s"
  before = jax.config.jax_enable_x64
  lock = None
  try:
    if fault == "locked":
      out.mkdir()
      lock = _store.FolderLock.acquire(out)
      match = f"in use by another sweep (this process, pid {os.getpid()}"
    else:
      assert cli.main(CLI_TINY + ["--out", str(out)]) == 0
      capsys.readouterr()
      m = _manifest(out)
      if fault == "manifest-null":
        m, match = None, "not a jaxnpg sweep manifest"
      else:
        m["layout"]["num_chunks"] = 1
        match = "layout.num_chunks is 1, but 4 games in chunks of 2 make 2"
      _write_manifest(out, m)
    rc = cli.main(CLI_TINY + ["--out", str(out)])
  finally:
    if lock is not None:
      lock.release()
    jax.config.update("jax_enable_x64", before)
  err = capsys.readouterr().err
  errors = [line for line in err.splitlines() if "error:" in line]
  assert rc == 2 and "Traceback" not in err and len(errors) == 1
  assert match in errors[0] and str(out) in errors[0]


def test_non_empty_foreign_folder_is_left_untouched(tmp_path):
  out = tmp_path / "mine"
  out.mkdir()
  (out / "notes.txt").write_text("mine")
  with pytest.raises(ValueError, match="not empty and holds no sweep"):
    _sweep_into(out)
  assert os.listdir(out) == ["notes.txt"]     # no lock file left behind


def test_leftovers_of_a_killed_creation_are_not_foreign(tmp_path, reference):
  out = tmp_path / "s"
  (out / "chunks").mkdir(parents=True)
  (out / _store.LOCK).write_text("")
  (out / ".manifest.json.tmp-999999").write_text("{")
  (out / "chunks" / ".chunk-00000.npz.tmp-999999").write_bytes(b"PK")
  _equal(_sweep_into(out), reference)
  leftovers = [p.name for p in out.rglob("*tmp-*")]
  assert not leftovers


# ------------------------------------------------------------ a full disk


def _fail_nth_write(monkeypatch, n):
  """Make the n-th atomic write (0-based) run out of space halfway."""
  real = _store.atomic_write
  calls = []

  def atomic_write(path, write):
    calls.append(path.name)
    if len(calls) - 1 == n:
      def partial(fh):
        fh.write(b"partial data")
        raise OSError(errno.ENOSPC, "No space left on device")
      return real(path, partial)
    return real(path, write)

  monkeypatch.setattr(_store, "atomic_write", atomic_write)


# Writes of a fresh sweep: manifest, chunk 0, manifest, chunk 1, manifest, ...
@pytest.mark.parametrize("n,kept", [(0, 0), (3, 1), (6, 2), (7, 3)],
                         ids=["first-manifest", "chunk-1", "manifest-after-2",
                              "chunk-3"])
def test_full_disk_midway_keeps_chunks_and_resumes(tmp_path, monkeypatch,
                                                   reference, n, kept):
  out = tmp_path / "s"
  _fail_nth_write(monkeypatch, n)
  with pytest.raises(_store.SweepStoreError, match="no space left on device") \
      as info:
    _sweep_into(out)
  err = info.value
  assert err.errno == errno.ENOSPC and isinstance(err, OSError)
  text = _one_line_error(err)
  assert str(out) in text and "run the same sweep again to resume" in text
  assert f"The {kept} finished chunks" in text
  assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
  monkeypatch.undo()
  if kept:
    assert len(_manifest(out)["chunks"]) == kept
  events = []
  res = _sweep_into(out, on_chunk=events.append)
  assert sum(not e["skipped"] for e in events) == 4 - kept
  _equal(res, reference)
  _equal(jaxnpg.load_sweep(out), reference)


# ------------------------------------------------------------ the folder lock


def test_lock_held_in_this_process_refuses_a_second_sweep(tmp_path, reference,
                                                          monkeypatch):
  out = tmp_path / "s"
  out.mkdir()
  lock = _store.FolderLock.acquire(out)
  _no_execute(monkeypatch)
  try:
    with pytest.raises(_store.SweepLockedError,
                       match=rf"in use by another sweep \(this process, pid "
                       rf"{os.getpid()}") as info:
      _sweep_into(out)
    assert info.value.holder["pid"] == os.getpid()
    assert isinstance(info.value, OSError) and isinstance(info.value, ValueError)
    _one_line_error(info.value)
  finally:
    lock.release()
  monkeypatch.undo()
  _equal(_sweep_into(out), reference)


def test_stale_lock_of_a_dead_holder_does_not_block(tmp_path, reference):
  out = tmp_path / "s"
  out.mkdir()
  (out / _store.LOCK).write_text(json.dumps(
      {"pid": 999999, "host": "gone", "command": "jaxnpg sweep"}))
  _equal(_sweep_into(out), reference)
  assert (out / _store.LOCK).read_text() == ""      # released: no holder


def test_lock_with_garbage_content_names_no_holder(tmp_path):
  out = tmp_path / "s"
  out.mkdir()
  lock = _store.FolderLock.acquire(out)
  try:
    (out / _store.LOCK).write_bytes(b"\x00garbage")
    with pytest.raises(_store.SweepLockedError, match="holder unknown"):
      _sweep_into(out)
  finally:
    lock.release()


def test_lock_is_released_when_a_sweep_raises(tmp_path, reference):
  out = tmp_path / "s"

  def stop(info):
    raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    _sweep_into(out, on_chunk=stop)
  events = []
  res = _sweep_into(out, on_chunk=events.append)     # not locked out
  assert {e["chunk"]: e["skipped"] for e in events} == {0: True, 1: False,
                                                        2: False, 3: False}
  _equal(res, reference)


def test_other_processes_of_a_multi_process_sweep_neither_lock_nor_write(
    folder, reference, monkeypatch):
  lock = _store.FolderLock.acquire(folder)          # held by "process 0"
  try:
    monkeypatch.setattr(_store.jax, "process_index", lambda: 1)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    m = _manifest(folder)
    del m["chunks"]["3"]
    _write_manifest(folder, m)
    before[folder / "manifest.json"] = (folder / "manifest.json").stat(
        ).st_mtime_ns
    _equal(_sweep_into(folder), reference)            # computes chunk 3 only
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before
  finally:
    lock.release()


_RACER = textwrap.dedent("""
    import os, sys, time
    import jaxnpg
    out, seed, go, done = sys.argv[1:5]
    kw = {kw!r}

    def hold(info):   # keep the folder until the test has seen the other exit
      deadline = time.time() + {hold_s!r}
      while not os.path.exists(done) and time.time() < deadline:
        time.sleep(0.01)

    while not os.path.exists(go):
      time.sleep(0.002)
    try:
      jaxnpg.sweep("random", out=out, seed=int(seed), on_chunk=hold, **kw)
    except ValueError as e:
      print(f"{{type(e).__name__}}: {{e}}", file=sys.stderr)
      sys.exit(2)
""")


def test_two_different_sweeps_started_together_never_both_proceed(tmp_path):
  """Seeds 0 and 1 into one folder, two processes released together: one runs,
  the other exits naming it; the folder holds the winner's sweep only."""
  out, go, done = tmp_path / "s", tmp_path / "go", tmp_path / "done"
  script = _RACER.format(kw=KW, hold_s=scaled(20))
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  procs = [subprocess.Popen([sys.executable, "-c", script, str(out), str(s),
                             str(go), str(done)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
           for s in (0, 1)]
  go.write_text("")
  deadline = time.time() + scaled(120)
  while all(p.poll() is None for p in procs) and time.time() < deadline:
    time.sleep(0.01)
  done.write_text("")       # let the one still running finish
  errs = [p.communicate(timeout=scaled(120))[1] for p in procs]
  codes = [p.returncode for p in procs]
  assert sorted(codes) == [0, 2], errs
  winner, loser = codes.index(0), codes.index(2)
  assert "SweepLockedError" in errs[loser], errs[loser]
  assert f"pid {procs[winner].pid}" in errs[loser]
  assert len(errs[loser].strip().splitlines()) == 1
  stored = jaxnpg.load_sweep(out)
  assert stored.attrs["seed"] == winner and stored.attrs["complete"]
  _equal(stored, jaxnpg.sweep("random", seed=winner, **KW))


@pytest.mark.parametrize("seeds", [(0, 0), (0, 1)], ids=["same", "different"])
def test_two_sweeps_in_threads_never_both_proceed(tmp_path, reference, seeds):
  """The same race within one process (a lock is per open file, not per
  process): exactly one sweep runs, the other is refused by the lock."""
  out = tmp_path / "s"
  barrier = threading.Barrier(2)
  release = threading.Event()
  outcome = {}

  def racer(i):
    barrier.wait()
    try:
      outcome[i] = _sweep_into(out, seed=seeds[i],
                               on_chunk=lambda info: release.wait(20))
    except ValueError as e:
      outcome[i] = e
      release.set()

  threads = [threading.Thread(target=racer, args=(i,)) for i in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join(60)
  errors = [v for v in outcome.values() if isinstance(v, Exception)]
  assert len(outcome) == 2 and len(errors) == 1, outcome
  assert isinstance(errors[0], _store.SweepLockedError)
  assert f"this process, pid {os.getpid()}" in str(errors[0])
  winner = next(i for i, v in outcome.items() if not isinstance(v, Exception))
  stored = jaxnpg.load_sweep(out)
  assert stored.attrs["seed"] == seeds[winner]
  if seeds[winner] == 0:
    _equal(stored, reference)
