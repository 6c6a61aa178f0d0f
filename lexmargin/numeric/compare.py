"""Comparisons of trained parameters with a solver certificate, on plain arrays.

They take directions, margins and Jacobians as arrays, so they work with a ``Certificate`` from
``lexmargin.problems.maxmargin`` (``Reference.from_certificate``) or with any reference computed elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls


def unit(v, axis=-1) -> np.ndarray:
    """v / ||v|| along ``axis`` (raises on a zero vector).

    Args:
        v: vectors.
        axis: the axis holding the vectors' entries.

    Returns:
        The unit vectors, same shape as ``v``.
    """
    v = np.asarray(v, dtype=float)
    norm = np.linalg.norm(v, axis=axis, keepdims=True)
    if np.any(norm == 0) or not np.all(np.isfinite(norm)):
        raise ValueError("cannot normalize a zero or non-finite vector")
    return v / norm


def angle(u, v) -> np.ndarray:
    """Angle in radians between u and v along the last axis (broadcasts, e.g. (R, P) against (P,)).

    Uses 2 asin(||u^ - v^|| / 2), accurate for tiny angles.

    Args:
        u: vectors (..., P).
        v: vectors (..., P), broadcast against ``u``.

    Returns:
        The angles (...,), in [0, pi].
    """
    u, v = unit(u), unit(v)
    if u.shape[-1] != v.shape[-1]:
        raise ValueError(f"directions have different lengths {u.shape[-1]} and {v.shape[-1]}")
    return 2 * np.arcsin(np.clip(np.linalg.norm(u - v, axis=-1) / 2, 0, 1))


def margin_ratio(normalized_margin, reference_margin) -> np.ndarray:
    """normalized margin / reference normalized margin (1 at the max-margin solution).

    Args:
        normalized_margin: normalized margins (any shape).
        reference_margin: the max-margin solution's normalized margin.

    Returns:
        The ratios, same shape as ``normalized_margin``.
    """
    ref = float(reference_margin)
    if not (np.isfinite(ref) and ref > 0):
        raise ValueError(f"reference normalized margin must be positive and finite; got {reference_margin}")
    return np.asarray(normalized_margin, dtype=float) / ref


@dataclass(frozen=True)
class Reference:
    """A target direction (unit, flat layout of the model) and its normalized margin."""

    direction: np.ndarray
    normalized_margin: float

    def __post_init__(self):
        object.__setattr__(self, "direction", unit(np.asarray(self.direction, dtype=float).ravel()))
        margin_ratio(1.0, self.normalized_margin)

    @classmethod
    def from_certificate(cls, certificate) -> Reference:
        """From a ``lexmargin`` Certificate (anything with ``theta`` and ``normalized_margin``)."""
        return cls(np.asarray(certificate.theta, dtype=float), float(certificate.normalized_margin))

    def to_dict(self) -> dict:
        return {"direction": self.direction.tolist(), "normalized_margin": self.normalized_margin}


@dataclass(frozen=True)
class Multipliers:
    """KKT multipliers of  min ||theta||^2 / 2  s.t.  f_n >= 1  fitted by NNLS on the near-support set."""

    multipliers: np.ndarray      # (N,), zero off the support
    support: np.ndarray          # indices of the near-support samples
    residual: float              # ||J_S^T lam - theta_hat|| / ||theta_hat||

    def to_dict(self) -> dict:
        return {"multipliers": self.multipliers.tolist(), "support": self.support.tolist(),
                "residual": self.residual}


def nnls_multipliers(theta, margins, jacobian, degree: float = 1.0, rtol: float = 1e-2) -> Multipliers:
    """Multipliers lam >= 0 with theta_hat ~= sum_{n in S} lam_n grad f_n(theta_hat).

    theta_hat is theta rescaled to minimum margin 1 (homogeneous of ``degree``); the near-support set S
    holds the samples with f_n <= (1 + rtol) min f.  ``jacobian`` (N, P) is taken at theta and rescaled
    (grad f_n is (degree - 1)-homogeneous).  A small residual certifies the KKT stationarity condition.

    Args:
        theta: the parameters (P,).
        margins: f_n(theta) (N,).
        jacobian: grad f_n(theta) (N, P).
        degree: the model's homogeneity degree.
        rtol: relative width of the near-support set.

    Returns:
        Multipliers: the near-support samples, their multipliers and the relative stationarity residual.
    """
    theta = np.asarray(theta, dtype=float).ravel()
    f = np.asarray(margins, dtype=float).ravel()
    J = np.asarray(jacobian, dtype=float)
    if J.shape != (f.size, theta.size):
        raise ValueError(f"jacobian must have shape {(f.size, theta.size)}; got {J.shape}")
    fmin = float(np.min(f))
    if not fmin > 0:
        raise ValueError(f"theta does not separate the data (min margin {fmin:g}): no multipliers")
    rho = fmin ** (-1.0 / degree)
    theta_hat, J_hat = rho * theta, J * rho ** (degree - 1)
    support = np.nonzero(f <= (1 + rtol) * fmin)[0]
    lam_s, res = nnls(J_hat[support].T, theta_hat)
    lam = np.zeros(f.size)
    lam[support] = lam_s
    return Multipliers(lam, support, float(res / np.linalg.norm(theta_hat)))


__all__ = ["Multipliers", "Reference", "angle", "margin_ratio", "nnls_multipliers", "unit"]
