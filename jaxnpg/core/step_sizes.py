"""Step-size rules."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxnpg.core.validation import check_tau, is_concrete


def paper_eta(tau, num_actions, discount=0.0):
  """The default step size for the paper's figures: ``(1 - gamma) / (2 (tau + 2 sum_i A_i))``.

  The paper prints ``1 / (2 (tau - 2) sum_i A_i)``, negative for ``tau < 2``, so it
  cannot be what was run at small ``tau`` (SPEC). This rule satisfies Theorem 3.3's
  step-size condition ``eta < 1 / (tau - 2 S)`` for every ``tau`` and keeps
  ``eta * tau < 1/2``. Works on arrays of ``tau`` (and under jit/vmap).

  For a Markov game the update uses ``eta_bar = eta / (1 - gamma)`` (SPEC), so the
  rule carries the factor ``1 - gamma``: ``eta_bar`` is then the static rule and
  ``eta_bar * tau < 1/2`` for every ``tau`` (without it, the paper's sizes blow up
  from ``tau`` of about 7 at ``gamma = 0.9``).

  Args:
    tau: entropy weight(s), ``>= 0``.
    num_actions: ``(A_1, ..., A_n)``.
    discount: a Markov game's ``gamma`` in ``[0, 1)`` (0 for static games).

  Example:
    >>> import jaxnpg
    >>> round(float(jaxnpg.paper_eta(0.0, (3, 4, 5))), 6)  # 1 / 48
    0.020833
  """
  check_tau(tau)
  if is_concrete(discount) and not np.all((np.asarray(discount) >= 0)
                                          & (np.asarray(discount) < 1)):
    raise ValueError(f"`discount` (gamma) must be in [0, 1), got {discount}.")
  s = sum(int(a) for a in num_actions)
  return (1.0 - jnp.asarray(discount)) / (2.0 * (jnp.asarray(tau) + 2.0 * s))
