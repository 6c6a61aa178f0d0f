"""Certificates: KKT residuals and LICQ recomputed in numpy from the model's own gradients.

Nothing here reads IPOPT's internal residuals: given a candidate point, its multipliers and the
model's constraint values and gradients, every number is recomputed independently.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

import numpy as np


@dataclass(frozen=True)
class KKTResiduals:
    """Residuals of  min obj  s.t.  c_i(theta) >= 0 (multipliers lam_i >= 0),  h_j(theta) = 0."""

    stationarity: float
    primal_feasibility: float
    dual_feasibility: float
    complementarity: float

    @property
    def max(self) -> float:
        return max(self.stationarity, self.primal_feasibility, self.dual_feasibility, self.complementarity)

    def to_dict(self) -> dict:
        return {**asdict(self), "max": self.max}


@dataclass(frozen=True)
class LICQ:
    """Linear independence of the active constraint gradients."""

    n_active: int
    rank: int
    smallest_singular_value: float
    holds: bool

    def to_dict(self) -> dict:
        return asdict(self)


def kkt_residuals(objective_gradient, ineq_jacobian, ineq_values, ineq_multipliers,
                  eq_jacobian=None, eq_values=None, eq_multipliers=None, stationarity_scale: float = 1.0
                  ) -> KKTResiduals:
    """KKT residuals (infinity norms) for  min obj  s.t.  c(theta) >= 0,  h(theta) = 0.

    Stationarity: grad obj - J_c^T lam - J_h^T mu = 0.  ``stationarity_scale`` divides the stationarity
    residual (e.g. by max(1, ||grad obj||) for a relative measure).
    """
    grad = np.asarray(objective_gradient, dtype=float)
    lam = np.asarray(ineq_multipliers, dtype=float)
    c = np.asarray(ineq_values, dtype=float)
    resid = grad - np.asarray(ineq_jacobian, dtype=float).T @ lam
    if eq_jacobian is not None and np.size(eq_multipliers):
        resid = resid - np.asarray(eq_jacobian, dtype=float).T @ np.asarray(eq_multipliers, dtype=float)
    primal = max(0.0, -float(np.min(c))) if c.size else 0.0
    if eq_values is not None and np.size(eq_values):
        primal = max(primal, float(np.max(np.abs(eq_values))))
    return KKTResiduals(
        stationarity=float(np.max(np.abs(resid))) / stationarity_scale if resid.size else 0.0,
        primal_feasibility=primal,
        dual_feasibility=max(0.0, -float(np.min(lam))) if lam.size else 0.0,
        complementarity=float(np.max(np.abs(lam * c))) if lam.size else 0.0,
    )


def licq(active_jacobian, rtol: float = 1e-9) -> LICQ:
    """Rank and smallest singular value of the active gradients (rows)."""
    J = np.atleast_2d(np.asarray(active_jacobian, dtype=float))
    if J.size == 0 or J.shape[0] == 0:
        return LICQ(0, 0, float("inf"), True)
    s = np.linalg.svd(J, compute_uv=False)
    rank = int(np.sum(s > rtol * max(1.0, s[0])))
    smallest = float(s[-1]) if J.shape[0] <= J.shape[1] else 0.0
    return LICQ(J.shape[0], rank, smallest, rank == J.shape[0])


def support_set(multipliers, slacks, *, multiplier_tol: float = 1e-9, slack_tol: float = 1e-7) -> np.ndarray:
    """Indices with a positive multiplier (relative to the largest) and a (near-)active constraint."""
    lam = np.asarray(multipliers, dtype=float)
    scale = max(float(np.max(lam)) if lam.size else 0.0, 1e-300)
    active = (lam > multiplier_tol * scale) & (np.abs(np.asarray(slacks)) <= slack_tol * max(1.0, scale))
    return np.nonzero(active)[0]


def jsonable(value):
    """Plain JSON types: arrays to lists, numpy scalars to Python, non-finite floats to strings."""
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()] if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


@dataclass(frozen=True)
class SolverInfo:
    name: str
    status: str
    return_status: str
    iterations: int
    seconds: float
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Certificate:
    """Outcome of an exact solve, with independently recomputed optimality evidence.

    ``status``: "optimal", "acceptable", "infeasible", "max_iterations", "failed".
    ``multipliers`` are lambda_n >= 0 for the margin constraints f_n(theta) >= 1 (or the problem's
    own constraints, described in ``constraints``).
    """

    problem: str
    status: str
    theta: np.ndarray
    objective: float
    norm: str
    margins: np.ndarray
    normalized_margin: float | None
    multipliers: np.ndarray
    support: np.ndarray
    kkt: KKTResiduals
    licq: LICQ
    solver: SolverInfo
    constraints: str = "f_n(theta) >= 1"
    extras: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status in ("optimal", "acceptable")

    @property
    def direction(self) -> np.ndarray:
        n = np.linalg.norm(self.theta)
        return self.theta / n if n > 0 else self.theta

    def to_dict(self) -> dict:
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)} | {"success": self.success}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def summary(self) -> str:
        nm = "n/a" if self.normalized_margin is None else f"{self.normalized_margin:.6g}"
        return (f"{self.problem}: {self.status}; objective {self.objective:.10g}; normalized margin {nm}; "
                f"support {len(self.support)}; KKT max residual {self.kkt.max:.2e}; "
                f"LICQ rank {self.licq.rank}/{self.licq.n_active} (sigma_min {self.licq.smallest_singular_value:.2e}); "
                f"{self.solver.iterations} iterations in {self.solver.seconds:.3f}s")
