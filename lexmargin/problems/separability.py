"""Proofs that data is not separable by a model linear in theta (Farkas' lemma).

A theta with A theta + c >= 1 exists unless some y >= 0 has A^T y = 0 and y.(1 - c) > 0 (Farkas).  Each
row a_n is scaled by a power of two to unit size (exact; a sample that is tiny, huge or of subnormal
size is then as well-posed as any other), then each column of the result (exact as well, and A^T y = 0
holds column by column, so the weights are those of the user's rows: a feature in tiny units weighs like
any other), and y is found by an LP (HiGHS) on  A'^T y' = 0, sum y' = 1, y' >= 0  (a pure feasibility
problem when every 1 - c_n > 0, as for every homogeneous model; otherwise maximizing y.(1 - c) with
weights normalized in log space), re-solved exactly on its support, mapped back to the user's rows
without overflow and checked in numpy: with r = A^T y computed by exactly rounded sums, any theta with
A theta + c >= 1 satisfies r.theta >= y.(1 - c), hence ||theta||_1 >= y.(1 - c) / ||r||_inf.  The proof is
accepted when r, measured on the rows and columns scaled to unit size, is at the rounding level of the
data (relative residual <= PROOF_TOL * N * eps): then every separating theta, measured in the scaled
columns' units, has an l1 norm at least 1 / (PROOF_TOL N eps) times the scaled rows' y.(1 - c) (margins
of 1 made by cancelling terms beyond double precision), and typically r = 0 exactly.  Otherwise the
data may be separable (with a huge ||theta||) and no ``NotSeparableError`` is raised.  (Measured on the
rows alone, the residual of a feature in tiny units vanished beside the other features' terms, and
separable data with features scaled by 1e8 and 1e-8 was "proved" inseparable.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

PROOF_TOL = 8.0
REFINE_STEPS = 2      # iterative refinement of a proof's weights on their support (``_refine``)
EPS = np.finfo(float).eps


@dataclass(frozen=True, eq=False)
class FarkasProof:
    """y >= 0 (sum 1) with A^T y = 0 to rounding and y.(1 - c) > 0: no theta has A theta + c >= 1.

    relative_residual: ||A^T y||_inf / max_j sum_n |A_nj| y_n, with the rows and columns of A scaled to unit size
    (``equilibrate``).  norm_bound: any theta with A theta + c >= 1 has ||theta||_1 >= norm_bound (inf when
    A^T y = 0 exactly).
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


def row_exponents(A) -> np.ndarray:
    """e_n with max_j |A_nj| / 2^e_n in [1/2, 1) (math.frexp gives 0 for a zero or non-finite row)."""
    size = np.max(np.abs(A), axis=1, initial=0.0)
    return np.array([math.frexp(v)[1] for v in size], dtype=int)


def equilibrate(A) -> tuple[np.ndarray, np.ndarray]:
    """(A with each row, then each column, scaled by a power of two to unit size; the rows' exponents e): exact,
    and y >= 0 with A^T y = 0 maps to the scaled rows as y_n 2^e_n (the columns' scales change no weight)."""
    e = row_exponents(A)
    rows = np.ldexp(A, -e[:, None])
    return np.ldexp(rows, -row_exponents(rows.T)[None, :]), e


def _objective(b, e) -> np.ndarray:
    """Weights of y.(1 - c) in the scaled variables, b_n 2^-e_n, normalized to max 1 in log space (no
    overflow); zero when every b_n > 0 (then any y >= 0 with A^T y = 0 is a proof: a feasibility LP)."""
    if np.all(b > 0):
        return np.zeros(b.size)
    with np.errstate(divide="ignore"):
        logs = np.log2(np.abs(b)) - e
    top = np.max(logs[np.isfinite(logs)], initial=0.0)
    return np.sign(b) * np.exp2(np.where(np.isfinite(logs), logs - top, -np.inf))


def _lp_weights(A, weights) -> np.ndarray | None:
    """y >= 0, sum y = 1, A^T y = 0 maximizing weights.y (HiGHS), or None."""
    n = A.shape[0]
    equality = np.vstack([A.T, np.ones((1, n))])
    target = np.append(np.zeros(A.shape[1]), 1.0)
    lp = linprog(-weights, A_eq=equality, b_eq=target, bounds=(0, None), method="highs")
    return lp.x if lp.status == 0 else None


