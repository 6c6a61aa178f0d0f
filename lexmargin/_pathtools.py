"""Shared pieces of the path, lexicographic and depth-sensitive solvers.

* ``Ball``: the unit ball ||theta|| <= 1 (l2, l1, linf) as smooth constraints c(theta, aux) >= 0,
  with a numpy Jacobian written out by hand;
* ``certify``: a ``Certificate`` whose KKT residuals and LICQ are recomputed in numpy from the
  problem's own gradients (built from ``model.margin_jacobian``), with IPOPT's multipliers only
  (sign flipped: lambda = -lam_g >= 0 for constraints c(z) >= 0);
* schedule validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import casadi as ca
import numpy as np

from .certificate import Certificate, SolverInfo, kkt_residuals, licq, support_set
from .errors import LexmarginError
from .ipopt import NLPResult

BALL_NORMS = ("l2", "l1", "linf")
ACTIVE_TOL = 1e-6
# IPOPT relaxes every bound by 1e-8 by default; exact bounds keep the certificates' primal residuals at
# the solver tolerance and let nearly-degenerate kept sets (lexicographic stages) stay feasible.
PATH_OPTIONS = {"ipopt.bound_relax_factor": 0.0, "ipopt.acceptable_iter": 4}


def solver_options(options) -> dict:
    return {**PATH_OPTIONS, **(options or {})}


def check_schedule(values, name: str, *, increasing: bool = True) -> np.ndarray:
    """A finite, positive, strictly monotone 1-D schedule (increasing, or decreasing if not ``increasing``)."""
    try:
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise LexmarginError(f"{name} schedule must be numeric: {exc}") from None
    if arr.size == 0:
        raise LexmarginError(f"{name} schedule is empty")
    if not np.all(np.isfinite(arr)):
        raise LexmarginError(f"{name} schedule contains non-finite values: {arr.tolist()}")
    if np.any(arr <= 0):
        raise LexmarginError(f"{name} schedule must be positive; got {arr[arr <= 0].tolist()}")
    steps = np.diff(arr) if increasing else -np.diff(arr)
    if np.any(steps <= 0):
        i = int(np.nonzero(steps <= 0)[0][0])
        order = "increasing" if increasing else "decreasing"
        raise LexmarginError(f"{name} schedule must be strictly {order}; entries {i} and {i + 1} are "
                             f"{arr[i]:g}, {arr[i + 1]:g}")
    return arr


def continuation(schedule, max_ratio: float):
    """Yield (value, reported): an increasing schedule with geometric substeps of ratio <= max_ratio
    inserted between its points (warm-start continuation; substeps are solved but not reported)."""
    if not (np.isfinite(max_ratio) and max_ratio > 1):
        raise LexmarginError(f"max_ratio must be a finite number > 1; got {max_ratio}")
    previous = None
    for value in schedule:
        if previous is not None:
            n = int(np.ceil(np.log(value / previous) / np.log(max_ratio) - 1e-12))
            for step in np.geomspace(previous, value, n + 1)[1:-1]:
                yield float(step), False
        yield float(value), True
        previous = value


def softmax(a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    e = np.exp(a - np.max(a))
    return e / np.sum(e)


def logsumexp(a) -> float:
    a = np.asarray(a, dtype=float)
    m = float(np.max(a))
    return m + float(np.log(np.sum(np.exp(a - m))))


def casadi_logsumexp(a: ca.SX) -> ca.SX:
    """log sum exp(a_i) = m + log sum exp(a_i - m) with m = max_i a_i: never overflows, and smooth (the
    max drops out of the value, gradient softmax(a) and Hessian exactly; only the rounding depends on m)."""
    m = ca.mmax(a)
    return m + ca.log(ca.sum1(ca.exp(a - m)))


@dataclass(frozen=True)
class Ball:
    """Unit ball ||theta|| <= 1 as constraints c >= 0 over (theta, aux)."""

    norm: str
    n_params: int

    def __post_init__(self):
        if self.norm not in BALL_NORMS:
            raise LexmarginError(f"unknown norm {self.norm!r}; choose one of {BALL_NORMS}")

    @property
    def n_aux(self) -> int:
        return self.n_params if self.norm == "l1" else 0

    @property
    def n_constraints(self) -> int:
        return {"l2": 1, "linf": 2 * self.n_params, "l1": 2 * self.n_params + 1}[self.norm]

    @property
    def label(self) -> str:
        return {"l2": "||theta||_2^2 <= 1", "l1": "||theta||_1 <= 1", "linf": "||theta||_inf <= 1"}[self.norm]

    def norm_of(self, theta) -> float:
        return float(np.linalg.norm(np.asarray(theta, dtype=float), {"l2": 2, "l1": 1, "linf": np.inf}[self.norm]))

    def normalize(self, theta) -> np.ndarray:
        n = self.norm_of(theta)
        if n == 0:
            raise LexmarginError("cannot normalize theta = 0")
        return np.asarray(theta, dtype=float) / n

    def expr(self, theta, aux) -> ca.SX:
        if self.norm == "l2":
            return 1 - ca.dot(theta, theta)
        if self.norm == "linf":
            return ca.vertcat(1 - theta, 1 + theta)
        return ca.vertcat(aux - theta, aux + theta, 1 - ca.sum1(aux))

    def values(self, theta, aux) -> np.ndarray:
        theta, aux = np.asarray(theta, dtype=float), np.asarray(aux, dtype=float)
        if self.norm == "l2":
            return np.array([1 - theta @ theta])
        if self.norm == "linf":
            return np.concatenate([1 - theta, 1 + theta])
        return np.concatenate([aux - theta, aux + theta, [1 - aux.sum()]])

    def jacobian(self, theta) -> np.ndarray:
        """d c / d (theta, aux), shape (n_constraints, n_params + n_aux)."""
        P = self.n_params
        if self.norm == "l2":
            return -2 * np.asarray(theta, dtype=float)[None, :]
        eye = np.eye(P)
        if self.norm == "linf":
            return np.vstack([-eye, eye])
        last = np.concatenate([np.zeros(P), -np.ones(P)])[None, :]
        return np.vstack([np.hstack([-eye, eye]), np.hstack([eye, eye]), last])

    def aux_start(self, theta) -> np.ndarray:
        """Feasible auxiliary start for theta strictly inside the ball."""
        if self.norm != "l1":
            return np.zeros(0)
        theta = np.asarray(theta, dtype=float)
        slack = max(0.0, 1 - np.abs(theta).sum()) / (2 * self.n_params)
        return np.abs(theta) + slack

    def interior_start(self, theta, shrink: float = 0.99) -> np.ndarray:
        """theta scaled into the ball's interior (a warm start IPOPT accepts without projection)."""
        theta = np.asarray(theta, dtype=float)
        n = self.norm_of(theta)
        return theta * (shrink / n) if n > shrink else theta


