"""Comparison of a point with a solver certificate, and trajectory metrics over checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stationarity import angle_between, loss_gradient_alignment, margins_of, normalized_margin_or_none


@dataclass(frozen=True)
class CertificateComparison:
    """Angle to the certificate's direction, ratio of normalized margins, multiplier agreement.

    ``margin_vector_angle`` compares the margin vectors (f_n(theta))_n and (f_n(theta_cert))_n: unlike
    the parameter angle it is blind to parameter symmetries (hidden-unit permutations, rotations of
    deep linear layers, node rescalings), so it is the one to read for networks.

    ``multiplier_scale`` is the factor that maps the certificate's multipliers to this report's
    convention (0.5 for min ||theta||^2, 1 for min 1/2||theta||^2); None when unknown, in which case
    the multipliers are not compared.
    """

    certificate_problem: str
    certificate_status: str
    angle: float
    margin_vector_angle: float
    margin_ratio: float | None
    multiplier_scale: float | None
    multiplier_relative_error: float | None
    support_jaccard: float
    note: str = ""

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _objective_scale(certificate) -> float | None:
    norm2 = float(np.dot(certificate.theta, certificate.theta))
    if norm2 == 0 or certificate.norm != "l2":
        return None
    ratio = certificate.objective / norm2
    for factor, expected in ((0.5, 1.0), (1.0, 0.5)):
        if abs(ratio - expected) <= 1e-3 * expected:
            return factor
    return None


def _jaccard(a, b) -> float:
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return 1.0 if not (a | b) else len(a & b) / len(a | b)


def _multiplier_error(multipliers, certificate, scale) -> tuple[float | None, str]:
    cert = np.asarray(certificate.multipliers, dtype=float)
    if scale is None:
        return None, "certificate objective convention unknown (not l2 or not ||theta||^2): multipliers not compared"
    if cert.shape != multipliers.shape:
        return None, f"certificate has {cert.size} multipliers, data has {multipliers.size}: not compared"
    ref = scale * cert
    denom = max(float(np.linalg.norm(ref)), 1e-300)
    return float(np.linalg.norm(multipliers - ref) / denom), ""


def _margin_ratio(model, theta, certificate, data, kernel=None) -> float | None:
    ours = normalized_margin_or_none(model, theta, data, kernel)
    theirs = normalized_margin_or_none(model, certificate.theta, data, kernel) \
        if certificate.theta.size == theta.size else None
    if ours is None or not theirs:
        return None
    return ours / theirs


def compare_with_certificate(model, theta, data, multipliers, support, certificate,
                             kernel=None) -> CertificateComparison:
    """Compare a point and its multipliers with ``certificate`` (margins from ``kernel`` when given)."""
    scale = _objective_scale(certificate)
    error, note = _multiplier_error(multipliers, certificate, scale)
    same_size = certificate.theta.size == theta.size
    return CertificateComparison(
        certificate_problem=certificate.problem, certificate_status=certificate.status,
        angle=angle_between(theta, certificate.theta) if same_size else float("nan"),
        margin_vector_angle=angle_between(margins_of(model, theta, data, kernel),
                                          margins_of(model, certificate.theta, data, kernel))
        if same_size else float("nan"),
        margin_ratio=_margin_ratio(model, theta, certificate, data, kernel),
        multiplier_scale=scale, multiplier_relative_error=error,
        support_jaccard=_jaccard(support, certificate.support),
        note=note if same_size else "certificate theta has a different size: angle not computed")


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Per-checkpoint normalized margin (min margin when not homogeneous), angle and alignment."""

    iterations: np.ndarray
    margins: np.ndarray
    angles: np.ndarray
    alignment: np.ndarray
    reference: str
    margin_kind: str
    axis: str = "iteration"

    def to_dict(self) -> dict:
        return {"iterations": self.iterations.tolist(), "margins": self.margins.tolist(),
                "angles": self.angles.tolist(), "alignment": self.alignment.tolist(),
                "reference": self.reference, "margin_kind": self.margin_kind, "axis": self.axis}


def _margin_value(model, theta, data, kernel=None) -> float:
    nm = normalized_margin_or_none(model, theta, data, kernel)
    return nm if nm is not None else float(np.min(margins_of(model, theta, data, kernel)))


def trajectory(model, thetas, iterations, data, reference=None, progress: bool = False,
               axis: str = "iteration", kernel=None) -> Trajectory:
    """Metrics at each checkpoint; angles to ``reference`` (default: the last checkpoint); margins and
    alignment from ``kernel`` when given (one forward and one vjp per checkpoint).

    ``progress``: a bar over the checkpoints (``lexmargin.progress.bar``: only when stderr is a terminal).
    """
    from ..progress import bar

    ref = thetas[-1] if reference is None else np.asarray(reference, dtype=float)
    rows = []
    for theta in bar(thetas, wanted=progress, desc="checkpoints"):
        nonzero = bool(np.any(theta))
        rows.append((_margin_value(model, theta, data, kernel) if nonzero else float("nan"),
                     angle_between(theta, ref),
                     loss_gradient_alignment(model, theta, data, kernel) if nonzero else float("nan")))
    margins, angles, alignment = (np.array(c, dtype=float) for c in zip(*rows))
    return Trajectory(np.asarray(iterations, dtype=float), margins, angles, alignment,
                      "certificate" if reference is not None else "final checkpoint",
                      "normalized" if model.degree is not None else "minimum", axis)
