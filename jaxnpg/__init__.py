"""jaxnpg: entropy-regularized independent natural policy gradient in games, in JAX.

Games are dense reward tensors (``NormalFormGame``) or native forms; the NPG step is
a pure, jittable function computing marginals in log space; batch with ``jax.vmap``;
iterate with ``run`` (lax.scan) or ``solve`` (lax.while_loop).

Naming conventions: the agent axis comes first in reward tensors,
``rewards[i, a_1, ..., a_n]``; ``logp`` is a tuple of per-agent log-probability
arrays; ``rbar`` the marginal rewards; ``tau`` the entropy weight (``lambda = 1/tau``
in Gambit's logit QRE); ``eta`` the step size.
"""

from importlib import metadata as _metadata

from jaxnpg._families import families, make_game
from jaxnpg._games import NormalFormGame, random_game
from jaxnpg._npg import (fixed_point_residual, kl_residual, marginal_rewards,
                         ne_gap, ne_gap_per_agent, npg_step, qre_gap,
                         qre_gap_per_agent, soft_best_response)
from jaxnpg._policy import (policy_from_probs, random_policy, to_probs,
                            uniform_policy)
from jaxnpg._protocol import Game
from jaxnpg._rate import linear_rate
from jaxnpg._solve import RunResult, SolveResult, run, solve
from jaxnpg._step_sizes import paper_eta

try:
  __version__ = _metadata.version("jaxnpg")
except _metadata.PackageNotFoundError:  # running from a source tree
  __version__ = "0.0.0+unknown"

__all__ = [
    "Game",
    "NormalFormGame",
    "RunResult",
    "SolveResult",
    "families",
    "fixed_point_residual",
    "kl_residual",
    "linear_rate",
    "make_game",
    "marginal_rewards",
    "ne_gap",
    "ne_gap_per_agent",
    "npg_step",
    "paper_eta",
    "policy_from_probs",
    "qre_gap",
    "qre_gap_per_agent",
    "random_game",
    "random_policy",
    "run",
    "soft_best_response",
    "solve",
    "to_probs",
    "uniform_policy",
]
