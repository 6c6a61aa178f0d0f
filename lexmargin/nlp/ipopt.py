"""IPOPT (bundled in the casadi wheel) on an ``NLP``: status map and multiplier signs written once.

``IpoptSolver(nlp, options)`` builds CasADi's nlpsol once; ``solve(z0, p)`` re-runs it (paths re-solve
along a schedule, working sets and starts re-use it).  The NLP's rows are posed as CasADi constraints
with lbg = 0 (inequalities c(z) >= 0: ubg = inf; equalities: ubg = 0), so the multipliers in our
convention are lambda = -lam_g for every row, and the bound multipliers are -lam_x (lower) and
+lam_x (upper).  An NLP with ``x_scale`` S is posed to IPOPT in u = z / S (bounds / S, lam_x / S back):
with powers of two the map is exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import casadi as ca
import numpy as np

from .nlp import NLP
from .status import Status

DEFAULT_OPTIONS = {
    "ipopt.print_level": 0,
    "ipopt.sb": "yes",
    "print_time": False,
    # an overflow at a trial point (exp of a large margin) is IPOPT's to handle by backtracking; CasADi would
    # print a warning per evaluation on stderr
    "show_eval_warnings": False,
    "ipopt.tol": 1e-10,
    "ipopt.acceptable_tol": 1e-8,
    "ipopt.acceptable_iter": 4,
    "ipopt.max_iter": 3000,
    "ipopt.mumps_pivot_order": 6,   # measured: 4.1 s -> 0.7 s on a dense SVM
    # IPOPT relaxes every bound by 1e-8 by default; certificates check feasibility exactly
    "ipopt.bound_relax_factor": 0.0,
}
CONVEX_QP_OPTIONS = {
    "ipopt.mehrotra_algorithm": "yes",
    "ipopt.hessian_constant": "yes",
    "ipopt.jac_c_constant": "yes",
    "ipopt.jac_d_constant": "yes",
}
MEHROTRA_MAX_ITER = 200  # convex LP/QP: Mehrotra converges in tens of iterations or not at all

STATUS_MAP = {
    "Solve_Succeeded": Status.OPTIMAL,
    "Solved_To_Acceptable_Level": Status.INACCURATE,
    "Infeasible_Problem_Detected": Status.INFEASIBLE,
    "Maximum_Iterations_Exceeded": Status.MAX_ITERATIONS,
    "Maximum_CpuTime_Exceeded": Status.MAX_TIME,
    "Maximum_WallTime_Exceeded": Status.MAX_TIME,
}


def status_of(return_status: str) -> Status:
    return STATUS_MAP.get(return_status, Status.FAILED)


@dataclass(frozen=True, eq=False)
class IpoptResult:
    """IPOPT's point and multipliers in lexmargin's convention (lambda >= 0 for c(z) >= 0)."""

    z: np.ndarray
    objective: float
    multipliers: np.ndarray          # one per NLP row
    lower_multipliers: np.ndarray    # one per variable (0 where the lower bound is infinite)
    upper_multipliers: np.ndarray
    status: Status                   # IPOPT's own verdict (mapped once by STATUS_MAP)
    return_status: str
    iterations: int
    seconds: float
    solver: str = "ipopt"
    vertex: bool = False             # an active-set solver's point: multipliers on linearly independent rows

    @property
    def converged(self) -> bool:
        return self.status in (Status.OPTIMAL, Status.INACCURATE)


def bound_multipliers(lam_x, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """CasADi's lam_x (negative at an active lower bound) as (lower, upper) multipliers >= 0."""
    lam_x = np.asarray(lam_x, dtype=float)
    has_lo, has_up = np.isfinite(lower), np.isfinite(upper)
    lo = np.where(has_lo & ~has_up, -lam_x, np.where(has_lo, np.maximum(-lam_x, 0.0), 0.0))
    up = np.where(has_up & ~has_lo, lam_x, np.where(has_up, np.maximum(lam_x, 0.0), 0.0))
    return lo, up


class IpoptSolver:
    """A compiled IPOPT solver for one NLP structure (options fixed at construction)."""

    def __init__(self, nlp: NLP, options: dict | None = None):
        self.nlp = nlp
        self.options = {**DEFAULT_OPTIONS, **nlp.options, **(options or {})}
        self.scale = np.ones(nlp.n) if nlp.x_scale is None else np.asarray(nlp.x_scale, dtype=float)
        u = nlp.symbol.sym("u", nlp.n)
        z = u if nlp.x_scale is None else u * nlp.symbol(ca.DM(self.scale))
        problem = {"x": u}
        args = [z]
        if nlp.parameters:
            p = nlp.symbol.sym("p", nlp.parameters)
            problem["p"] = p
            args.append(p)
        else:
            args.append(None)
        objective, rows = nlp.expressions(*args)
        problem["f"] = objective
        problem["g"] = rows if rows is not None and rows.shape[0] else nlp.symbol(0, 1)
        self.solver = ca.nlpsol(nlp.name, "ipopt", problem, self.options)
        eq = nlp.equality_mask
        self.lbg = np.zeros(nlp.m)
        self.ubg = np.where(eq, 0.0, np.inf)

    def solve(self, z0, p=None) -> IpoptResult:
        nlp = self.nlp
        z0 = np.clip(np.asarray(z0, dtype=float).reshape(-1), nlp.lower, nlp.upper)
        S = self.scale
        args = {"x0": z0 / S, "lbx": nlp.lower / S, "ubx": nlp.upper / S, "lbg": self.lbg, "ubg": self.ubg}
        if nlp.parameters:
            args["p"] = np.asarray(p, dtype=float).reshape(-1)
        start = time.perf_counter()
        out = self.solver(**args)
        seconds = time.perf_counter() - start
        stats = self.solver.stats()
        ret = str(stats.get("return_status", "unknown"))
        lo, up = bound_multipliers(np.array(out["lam_x"]).reshape(-1) / S, nlp.lower, nlp.upper)
        return IpoptResult(
            z=np.array(out["x"]).reshape(-1) * S, objective=float(out["f"]),
            multipliers=-np.array(out["lam_g"]).reshape(-1), lower_multipliers=lo, upper_multipliers=up,
            status=status_of(ret), return_status=ret, iterations=int(stats.get("iter_count", -1)),
            seconds=seconds)


def solve(nlp: NLP, z0, p=None, options: dict | None = None) -> IpoptResult:
    """Build and run IPOPT once."""
    return IpoptSolver(nlp, options).solve(z0, p)


def solve_convex(nlp: NLP, z0, p=None, options: dict | None = None) -> IpoptResult:
    """A convex LP/QP: Mehrotra's predictor-corrector first, IPOPT's default algorithm when it does not
    converge (Mehrotra does not detect infeasibility)."""
    options = dict(options or {})
    limit = int(options.get("ipopt.max_iter", DEFAULT_OPTIONS["ipopt.max_iter"]))
    if options.get("ipopt.mehrotra_algorithm", "yes") != "yes" or limit <= MEHROTRA_MAX_ITER:
        return solve(nlp, z0, p, {**CONVEX_QP_OPTIONS, **options})
    result = solve(nlp, z0, p, {**CONVEX_QP_OPTIONS, **options, "ipopt.max_iter": MEHROTRA_MAX_ITER})
    if result.status == Status.OPTIMAL:
        return result
    second = solve(nlp, z0, p, {**CONVEX_QP_OPTIONS, **options, "ipopt.mehrotra_algorithm": "no"})
    return replace(second, iterations=result.iterations + second.iterations, seconds=result.seconds + second.seconds)
