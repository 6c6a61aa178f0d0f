"""HiGHS (scipy's ``linprog``, dual simplex) on an NLP that is a linear program.

An NLP of lexmargin's form (``nlp.NLP``)

    min phi(z)   s.t.   c_i(z) >= 0,   h_j(z) = 0,   lower <= z <= upper

is a linear program when phi and every row are affine in z: the max-margin problem of a model linear in theta in a
polyhedral norm (l1: z = (u, v) >= 0, theta = u - v, phi = sum z; linf: z = (theta, t), phi = t, rows t -+ theta_j
>= 0).  Interior-point methods stop short of such a problem's vertex, and IPOPT fails outright where the features'
units differ by 1e12 (``Error_In_Step_Computation``); the dual simplex ends at a vertex, exact up to the basis
solve's rounding.  It solves in u = z / x_scale like IPOPT (``NLP.x_scale``: powers of two).  The data come from the NLP's own numpy evaluation: the gradient g = grad phi and the rows'
values c(0) and Jacobian J at z = 0 (checked to be the same at a second point: an NLP that is not linear is
refused), so the LP is

    min g.z   s.t.   -J_I z <= c_I(0),   J_E z = -h(0),   lower <= z <= upper.

HiGHS's marginals are the derivatives of the optimal value with respect to the right-hand sides and bounds; in
lexmargin's convention (grad phi = J^T lambda + lower - upper, lambda >= 0 on inequality rows, bound multipliers
>= 0) that is lambda_I = -marginals_I, lambda_E = marginals_E, lower = the lower bounds' marginals, upper = minus
the upper bounds'.  The point and multipliers are a proposal like IPOPT's (``IpoptResult``, ``vertex=True``): the
finish and the certificate judge them.
"""

from __future__ import annotations

import time

import numpy as np

from .ipopt import IpoptResult
from .nlp import NLP
from .status import Status

# scipy.optimize.linprog's status codes -> lexmargin's Status, once
STATUS_MAP = {0: Status.OPTIMAL, 1: Status.MAX_ITERATIONS, 2: Status.INFEASIBLE, 3: Status.FAILED, 4: Status.FAILED}
RETURN_STATUS = {0: "optimal", 1: "iteration_limit", 2: "infeasible", 3: "unbounded", 4: "numerical_difficulties"}
LINEARITY_TOL = 1e-12    # relative change of the gradient or Jacobian between two points that still counts as affine


def linear_program(nlp: NLP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(g, J, c0): the objective's gradient, the rows' Jacobian and their values at z = 0, checked to be the same at
    z = 1 (to LINEARITY_TOL of their largest entry, at least 1), or ValueError when the NLP is not a linear
    program."""
    at_zero, other = nlp.evaluate(np.zeros(nlp.n)), nlp.evaluate(np.ones(nlp.n))
    g, J = np.asarray(at_zero.gradient, dtype=float), np.asarray(at_zero.jacobian, dtype=float)
    for first, second in ((g, other.gradient), (J, other.jacobian)):
        size = float(np.max(np.abs(first), initial=1.0))
        if first.shape != np.shape(second) or np.max(np.abs(first - second), initial=0.0) > LINEARITY_TOL * size:
            raise ValueError(f"NLP {nlp.name!r} is not a linear program (its derivatives change with z)")
    return g, J, np.asarray(at_zero.values, dtype=float)


def solve(nlp: NLP, time_limit: float | None = None) -> IpoptResult:
    """Solve the linear program ``nlp`` by HiGHS's dual simplex (see the module docstring).

    Args:
        nlp: an NLP whose objective and rows are affine in z (``linear_program`` checks it).
        time_limit: seconds (None: no limit).
    Returns:
        An ``IpoptResult`` (``solver="highs"``, ``vertex=True``) with the point and multipliers in lexmargin's
        convention; where HiGHS gives no point (infeasible, unbounded), z = 0 and every multiplier 0.
    """
    from scipy.optimize import linprog

    started = time.perf_counter()
    g, J, c0 = linear_program(nlp)
    # in u = z / x_scale, as IPOPT (powers of two, exact): unit columns, so that HiGHS's absolute tolerances
    # (1e-7) see a column of entries 1e-11 (a feature in units 1e-6 beside one in 1e6) as well as the others
    scale = np.ones(nlp.n) if nlp.x_scale is None else np.asarray(nlp.x_scale, dtype=float)
    g, J = g * scale, J * scale
    eq = nlp.equality_mask
    bounds = np.column_stack([nlp.lower / scale, nlp.upper / scale])
    options = {} if time_limit is None else {"time_limit": max(float(time_limit), 0.0)}
    lp = linprog(g, A_ub=-J[~eq] if np.any(~eq) else None, b_ub=c0[~eq] if np.any(~eq) else None,
                 A_eq=J[eq] if np.any(eq) else None, b_eq=-c0[eq] if np.any(eq) else None,
                 bounds=[(lo if np.isfinite(lo) else None, up if np.isfinite(up) else None) for lo, up in bounds],
                 method="highs-ds", options=options)
    status = STATUS_MAP.get(lp.status, Status.FAILED)
    return_status = RETURN_STATUS.get(lp.status, f"status {lp.status}")
    if lp.status == 1 and str(lp.message).startswith("Time limit"):    # linprog's status 1 is either limit
        status, return_status = Status.MAX_TIME, "time_limit"
    seconds = time.perf_counter() - started
    iterations = int(getattr(lp, "nit", 0) or 0)
    if lp.x is None:
        n = nlp.n
        return IpoptResult(np.zeros(n), float("nan"), np.zeros(nlp.m), np.zeros(n), np.zeros(n), status,
                           return_status, iterations, seconds, solver="highs", vertex=True)
    multipliers = np.zeros(nlp.m)
    if np.any(~eq):
        multipliers[~eq] = -np.asarray(lp.ineqlin.marginals, dtype=float)
    if np.any(eq):
        multipliers[eq] = np.asarray(lp.eqlin.marginals, dtype=float)
    # in z: grad_u = scale * grad_z, so the bounds' multipliers divide by the scale; the rows' are the same
    lower = np.where(np.isfinite(nlp.lower), np.asarray(lp.lower.marginals, dtype=float) / scale, 0.0)
    upper = np.where(np.isfinite(nlp.upper), -np.asarray(lp.upper.marginals, dtype=float) / scale, 0.0)
    u = np.asarray(lp.x, dtype=float)
    return IpoptResult(u * scale, float(g @ u), multipliers, lower, upper, status, return_status, iterations,
                       seconds, solver="highs", vertex=True)


__all__ = ["STATUS_MAP", "linear_program", "solve"]
