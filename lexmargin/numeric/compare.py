"""Comparisons of trained parameters with a solver certificate, on plain arrays.

They take directions, margins and Jacobians as arrays, so they work with a ``Certificate`` from
``lexmargin.problems.maxmargin`` (``Reference.from_certificate``) or with any reference computed elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


# the norms a Reference may be measured in, as exponents p of ||theta||_p
_NORM_P = {"l2": 2.0, "l1": 1.0, "linf": np.inf}


@dataclass(frozen=True)
class Reference:
    """A target direction (unit, flat layout of the model) and its normalized margin.

    ``norm`` ("l2", "l1", "linf", "lp" with ``p``): the norm the normalized margin min_n f_n / ||theta||^degree
    is measured in (a certificate of ``max_margin(..., norm=...)``); the trainer's margin ratios use it.
    """

    direction: np.ndarray
    normalized_margin: float
    norm: str = "l2"
    p: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "direction", unit(np.asarray(self.direction, dtype=float).ravel()))
        margin_ratio(1.0, self.normalized_margin)
        if self.norm not in (*_NORM_P, "lp"):
            raise ValueError(f"norm must be one of {(*_NORM_P, 'lp')}; got {self.norm!r}")
        if (self.norm == "lp") != (self.p is not None) or (self.p is not None and not 1 < float(self.p) < np.inf):
            raise ValueError(f"p (a finite number > 1) goes with norm 'lp' only; got norm {self.norm!r}, p {self.p!r}")
        if self.p is not None:
            object.__setattr__(self, "p", float(self.p))

    @property
    def exponent(self) -> float:
        """p of the reference's norm ||.||_p."""
        if self.norm == "lp" and self.p is not None:
            return self.p
        return _NORM_P[self.norm]

    def normalized_margins(self, theta, margins, degree) -> np.ndarray:
        """min_n f_n / ||theta_r||^degree per run, in the reference's norm (NaN without a degree).

        Args:
            theta: parameters (R, P).
            margins: f (R, N).
            degree: the model's homogeneity degree (None: not homogeneous).

        Returns:
            The normalized margins (R,).
        """
        from .geometry import lp_norm

        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        if degree is None:
            return np.full(theta.shape[0], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.min(np.atleast_2d(margins), axis=1) / lp_norm(theta, self.exponent) ** degree

    @classmethod
    def from_certificate(cls, certificate) -> Reference:
        """From a ``lexmargin`` Certificate (anything with ``theta`` and ``normalized_margin``; its ``norm``
        label "l2", "l1", "linf" or "l<p>" is kept, so margin ratios are measured in the certificate's norm)."""
        label = str(getattr(certificate, "norm", "l2") or "l2")
        norm, p = (label, None) if label in _NORM_P else ("lp", float(label[1:]))
        return cls(np.asarray(certificate.theta, dtype=float), float(certificate.normalized_margin), norm, p)

    def to_dict(self) -> dict:
        out = {"direction": self.direction.tolist(), "normalized_margin": self.normalized_margin}
        if self.norm != "l2":                 # l2 references keep the older form (checkpoints stay comparable)
            out |= {"norm": self.norm, "p": self.p}
        return out


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
    if not rtol >= 0:      # the near-support set then holds the smallest margin at least: scipy's nnls aborts the
        raise ValueError(f"rtol must be >= 0; got {rtol}")       # interpreter on a matrix without columns
    if theta.size == 0:    # ... and returns uninitialized memory for one without rows
        raise ValueError("theta has no parameters: no multipliers")
    fmin = float(np.min(f))
    if not fmin > 0:
        raise ValueError(f"theta does not separate the data (min margin {fmin:g}): no multipliers")
    rho = fmin ** (-1.0 / degree)
    theta_hat, J_hat = rho * theta, J * rho ** (degree - 1)
    support = np.nonzero(f <= (1 + rtol) * fmin)[0]
    from ..nlp.nnls import nnls     # scipy's, with its answer checked (a suboptimal point and a residual not its own)

    lam_s, res = nnls(J_hat[support].T, theta_hat)
    lam = np.zeros(f.size)
    lam[support] = lam_s
    return Multipliers(lam, support, float(res / np.linalg.norm(theta_hat)))


__all__ = ["Multipliers", "Reference", "angle", "margin_ratio", "nnls_multipliers", "unit"]
