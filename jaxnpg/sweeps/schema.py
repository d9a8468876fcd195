"""The per-cell fields of a sweep: names, dtype kinds, when they are recorded.

The one description of what a sweep records, read by the compiled chunk's
summary, :class:`jaxnpg.SweepResult` and the store's checks of chunk files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple


class Field(NamedTuple):
  """One per-cell array of a sweep.

  Attributes:
    name: the array's name (a ``SweepResult`` attribute, a chunk file entry).
    kind: the NumPy dtype kinds it may have (``"f"`` means the sweep's dtype).
    group: when it is recorded: ``"cell"`` always, ``"verdict2"`` by sweeps
      judged with the second verdict rules (``verdict_rules >= 2``: per-agent
      tolerances, STALLED on evidence), ``"trajectory"`` with
      ``trajectory_points``, ``"atlas"`` with ``lyapunov``, ``"inits"`` with
      ``lyapunov`` and ``num_inits``, ``"policy"`` with ``keep_logp`` (one
      trailing axis: the agents' flattened log-policies, concatenated).
  """
  name: str
  kind: str
  group: str


FIELDS = (
    Field("qre_gap", "f", "cell"),
    Field("ne_gap", "f", "cell"),
    Field("iterations_to_tol", "iu", "cell"),
    Field("linear_rate", "f", "cell"),
    Field("monotone", "b", "cell"),
    Field("status", "iu", "cell"),
    Field("iterations_needed", "f", "verdict2"),
    Field("qre_gap_trajectory", "f", "trajectory"),
    Field("ne_gap_trajectory", "f", "trajectory"),
    Field("exponent", "f", "atlas"),
    Field("exponent_stderr", "f", "atlas"),
    Field("attractor", "i", "atlas"),
    Field("period", "iu", "atlas"),
    Field("num_fixed_points", "iu", "inits"),
    Field("final_logp", "f", "policy"),
)
KINDS = {f.name: f.kind for f in FIELDS}


def names(group: str) -> tuple[str, ...]:
  """The field names of one group, in order."""
  return tuple(f.name for f in FIELDS if f.group == group)


CELL_FIELDS = names("cell")
VERDICT2_FIELDS = names("verdict2")
TRAJECTORY_FIELDS = names("trajectory")
ATLAS_FIELDS = names("atlas")
INITS_FIELDS = names("inits")
POLICY_FIELDS = names("policy")


def recorded(params: Mapping) -> tuple[str, ...]:
  """The fields a sweep with these (manifest) parameters records."""
  groups = {"cell"}
  if params.get("verdict_rules", 1) >= 2:
    groups.add("verdict2")
  if params.get("keep_logp"):
    groups.add("policy")
  if params.get("trajectory_points"):
    groups.add("trajectory")
  if params.get("lyapunov"):
    groups.add("atlas")
    if params.get("num_inits") is not None:
      groups.add("inits")
  return tuple(f.name for f in FIELDS if f.group in groups)