def _refine(A, y) -> np.ndarray:
    """Re-solve A_T^T y_T = 0, sum y_T = 1 on the support T of y: least squares, then ``REFINE_STEPS`` steps of
    iterative refinement against the exactly rounded residual (``exact_residual``), so a vertex whose weights are
    doubles comes out exact whatever the rounding of the LAPACK in use (an SVD's weights 0.5 + 2e-16, 0.5 - 2e-16
    on one CPU, 0.5, 0.5 on another)."""
    support = np.nonzero(y > 1e-12 * np.max(y))[0]
    M = np.vstack([A[support].T, np.ones((1, support.size))])
    rhs = np.append(np.zeros(A.shape[1]), 1.0)
    solution = np.linalg.lstsq(M, rhs, rcond=None)[0]
    residual = exact_residual(M.T, solution) - rhs
    for _ in range(REFINE_STEPS):
        if not np.any(residual):
            break
        step = solution - np.linalg.lstsq(M, residual, rcond=None)[0]
        after = exact_residual(M.T, step) - rhs
        if np.max(np.abs(after)) >= np.max(np.abs(residual)):
            break
        solution, residual = step, after
    refined = np.zeros_like(y)
    refined[support] = solution
    return refined if np.all(refined >= 0) else y


def relative_residual(A, y) -> float:
    """||A^T y||_inf (exactly rounded sums) relative to max_j sum_n |A_nj| y_n."""
    r = exact_residual(A, y)
    size = max(float(np.max(np.abs(A).T @ y, initial=0.0)), np.finfo(float).tiny)
    return float(np.max(np.abs(r), initial=0.0)) / size


def user_weights(y_scaled, exponents) -> np.ndarray:
    """y_n = y'_n 2^-e_n normalized to sum 1 without overflow (log space first).  With -e it maps the
    other way: user weights to the weights of the rows scaled to unit size."""
    y_scaled = np.maximum(np.asarray(y_scaled, dtype=float), 0.0)
    positive = y_scaled > 0     # zeros keep log -inf and weight 0 (quietly, without log2(0) warnings)
    logs = np.full(y_scaled.size, -np.inf)
    logs[positive] = np.log2(y_scaled[positive]) - exponents[positive]
    shift = int(np.ceil(np.max(logs)))
    y = np.where(positive, np.ldexp(y_scaled, -np.asarray(exponents) - shift), 0.0)
    return y / math.fsum(y)


def verify(A, c, y) -> FarkasProof | None:
    """The proof carried by weights y >= 0 (any positive scale) for A theta + c >= 1, or None when it proves
    nothing at double precision: A^T y must vanish at the rounding level of the rows and columns scaled to
    unit size (``equilibrate``: with the matching weights, each column's residual is the user's times a power
    of two), and y.(1 - c) > 0."""
    A, c = np.asarray(A, dtype=float), np.asarray(c, dtype=float)
    y = np.maximum(np.asarray(y, dtype=float), 0.0)
    if not np.any(y) or not np.all(np.isfinite(y)):
        return None
    y = y / math.fsum(y)
    scaled, e = equilibrate(A)
    relative = relative_residual(scaled, user_weights(y, -e))
    value = math.fsum(y * (1.0 - c))
    if value <= 0 or relative > PROOF_TOL * A.shape[0] * EPS:
        return None
    top = float(np.max(np.abs(exact_residual(A, y)), initial=0.0))
    return FarkasProof(y, relative, value, value / top if top > 0 else float("inf"))


def farkas_proof(A, c) -> FarkasProof | None:
    """A verified Farkas certificate that A theta + c >= 1 has no solution, or None.

    The rows, then the columns, are scaled by powers of two to unit size (``equilibrate``; exact): the LP and
    the rounding-level test see rows and columns of one size whatever the data's scale (tiny, huge or
    subnormal samples, features in any units).
    """
    A, c = np.asarray(A, dtype=float), np.asarray(c, dtype=float)
    scaled, e = equilibrate(A)
    y = _lp_weights(scaled, _objective(1.0 - c, e))
    if y is None:
        return None
    return verify(A, c, user_weights(_refine(scaled, y), e))
