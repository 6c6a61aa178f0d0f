"""Parameter norms for the margin problems, as smooth IPOPT formulations and as numpy subgradients.

Each norm maps a decision vector z to theta and an objective:
  l2:   z = theta,            objective ||theta||_2^2
  l1:   z = [u; v] >= 0,      theta = u - v, objective sum(u + v)            (= ||theta||_1)
  linf: z = [theta; t],       -t <= theta_i <= t, objective t                (= ||theta||_inf)
  lp:   z = [u; v] >= 0,      theta = u - v, objective sum(u^p + v^p)        (= ||theta||_p^p)
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from .errors import LexmarginError

NORMS = ("l2", "l1", "linf", "lp")


@dataclass(frozen=True)
class Norm:
    name: str
    p: float | None = None

    def __post_init__(self):
        if self.name not in NORMS:
            raise LexmarginError(f"unknown norm {self.name!r}; choose one of {NORMS}")
        if self.name == "lp" and (self.p is None or not np.isfinite(self.p) or self.p <= 1):
            raise LexmarginError(f"norm 'lp' needs a finite p > 1; got p={self.p}")

    @property
    def label(self) -> str:
        return f"l{self.p:g}" if self.name == "lp" else self.name

    @property
    def objective_label(self) -> str:
        if self.name == "lp":
            return f"||theta||_{self.p:g}^{self.p:g}"
        return {"l2": "||theta||_2^2", "l1": "||theta||_1", "linf": "||theta||_inf"}[self.name]

    @property
    def is_quadratic_or_linear(self) -> bool:
        return self.name in ("l2", "l1", "linf")

    # ---- IPOPT formulation ----------------------------------------------------------------------
    def n_decision(self, n_params: int) -> int:
        return n_params + (n_params if self.name in ("l1", "lp") else 1 if self.name == "linf" else 0)

    def theta_of(self, z, n_params: int):
        if self.name in ("l1", "lp"):
            return z[:n_params] - z[n_params:]
        return z[:n_params]

    def objective_of(self, z, n_params: int):
        if self.name == "l2":
            return ca.dot(z, z)
        if self.name == "l1":
            return ca.sum1(z)
        if self.name == "linf":
            return z[n_params]
        return ca.sum1(z ** self.p)

    def extra_constraints(self, z, n_params: int):
        """Constraints >= 0 beyond the margins (linf box)."""
        if self.name != "linf":
            return None
        theta, t = z[:n_params], z[n_params]
        return ca.vertcat(t - theta, t + theta)

    def bounds(self, n_params: int) -> tuple[np.ndarray, np.ndarray]:
        n = self.n_decision(n_params)
        lower = np.zeros(n) if self.name in ("l1", "lp") else np.full(n, -np.inf)
        if self.name == "linf":
            lower[n_params] = 0.0
        return lower, np.full(n, np.inf)

    def decision_from_theta(self, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        if self.name in ("l1", "lp"):
            return np.concatenate([np.maximum(theta, 0), np.maximum(-theta, 0)]) + 1e-3
        if self.name == "linf":
            return np.append(theta, np.max(np.abs(theta)) + 1e-3)
        return theta

    # ---- numpy ----------------------------------------------------------------------------------
    def value(self, theta) -> float:
        theta = np.asarray(theta, dtype=float)
        if self.name == "l2":
            return float(np.linalg.norm(theta))
        if self.name == "l1":
            return float(np.sum(np.abs(theta)))
        if self.name == "linf":
            return float(np.max(np.abs(theta)))
        return float(np.sum(np.abs(theta) ** self.p) ** (1.0 / self.p))

    def objective_value(self, theta) -> float:
        v = self.value(theta)
        return v * v if self.name == "l2" else v ** self.p if self.name == "lp" else v

    def closest_subgradient(self, theta, g, zero_tol: float = 1e-9) -> np.ndarray:
        """A (sub)gradient s of the objective at theta, chosen close to g.

        Stationarity is certified by ||s - g|| small for g = J^T lambda: any subgradient near g
        bounds the distance from g to the subdifferential.
        """
        theta = np.asarray(theta, dtype=float)
        g = np.asarray(g, dtype=float)
        if self.name == "l2":
            return 2.0 * theta
        if self.name == "lp":
            return self.p * np.sign(theta) * np.abs(theta) ** (self.p - 1)
        scale = max(float(np.max(np.abs(theta))), 1e-300)
        if self.name == "l1":
            nonzero = np.abs(theta) > zero_tol * scale
            return np.where(nonzero, np.sign(theta), np.clip(g, -1.0, 1.0))
        return _linf_subgradient(theta, g, zero_tol * scale)


def _linf_subgradient(theta, g, tol) -> np.ndarray:
    top = np.max(np.abs(theta))
    on_max = np.abs(theta) >= top - tol
    signs = np.sign(theta)
    weights = np.where(on_max, np.maximum(signs * g, 0.0), 0.0)
    total = weights.sum()
    weights = weights / total if total > 0 else on_max / on_max.sum()
    return signs * weights
