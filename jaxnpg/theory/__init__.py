"""Theory tools: Theorem 3.3, the exact local rate at a QRE, predicted boundaries.

Public as ``jaxnpg.theory``; see :mod:`jaxnpg.theory.predictions`.
"""

from jaxnpg.theory.predictions import (Boundary, LocalRate, PredictedRates,
                                       Theorem33, centred_basis, eigvals,
                                       local_rate, npg_jacobian,
                                       payoff_jacobian, predict_for_sweep,
                                       predicted_boundary, predicted_rates,
                                       rates_from_eigenvalues, theorem_3_3)

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
    "predicted_boundary",
    "predicted_rates",
    "rates_from_eigenvalues",
    "theorem_3_3",
]
