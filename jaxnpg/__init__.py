"""jaxnpg: entropy-regularized independent natural policy gradient in games, in JAX.

Games are dense reward tensors (``NormalFormGame``) or native forms; the NPG step is
a pure, jittable function computing marginals in log space; batch with ``jax.vmap``;
iterate with ``run`` (lax.scan) or ``solve`` (lax.while_loop). Every game type
implements the ``Game`` protocol; ``algorithm=`` takes a name in ``ALGORITHMS`` or
any object with the ``Algorithm`` protocol.

Naming conventions: the agent axis comes first in reward tensors,
``rewards[i, a_1, ..., a_n]``; ``logp`` is a tuple of per-agent log-probability
arrays; ``rbar`` the marginal rewards; ``tau`` the entropy weight (``lambda = 1/tau``
in Gambit's logit QRE); ``eta`` the step size.
"""

from jaxnpg import theory
from jaxnpg._version import __version__
from jaxnpg.core.policy import (
                           policy_from_probs,
                           random_policy,
                           to_probs,
                           uniform_policy,
)
from jaxnpg.core.protocol import Game
from jaxnpg.core.step import (
                           fixed_point_residual,
                           kl_residual,
                           marginal_rewards,
                           ne_gap,
                           ne_gap_per_agent,
                           npg_step,
                           qre_gap,
                           qre_gap_per_agent,
                           soft_best_response,
)
from jaxnpg.core.step_sizes import paper_eta
from jaxnpg.dynamics.attractors import (
                           ATTRACTOR_NAMES,
                           Attractor,
                           AttractorResult,
                           attractor,
                           classify,
                           count_distinct,
                           detect_period,
)
from jaxnpg.dynamics.lyapunov import LyapunovResult, lyapunov_exponent
from jaxnpg.games.batch import stack_games
from jaxnpg.games.covariant import covariant_game
from jaxnpg.games.dense import NormalFormGame, random_game
from jaxnpg.games.families import families, make_game
from jaxnpg.games.generators import (
                           AffineMap,
                           bimatrix_game,
                           cooperative_game,
                           potential_game,
                           rescale_rewards,
                           zero_sum_game,
)
from jaxnpg.games.interop import from_gambit, from_openspiel, to_gambit
from jaxnpg.games.markov import (
                           MarkovGame,
                           markov_game_from_stage_games,
                           random_markov_game,
)
from jaxnpg.games.polymatrix import PolymatrixGame, graph_edges, network_zero_sum_game
from jaxnpg.loop.algorithms import (
                           ALGORITHMS,
                           NPG,
                           Algorithm,
                           OptimisticNPG,
                           PolicyGradient,
                           SampledNPG,
)
from jaxnpg.loop.rate import linear_rate
from jaxnpg.loop.run import RunResult, SolveResult, run, solve
from jaxnpg.loop.status import STATUS_NAMES, Status
from jaxnpg.paper.reproduce import reproduce
from jaxnpg.sweeps.atlas import REGIMES, AtlasResult, Regime, atlas, load_atlas, regimes
from jaxnpg.sweeps.config import SweepConfig
from jaxnpg.sweeps.equilibria import ReachedEquilibria, reached_equilibria
from jaxnpg.sweeps.results import SweepResult
from jaxnpg.sweeps.run import sweep
from jaxnpg.sweeps.seeding import family_game, init_key, sweep_key
from jaxnpg.sweeps.store import load_sweep
from jaxnpg.theory.jacobian import local_rate
from jaxnpg.theory.logit import QREResult, qre
from jaxnpg.theory.qre_batch import qre_batch
from jaxnpg.theory.qre_estimate import LogitEstimate, logit_estimate
from jaxnpg.theory.qre_status import QREStatus
from jaxnpg.viz.kinds import plot

__all__ = [
    "__version__",
    "ALGORITHMS",
    "Algorithm",
    "NPG",
    "OptimisticNPG",
    "PolicyGradient",
    "STATUS_NAMES",
    "Status",
    "SampledNPG",
    "Game",
    "NormalFormGame",
    "QREResult",
    "QREStatus",
    "RunResult",
    "SolveResult",
    "SweepConfig",
    "SweepResult",
    "families",
    "family_game",
    "fixed_point_residual",
    "kl_residual",
    "linear_rate",
    "load_sweep",
    "local_rate",
    "make_game",
    "marginal_rewards",
    "ne_gap",
    "ne_gap_per_agent",
    "npg_step",
    "paper_eta",
    "plot",
    "policy_from_probs",
    "qre",
    "qre_batch",
    "LogitEstimate",
    "logit_estimate",
    "qre_gap",
    "qre_gap_per_agent",
    "ReachedEquilibria",
    "reached_equilibria",
    "random_game",
    "random_policy",
    "reproduce",
    "run",
    "soft_best_response",
    "solve",
    "stack_games",
    "sweep",
    "sweep_key",
    "to_probs",
    "uniform_policy",
    # Game families and interop (jaxnpg/games/generators.py, _polymatrix.py, _interop.py)
    "AffineMap",
    "PolymatrixGame",
    "bimatrix_game",
    "cooperative_game",
    "from_gambit",
    "from_openspiel",
    "graph_edges",
    "network_zero_sum_game",
    "potential_game",
    "rescale_rewards",
    "to_gambit",
    "zero_sum_game",
    # Markov games (jaxnpg/games/markov.py)
    "MarkovGame",
    "markov_game_from_stage_games",
    "random_markov_game",
    # Learning dynamics: covariant games, Lyapunov exponents, attractors
    # (jaxnpg/games/covariant.py, _lyapunov.py, _attractors.py)
    "ATTRACTOR_NAMES",
    "Attractor",
    "AttractorResult",
    "AtlasResult",
    "REGIMES",
    "Regime",
    "atlas",
    "init_key",
    "load_atlas",
    "regimes",
    "LyapunovResult",
    "attractor",
    "classify",
    "count_distinct",
    "covariant_game",
    "detect_period",
    "lyapunov_exponent",
    # Theory tools and the direct QRE solver (jaxnpg/theory/predictions.py, _qre.py)
    "theory",
]
