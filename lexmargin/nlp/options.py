"""Solver options and certificate tolerances, documented once for every problem type.

Every solve function (``max_margin``, the paths, ``lexicographic_max_margin``, ``depth_sensitive``,
``solve_pyomo``, ...) takes ``options: SolveOptions | None`` plus keyword overrides of its fields::

    lm.max_margin(model, data, tol=1e-12, starts=3)          # same as
    lm.max_margin(model, data, options=lm.SolveOptions(tol=1e-12, starts=3))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from ..errors import LexmarginError


@dataclass(frozen=True)
class Tolerances:
    """What the certificate accepts (all relative, see docs/certificates.md).

    kkt: ``optimal`` iff stationarity, primal and dual feasibility and complementarity are <= kkt.
    active: a row is active when its slack divided by its level is <= active.
    support: a multiplier is in the support when it exceeds support * (largest multiplier).
    rank: singular values below rank * (largest) of the row-normalized active Jacobian do not count.
    curvature: the reduced Hessian is positive definite when its smallest eigenvalue exceeds
        curvature * (its scale).
    """

    kkt: float = 1e-8
    active: float = 1e-8
    support: float = 1e-9
    rank: float = 1e-9
    curvature: float = 1e-9

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value < 1):
                raise LexmarginError(f"tolerance {f.name} must be a number in (0, 1); got {value!r}")

    def to_dict(self) -> dict:
        """The tolerances as a dict (field -> value)."""
        return asdict(self)


@dataclass(frozen=True)
class SolveOptions:
    """Options shared by every problem.

    tol: IPOPT's convergence tolerance (the certificate applies its own ``tolerances``).
    max_iter: IPOPT iteration limit per solve.
    time_limit: wall-clock seconds per IPOPT solve (None: no limit); hitting it gives ``max_time``.  In
        ``max_margin`` the dual route and the IPOPT solves after it share it (IPOPT gets what is left), in
        ``svm_with_bias`` the QP route and the general route after it.
    starts: random starts for nonconvex problems (None: the problem's default).
    seed: seed of random starts and directions.
    init: a start point theta (a trained theta, a previous solution); every problem calls it init.
    finish: identify the active set after IPOPT and solve its KKT system exactly (nlp.finish).
    raise_on_failure: raise (NotSeparableError, SolverError, ...) when the status is not a success;
        otherwise the certificate carries the status and its numbers.
    ipopt: IPOPT option overrides, e.g. {"mu_init": 1e-4} or {"ipopt.print_level": 5}.
    tolerances: the certificate's tolerances.
    verbose: progress at INFO (True / 1) or DEBUG (2) on the "lexmargin" loggers, shown on stderr for the
        solve's duration when the application configured no logging, with progress bars on a terminal
        (``lexmargin.progress``); False / 0 (default) leaves logging as the application set it.
    """

    tol: float = 1e-10
    max_iter: int = 3000
    time_limit: float | None = None
    starts: int | None = None
    seed: int = 0
    init: np.ndarray | None = None
    finish: bool = True
    raise_on_failure: bool = True
    ipopt: Mapping = field(default_factory=dict)
    tolerances: Tolerances = field(default_factory=Tolerances)
    verbose: bool | int = False

    def __post_init__(self):
        if not (isinstance(self.tol, (int, float)) and 0 < self.tol < 1):
            raise LexmarginError(f"tol must be in (0, 1); got {self.tol!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 0):
            raise LexmarginError(f"max_iter must be a non-negative integer; got {self.max_iter!r}")
        if self.time_limit is not None and not (self.time_limit > 0):
            raise LexmarginError(f"time_limit must be positive seconds; got {self.time_limit!r}")
        if self.starts is not None and not (isinstance(self.starts, (int, np.integer)) and self.starts >= 1):
            raise LexmarginError(f"starts must be >= 1; got {self.starts!r}")
        if not isinstance(self.tolerances, Tolerances):
            raise LexmarginError(f"tolerances must be a Tolerances; got {type(self.tolerances).__name__}")
        if isinstance(self.verbose, bool) or (isinstance(self.verbose, (int, np.integer)) and self.verbose >= 0):
            object.__setattr__(self, "verbose", self.verbose if isinstance(self.verbose, bool) else int(self.verbose))
        else:
            raise LexmarginError(f"verbose must be a bool or an integer level >= 0; got {self.verbose!r}")
        object.__setattr__(self, "ipopt", dict(self.ipopt or {}))

    @classmethod
    def resolve(cls, options: SolveOptions | None = None, **overrides) -> SolveOptions:
        """``options`` (default SolveOptions()) with ``overrides`` applied; unknown names raise TypeError.

        Args:
            options: a SolveOptions, or None for the defaults.
            **overrides: SolveOptions fields to replace.

        Returns:
            The SolveOptions (``options`` itself when nothing is overridden).
        """
        base = options if options is not None else cls()
        if not isinstance(base, cls):
            raise TypeError(f"options must be a SolveOptions, got {type(base).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; SolveOptions has {sorted(names)}")
        return replace(base, **overrides) if overrides else base

    def ipopt_options(self) -> dict:
        """IPOPT options in CasADi's nlpsol form (``ipopt.`` prefix).

        Returns:
            ``tol``, ``max_iter``, ``max_wall_time`` (with a time limit) and the ``ipopt`` dict, prefixed.
        """
        out = {"ipopt.tol": float(self.tol), "ipopt.max_iter": int(self.max_iter)}
        if self.time_limit is not None:
            out["ipopt.max_wall_time"] = float(self.time_limit)
        for key, value in self.ipopt.items():
            out[key if "." in key else f"ipopt.{key}"] = value
        return out

    def to_dict(self) -> dict:
        """JSON-ready form of every field (``init`` as a list, ``tolerances`` as a dict)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["init"] = None if self.init is None else np.asarray(self.init).tolist()
        out["tolerances"] = self.tolerances.to_dict()
        return out
