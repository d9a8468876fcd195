"""Theory tools: Theorem 3.3, the exact local rate at a QRE, predicted boundaries.

Three questions about the NPG iteration of eq. (2), answered without running it
(public as ``jaxnpg.theory``):

* :func:`theorem_3_3` (:mod:`jaxnpg.theory.theorem`): do the paper's sufficient
  conditions hold, and what rate and bound do they give? (Stated for rewards in
  ``[0, 1]``; here for the game's real reward range.)
* :func:`local_rate` (:mod:`jaxnpg.theory.jacobian`): the spectral radius
  ``rho(J)`` of the Jacobian of the NPG map at a QRE, the exact asymptotic rate
  near it (docs/spec.md, "Local rate").
* :func:`predicted_rates` / :func:`predicted_boundary`
  (:mod:`jaxnpg.theory.predictions`): the same for a batch of games over grids of
  ``tau`` and ``eta``, at the QRE on Gambit's principal branch (:func:`jaxnpg.qre`,
  :mod:`jaxnpg.theory.logit`).

Example:
  >>> import jax, jaxnpg
  >>> game = jaxnpg.random_game(jax.random.key(0), (2, 3))
  >>> th = jaxnpg.theory.theorem_3_3(game, 0.1, jaxnpg.paper_eta(0.1, game))
  >>> bool(th.holds)                   # tau = 0.1 is far below 2 W sum A_i
  False
  >>> eq = jaxnpg.qre(game, 0.1)
  >>> bool(jaxnpg.local_rate(game, 0.1, jaxnpg.paper_eta(0.1, game), eq).attracting)
  True
"""

from jaxnpg.theory.jacobian import (
                                    LocalRate,
                                    centred_basis,
                                    eigvals,
                                    local_rate,
                                    npg_jacobian,
                                    payoff_jacobian,
                                    rates_from_eigenvalues,
)
from jaxnpg.theory.predictions import (
                                    Boundary,
                                    PredictedRates,
                                    predict_for_sweep,
                                    predicted_boundary,
                                    predicted_rates,
)
from jaxnpg.theory.theorem import Theorem33, theorem_3_3, theorem_rate

__all__ = [
    "Boundary",
    "LocalRate",
    "PredictedRates",
    "Theorem33",
    "centred_basis",
    "eigvals",
    "local_rate",
    "npg_jacobian",
    "payoff_jacobian",
    "predict_for_sweep",
    "predicted_boundary",
    "predicted_rates",
    "rates_from_eigenvalues",
    "theorem_3_3",
    "theorem_rate",
]
