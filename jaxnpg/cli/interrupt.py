"""Ctrl-C during a sweep: a notice the moment it arrives, what is saved, and the
command that resumes.

Python raises ``KeyboardInterrupt`` only when the main thread returns from
compiled code, which can take a chunk's time; :func:`interrupt_notice` tells the
user at once that the interrupt was received. :func:`saved_note` reads a sweep
(or atlas) folder's manifests for the chunks kept, and :func:`resume_command` is
the command line to run again.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence

from jaxnpg.sweeps.store import MANIFEST


def _chunk_counts(manifest: pathlib.Path) -> tuple[int, int | None] | None:
  """``(saved, total)`` chunks of one sweep's manifest; None if unreadable."""
  try:
    doc = json.loads(manifest.read_text())
    saved = len(doc["chunks"])
  except (OSError, ValueError, TypeError, KeyError):
    return None
  try:
    return saved, int(doc["layout"]["num_chunks"])
  except (TypeError, ValueError, KeyError):
    return saved, None


def saved_note(out: str) -> str:
  """``"3 of 8 chunks are saved in OUT"``, from the folder's manifest (an
  atlas: the manifests of its sweeps so far)."""
  folder = pathlib.Path(out)
  counts = [c for c in map(_chunk_counts, [folder / MANIFEST,
                                           *sorted(folder.glob(f"*/{MANIFEST}"))])
            if c is not None]
  if not counts:
    return f"no chunk is saved in {out} yet"
  saved = sum(s for s, _ in counts)
  if len(counts) == 1 and counts[0][1] is not None:
    return f"{saved} of {counts[0][1]} chunks are saved in {out}"
  return f"{saved} chunk(s) are saved in {out}"


def resume_command(argv: Sequence[str]) -> str:
  """The command line that runs ``jaxnpg ARGV`` again (and so resumes it)."""
  return shlex.join(["jaxnpg", *argv])


@contextlib.contextmanager
def interrupt_notice(message: str) -> Iterator[None]:
  """Print ``message`` on stderr the moment Ctrl-C arrives.

  The C-level signal handler writes the signal number to a wakeup fd at once;
  a helper thread waiting on it prints the notice while the main thread is
  still inside compiled code.
  """
  try:
    reader, writer = socket.socketpair()
  except OSError:
    yield
    return
  writer.setblocking(False)
  try:
    old = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
  except (ValueError, OSError):   # not the main thread
    reader.close()
    writer.close()
    yield
    return

  def watch():
    while True:
      try:
        data = reader.recv(64)
      except OSError:
        return
      if not data or 0 in data:
        return
      if signal.SIGINT in data:
        with contextlib.suppress(Exception):
          sys.stderr.write(f"\n{message}\n")
          sys.stderr.flush()

  thread = threading.Thread(target=watch, name="jaxnpg-interrupt", daemon=True)
  thread.start()
  try:
    yield
  finally:
    with contextlib.suppress(ValueError, OSError):
      signal.set_wakeup_fd(old)
    with contextlib.suppress(OSError):
      writer.send(b"\0")
    thread.join(1.0)
    reader.close()
    writer.close()
