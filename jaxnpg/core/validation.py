"""Argument checks that run before tracing.

Every check here looks only at concrete values. Inside ``jit``/``vmap`` the arguments
are tracers and their values cannot be known, so value checks are skipped there; the
public entry points (``run``, ``solve``, ``sweep``, the constructors) call these checks
on the user's concrete inputs before they build any traced computation.
"""

from __future__ import annotations

import numbers
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
  """True when ``x`` holds values we can inspect (not a tracer)."""
  return not isinstance(x, jax.core.Tracer)


def _values(x, name: str) -> np.ndarray | None:
  if not is_concrete(x):
    return None
  arr = np.asarray(x)
  if arr.dtype.kind not in "biuf":
    raise ValueError(f"`{name}` must be real numbers, got dtype {arr.dtype}.")
  return arr


def real_finite_array(x, name: str):
  """``x`` as a JAX array after checking, if concrete, that it is real and finite.

  Integer and boolean input becomes JAX's default float. Raises ``ValueError``
  naming ``name`` and the first offending value and index.
  """
  if is_concrete(x):
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
      raise ValueError(f"`{name}` must be real numbers, got dtype {arr.dtype}.")
    if not np.all(np.isfinite(arr)):
      bad = np.argwhere(~np.isfinite(arr))[0]
      raise ValueError(
          f"`{name}` must be finite; found {arr[tuple(bad)]} at index "
          f"{tuple(int(b) for b in bad)}.")
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    x = x.astype(jnp.result_type(float))
  check_float_dtype(x.dtype, name)
  return x


SUPPORTED_DTYPES = ("float32", "float64")


def check_float_dtype(dtype, name: str) -> None:
  """Refuse floating dtypes narrower than float32 (float16, bfloat16, float8...).

  Their rounding floor (``eps`` about 1e-3) lies above every useful tolerance
  and their range overflows ``exp``/``logsumexp`` on ordinary rewards, so the
  library's verdicts could not be trusted; it supports float32 and float64.
  """
  dtype = jnp.dtype(dtype)
  if jnp.issubdtype(dtype, jnp.floating) and dtype.name not in SUPPORTED_DTYPES:
    raise ValueError(
        f"`{name}` has dtype {dtype.name}; jaxnpg supports {SUPPORTED_DTYPES} "
        f"(cast with .astype(jnp.float32)).")


def check_tau(tau, name: str = "tau") -> None:
  """Raise ``ValueError`` unless every value of ``tau`` is finite and ``>= 0``."""
  arr = _values(tau, name)
  if arr is None:
    return
  if not np.all(np.isfinite(arr)):
    raise ValueError(f"`{name}` must be finite, got {arr}.")
  if np.any(arr < 0):
    raise ValueError(f"`{name}` must be >= 0 (the entropy weight), got {arr}.")


def check_eta(eta, name: str = "eta") -> None:
  """Raise ``ValueError`` unless every value of ``eta`` is finite and ``> 0``."""
  arr = _values(eta, name)
  if arr is None:
    return
  if not np.all(np.isfinite(arr)):
    raise ValueError(f"`{name}` must be finite, got {arr}.")
  if np.any(arr <= 0):
    raise ValueError(f"`{name}` (the step size) must be > 0, got {arr}.")


def check_positive_int(value, name: str, *, allow_zero: bool = False) -> int:
  """Return ``value`` as an int, or raise ``ValueError`` naming it."""
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise ValueError(f"`{name}` must be an integer, got {value!r}.")
  low = 0 if allow_zero else 1
  if value < low:
    raise ValueError(f"`{name}` must be >= {low}, got {value}.")
  return int(value)


def check_tol(tol) -> None:
  """Raise ``ValueError`` unless ``tol`` is None or a finite scalar ``> 0``."""
  if tol is None or not is_concrete(tol):
    return
  arr = np.asarray(tol)
  if arr.ndim != 0 or arr.dtype.kind not in "iuf":
    raise ValueError(f"`tol` must be a scalar number, got {tol!r}.")
  value = float(arr)
  if not (value > 0 and value < float("inf")):
    raise ValueError(f"`tol` must be a finite number > 0, got {tol}.")


def warn_overshoot(eta_tau, where: str = "") -> None:
  """Warn (once per call site) when a concrete ``eta * tau >= 2``.

  The update's carry coefficient ``1 - eta tau`` is then ``<= -1``: the map
  overshoots the soft best response by at least its own distance, and runs blow
  up or cycle (the paper assumes ``eta tau <= 1``). ``eta`` is the scaled step.
  """
  if not is_concrete(eta_tau):
    return
  worst = float(np.max(np.asarray(eta_tau, dtype=np.float64)))
  if worst >= 2:
    warnings.warn(
        f"eta * tau = {worst:.3g} >= 2{where}: the NPG map overshoots (its carry "
        f"coefficient 1 - eta tau is <= -1), so such runs blow up or cycle; the "
        "paper assumes eta * tau <= 1 (jaxnpg.paper_eta keeps it below 1/2).",
        UserWarning, stacklevel=3)


