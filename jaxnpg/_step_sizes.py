"""Step-size rules."""

from __future__ import annotations

import jax.numpy as jnp

from jaxnpg._validation import check_tau


def paper_eta(tau, num_actions):
  """The default step size for the paper's figures: ``1 / (2 (tau + 2 sum_i A_i))``.

  The paper prints ``1 / (2 (tau - 2) sum_i A_i)``, negative for ``tau < 2``, so it
  cannot be what was run at small ``tau`` (SPEC). This rule satisfies Theorem 3.3's
  step-size condition ``eta < 1 / (tau - 2 S)`` for every ``tau`` and keeps
  ``eta * tau < 1/2``. Works on arrays of ``tau`` (and under jit/vmap).

  Args:
    tau: entropy weight(s), ``>= 0``.
    num_actions: ``(A_1, ..., A_n)``.

  Example:
    >>> import jaxnpg
    >>> round(float(jaxnpg.paper_eta(0.0, (3, 4, 5))), 6)  # 1 / 48
    0.020833
  """
  check_tau(tau)
  s = sum(int(a) for a in num_actions)
  return 1.0 / (2.0 * (jnp.asarray(tau) + 2.0 * s))