def random_start(model, ball: Ball, seed: int) -> np.ndarray:
    theta = model.random_params(seed=seed)
    return ball.interior_start(ball.normalize(theta))


def solver_info(result: NLPResult, message: str = "") -> SolverInfo:
    return SolverInfo("ipopt", result.status, result.return_status, result.iterations, result.seconds, message)


@dataclass(frozen=True)
class KKTData:
    """Gradients of  min obj(z)  s.t.  c(z) >= 0  (rows in ``equality_rows``: c(z) = 0), evaluated
    independently of IPOPT."""

    objective_gradient: np.ndarray
    jacobian: np.ndarray
    values: np.ndarray
    equality_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    def residuals(self, multipliers, stationarity_scale: float):
        eq = np.zeros(self.values.size, dtype=bool)
        eq[self.equality_rows] = True
        J = self.jacobian if self.jacobian.size else np.zeros((0, self.objective_gradient.size))
        return kkt_residuals(self.objective_gradient, J[~eq], self.values[~eq], multipliers[~eq],
                             eq_jacobian=J[eq], eq_values=self.values[eq], eq_multipliers=multipliers[eq],
                             stationarity_scale=stationarity_scale)

    def active(self, tol: float) -> np.ndarray:
        scale = max(1.0, float(np.max(np.abs(self.values)))) if self.values.size else 1.0
        active = self.values <= tol * scale
        active[self.equality_rows] = True
        return active


def certify(problem: str, result: NLPResult, kkt: KKTData, *, theta, objective: float, norm: str,
            margins, normalized_margin, margin_rows, constraints: str, extras: dict | None = None,
            message: str = "") -> Certificate:
    """Certificate with KKT residuals recomputed from ``kkt`` and multipliers -lam_g.

    ``margin_rows`` indexes the constraint rows reported as the margin multipliers/support.
    """
    lam = -np.asarray(result.lam_g, dtype=float)
    grad = kkt.objective_gradient
    scale = max(1.0, float(np.max(np.abs(grad))) if grad.size else 1.0)
    J = kkt.jacobian if kkt.jacobian.size else np.zeros((0, grad.size))
    residuals = kkt.residuals(lam, scale)
    active = kkt.active(ACTIVE_TOL)
    margin_rows = np.asarray(margin_rows, dtype=int)
    lam_margin = lam[margin_rows] if margin_rows.size else np.zeros(0)
    support = support_set(lam_margin, kkt.values[margin_rows], slack_tol=1e-6) if margin_rows.size else margin_rows
    extras = dict(extras or {})
    extras.setdefault("all_multipliers", lam)
    return Certificate(problem=problem, status=result.status, theta=np.asarray(theta, dtype=float),
                       objective=float(objective), norm=norm, margins=np.asarray(margins, dtype=float),
                       normalized_margin=normalized_margin, multipliers=lam_margin, support=support,
                       kkt=residuals, licq=licq(J[active]), solver=solver_info(result, message),
                       constraints=constraints, extras=extras)


def safe_normalized_margin(model, theta, data):
    if model.degree is None or not np.any(theta):
        return None
    return model.normalized_margin(theta, data)


def distance(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)))


def direction_distance(a, b) -> float:
    """Euclidean distance between the l2 directions a/||a|| and b/||b||."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise LexmarginError("direction of a zero vector is undefined")
    return float(np.linalg.norm(a / na - b / nb))
