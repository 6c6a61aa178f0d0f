"""Proofs that data is not separable by a model linear in theta (Farkas' lemma).

A theta with A theta + c >= 1 exists unless some y >= 0 has A^T y = 0 and y.(1 - c) > 0 (Farkas).
Such a y is found by an LP (HiGHS) and then re-solved exactly on its support, and it is checked in
numpy: with r = A^T y computed by exactly rounded sums, any theta with A theta + c >= 1 satisfies
r.theta >= y.(1 - c), hence ||theta||_1 >= y.(1 - c) / ||r||_inf.  The proof is accepted when r is at
the level of the rounding of the data (relative residual <= PROOF_TOL * N * eps): then no separating
theta is representable in double precision, and typically r = 0 exactly.  Otherwise the data may be
separable (with a huge ||theta||) and no ``NotSeparableError`` is raised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

PROOF_TOL = 8.0
EPS = np.finfo(float).eps


@dataclass(frozen=True, eq=False)
class FarkasProof:
    """y >= 0 (sum 1) with A^T y = 0 to rounding and y.(1 - c) > 0: no theta has A theta + c >= 1.

    relative_residual: ||A^T y||_inf / max_j sum_n |A_nj| y_n.  norm_bound: any theta with
    A theta + c >= 1 has ||theta||_1 >= norm_bound (inf when A^T y = 0 exactly).
    """

    weights: np.ndarray
    relative_residual: float
    value: float
    norm_bound: float

    def __post_init__(self):
        weights = np.array(self.weights, dtype=float)
        weights.setflags(write=False)
        object.__setattr__(self, "weights", weights)

    def to_dict(self) -> dict:
        return {"weights": self.weights.tolist(), "relative_residual": self.relative_residual,
                "value": self.value, "norm_bound": self.norm_bound if math.isfinite(self.norm_bound) else "inf"}

    @classmethod
    def from_dict(cls, d: dict) -> FarkasProof:
        return cls(np.asarray(d["weights"], dtype=float), float(d["relative_residual"]), float(d["value"]),
                   float(d["norm_bound"]))


def exact_residual(A, y) -> np.ndarray:
    """A^T y with every column sum exactly rounded (math.fsum over the rounded products)."""
    products = np.asarray(A, dtype=float) * np.asarray(y, dtype=float)[:, None]
    return np.array([math.fsum(col) for col in products.T])


def _lp_weights(A, c) -> np.ndarray | None:
    n = A.shape[0]
    equality = np.vstack([A.T, np.ones((1, n))])
    target = np.append(np.zeros(A.shape[1]), 1.0)
    lp = linprog(-(1.0 - c), A_eq=equality, b_eq=target, bounds=(0, None), method="highs")
    if lp.status != 0 or -lp.fun <= 0:
        return None
    return lp.x


def _refine(A, y) -> np.ndarray:
    """Re-solve A_T^T y_T = 0, sum y_T = 1 on the support T of y (least squares: a vertex is exact)."""
    support = np.nonzero(y > 1e-12 * np.max(y))[0]
    M = np.vstack([A[support].T, np.ones((1, support.size))])
    rhs = np.append(np.zeros(A.shape[1]), 1.0)
    refined = np.zeros_like(y)
    refined[support] = np.linalg.lstsq(M, rhs, rcond=None)[0]
    return refined if np.all(refined >= 0) else y


def verify(A, c, y) -> FarkasProof | None:
    """The proof carried by weights y, or None when y proves nothing at double precision."""
    y = np.maximum(np.asarray(y, dtype=float), 0.0)
    if not np.any(y):
        return None
    y = y / math.fsum(y)
    value = math.fsum(y * (1.0 - c))
    r = exact_residual(A, y)
    size = max(float(np.max(np.abs(A).T @ y, initial=0.0)), np.finfo(float).tiny)
    relative = float(np.max(np.abs(r), initial=0.0)) / size
    if value <= 0 or relative > PROOF_TOL * A.shape[0] * EPS:
        return None
    top = float(np.max(np.abs(r), initial=0.0))
    return FarkasProof(y, relative, value, value / top if top > 0 else float("inf"))


def farkas_proof(A, c) -> FarkasProof | None:
    """A verified Farkas certificate that A theta + c >= 1 has no solution, or None.

    Rows are scaled by powers of two first (exact), so the LP sees unit-size rows at any data scale.
    """
    A, c = np.asarray(A, dtype=float), np.asarray(c, dtype=float)
    row = np.max(np.abs(A), axis=1)
    exponents = np.array([math.frexp(v)[1] if v > 0 and math.isfinite(v) else 0 for v in row])
    As, cs = np.ldexp(A, -exponents[:, None]), np.ldexp(c - 1.0, -exponents) + 1.0
    y = _lp_weights(As, cs)
    if y is None:
        return None
    proof = verify(As, cs, _refine(As, y))
    if proof is None:
        return None
    weights = np.ldexp(proof.weights, -exponents)     # y_n / 2^e_n: the same proof for the unscaled rows
    return verify(A, c, weights) or FarkasProof(weights / weights.sum(), proof.relative_residual, proof.value,
                                                proof.norm_bound)
