"""How close is a parameter vector to a KKT point of the max-margin problem?

Convention (Lyu & Li 2020): for a model homogeneous of degree alpha the point is rescaled to
theta_hat = theta / q_min^(1/alpha), q_min = min_n f_n(theta), so that min_n f_n(theta_hat) = 1, and
tested as a KKT point of

    min 1/2 ||theta||^2   s.t.   f_n(theta) >= 1,     i.e.   theta_hat = sum_n lambda_n grad f_n(theta_hat).

The multipliers lambda >= 0 are the non-negative least-squares fit on the near-support set
S = {n : f_n(theta_hat) <= 1 + support_tol} (default 0.1: gradient-descent iterates approach
the max-margin solution only like 1/log t, so their support margins differ by a few percent;
pass a smaller tolerance for solver output).  (eps, delta)-KKT numbers: eps = ||theta_hat - J_S^T lambda||_2,
delta = sum_n lambda_n (f_n(theta_hat) - 1).  A solver certificate for min ||theta||^2 (no 1/2) has
multipliers twice as large; the comparison detects and undoes that factor.

For a model that is not homogeneous theta is not rescaled and the constraint level is q_min itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from ..nlp.certify import LICQ, licq

CONVENTION = ("theta_hat = theta / q_min^(1/alpha); KKT of min 1/2||theta||^2 s.t. f_n >= 1: "
              "theta_hat = sum_n lambda_n grad f_n(theta_hat), lambda >= 0 by NNLS on the near-support set")


@dataclass(frozen=True)
class KKTNumbers:
    """(eps, delta)-KKT numbers of Lyu & Li (2020) plus complementarity and feasibility."""

    epsilon: float
    relative_epsilon: float
    delta: float
    complementarity: float
    primal_violation: float

    def to_dict(self) -> dict:
        return {k: float(getattr(self, k)) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Stationarity:
    """Raw numbers at one point (no certificate, no trajectory)."""

    scale: float
    constraint_level: float
    margins: np.ndarray
    normalized_margin: float | None
    support: np.ndarray
    multipliers: np.ndarray
    kkt: KKTNumbers
    licq: LICQ
    alignment: float


def angle_between(a, b) -> float:
    """Angle in radians between two vectors, accurate for tiny angles."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    ua, ub = a / na, b / nb
    return float(2.0 * np.arctan2(np.linalg.norm(ua - ub), np.linalg.norm(ua + ub)))


def loss_gradient_alignment(model, theta, data) -> float:
    """cos of the angle between -grad L(theta) and theta for L = sum_n exp(-f_n) (Theorem 3)."""
    f = model.margins(theta, data)
    weights = np.exp(-(f - np.min(f)))  # a positive rescaling of exp(-f_n): the cosine is unchanged
    direction = model.margin_jacobian(theta, data).T @ weights
    return float(np.cos(angle_between(direction, theta)))


def rescale(model, theta, data) -> tuple[np.ndarray, float, float]:
    """theta_hat, the scale theta / theta_hat, and the constraint level (see module docstring)."""
    theta = np.asarray(theta, dtype=float)
    q_min = float(np.min(model.margins(theta, data)))
    if model.degree is None:
        return theta, 1.0, q_min
    if q_min <= 0:  # misclassified: no rescaling reaches margin 1; the violation is reported
        return theta, 1.0, 1.0
    scale = q_min ** (1.0 / model.degree)
    return theta / scale, scale, 1.0


def near_support(margins, level: float, support_tol: float) -> np.ndarray:
    """Indices with f_n <= level + support_tol * max(1, |level|)."""
    return np.nonzero(margins <= level + support_tol * max(1.0, abs(level)))[0]


def fit_multipliers(jacobian, theta_hat, support, n_samples: int) -> tuple[np.ndarray, float]:
    """NNLS fit of theta_hat = J_S^T lambda; returns lambda on all samples (zero off S) and the residual."""
    lam = np.zeros(n_samples)
    if support.size == 0:
        return lam, float(np.linalg.norm(theta_hat))
    coef, residual = nnls(jacobian[support].T, theta_hat, maxiter=50 * max(support.size, 10))
    lam[support] = coef
    return lam, float(residual)


def kkt_numbers(theta_hat, margins, multipliers, residual: float, level: float) -> KKTNumbers:
    slack = margins - level
    norm = float(np.linalg.norm(theta_hat))
    return KKTNumbers(
        epsilon=residual,
        relative_epsilon=residual / norm if norm > 0 else float("inf"),
        delta=float(np.sum(multipliers * slack)),
        complementarity=float(np.max(np.abs(multipliers * slack))) if slack.size else 0.0,
        primal_violation=max(0.0, -float(np.min(slack))) if slack.size else 0.0,
    )


def normalized_margin_or_none(model, theta, data) -> float | None:
    if model.degree is None or not np.any(theta):
        return None
    return float(model.normalized_margin(theta, data))


def stationarity(model, theta, data, support_tol: float = 0.1) -> Stationarity:
    """All pointwise numbers of the stationarity report."""
    theta = np.asarray(theta, dtype=float).reshape(-1)
    theta_hat, scale, level = rescale(model, theta, data)
    margins = model.margins(theta_hat, data)
    jacobian = model.margin_jacobian(theta_hat, data)
    support = near_support(margins, level, support_tol)
    lam, residual = fit_multipliers(jacobian, theta_hat, support, data.n_samples)
    return Stationarity(
        scale=scale, constraint_level=level, margins=margins,
        normalized_margin=normalized_margin_or_none(model, theta, data),
        support=support, multipliers=lam,
        kkt=kkt_numbers(theta_hat, margins, lam, residual, level),
        licq=licq(jacobian[support]), alignment=loss_gradient_alignment(model, theta, data))