def host_memory() -> int:
  """Bytes of physical memory of this machine (8 GiB when it cannot be read)."""
  try:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
  except (ValueError, OSError, AttributeError):
    return 8 << 30


def describe_actions(actions) -> str:
  """``"3 agents with actions (3, 4, 5)"``, or ``"40 agents with 2 actions each"``."""
  actions = tuple(int(a) for a in actions)
  if len(actions) > 4 and len(set(actions)) == 1:
    return f"{len(actions)} agents with {actions[0]} actions each"
  return f"{len(actions)} agents with actions {actions}"


def check_fits(num_bytes: int, what: str, advice: str) -> None:
  """Refuse, before anything is allocated, arrays of more than half the memory.

  Raises:
    ValueError: naming ``what``, its size and the machine's memory, and
      ``advice`` (what to change).
  """
  limit = host_memory() // 2
  if num_bytes > limit:
    raise ValueError(
        f"{what} would take {num_bytes / 2**30:.3g} GiB, more than half of this "
        f"machine's memory ({2 * limit / 2**30:.3g} GiB); {advice}.")


def simplex_atol(dtype) -> float:
  """Tolerance on ``sum(p) - 1`` accepted for a policy of this dtype."""
  return 1e-4 if np.dtype(dtype).itemsize <= 4 else 1e-8


def check_policy(game, logp, *, batched: bool = True) -> None:
  """Check a log-policy's structure against ``game`` and, if concrete, its values.

  Raises ``ValueError`` when the policy is not a tuple of one array per agent, when a
  shape disagrees with ``game.policy_shapes`` (leading batch axes allowed only when
  ``batched``), or when the probabilities are NaN or off the simplex.
  """
  if not isinstance(logp, (tuple, list)):
    raise ValueError(
        "A policy must be a tuple of per-agent log-probability arrays, got "
        f"{type(logp).__name__}.")
  n = game.num_agents
  if len(logp) != n:
    raise ValueError(
        f"The policy has {len(logp)} agents but the game has {n}.")
  for i, (lp, shape) in enumerate(zip(logp, game.policy_shapes)):
    lp_shape = tuple(np.shape(lp))
    ok = (lp_shape[len(lp_shape) - len(shape):] == shape if batched
          else lp_shape == shape)
    if not ok or len(lp_shape) < len(shape):
      extra = " (plus any leading batch axes)" if batched else (
          " for one game (batch with jax.vmap)")
      raise ValueError(
          f"Agent {i}'s log-policy has shape {lp_shape}, expected {shape}{extra}.")
    check_float_dtype(jnp.result_type(lp), f"agent {i}'s log-policy")
    if not is_concrete(lp):
      continue
    arr = np.asarray(lp, dtype=np.float64)
    if np.any(np.isnan(arr)) or np.any(arr == np.inf):
      raise ValueError(f"Agent {i}'s log-policy holds NaN or +inf.")
    total = np.exp(arr).sum(axis=-1)
    tol = simplex_atol(np.asarray(lp).dtype)
    if np.any(np.abs(total - 1.0) > tol):
      worst = float(np.max(np.abs(total - 1.0)))
      raise ValueError(
          f"Agent {i}'s policy is off the simplex: its probabilities sum to 1 "
          f"within {worst:.3g}, more than the tolerance {tol:g}. Pass "
          "log-probabilities (e.g. from `policy_from_probs`).")


def inputs_ok(tau, eta, tol, logp, *, action_axis: int):
  """In-graph validity of a run's inputs: a bool per run (``batch``-shaped).

  The compiled counterpart of :func:`check_tau`, :func:`check_eta`,
  ``check_tol`` and :func:`check_policy`, for values a trace hides: ``tau``
  finite and ``>= 0``, ``eta`` finite and ``> 0`` (the scaled step, so a
  discount outside ``[0, 1)`` fails here too), ``tol`` (if given) finite and
  ``> 0``, and every agent's policy free of NaN and ``+inf`` and on the simplex
  within :func:`simplex_atol`. ``action_axis`` is ``0`` for batch-last policies
  ``(A_i, *batch)``, ``1`` for a Markov game's batch-last ``(S, A_i, *batch)``
  and ``-1`` for one game's (every axis is reduced).
  """
  ok = jnp.isfinite(tau) & (tau >= 0) & jnp.isfinite(eta) & (eta > 0)
  if tol is not None:
    ok = ok & jnp.isfinite(tol) & (tol > 0)
  for lp in logp:
    bad = jnp.isnan(lp) | jnp.isposinf(lp)
    off = jnp.abs(jnp.sum(jnp.exp(lp), axis=action_axis) - 1) > simplex_atol(
        lp.dtype)
    if action_axis >= 0:   # (state axes, actions, *batch)
      lead = tuple(range(action_axis))
      ok = (ok & ~jnp.any(bad, axis=lead + (action_axis,))
            & ~jnp.any(off, axis=lead))
    else:
      ok = ok & ~jnp.any(bad) & ~jnp.any(off)
  return ok
