"""Non-negative least squares from the Gram matrix: min_{lambda >= 0} ||v - A lambda||_2 given only
G = A^T A (k x k) and b = A^T v.

||v - A lambda||^2 = ||v||^2 - 2 b^T lambda + lambda^T G lambda, so the minimizer depends on A and v only
through (G, b).  ``gram_nnls`` is the active-set method of Lawson & Hanson (1974, ch. 23) written on
(G, b): the gradient is w = b - G lambda, the passive set P grows by argmax_{j not in P} w_j while that
is positive, and each passive solve G_PP s = b_P uses a Cholesky factor of G_PP that grows by one row
per added column,

    L_new = [[L, 0], [l^T, d]],   L l = G_Pj,   d^2 = G_jj - ||l||^2,

where d^2 is the squared distance of column j from the span of the passive columns.  A column with
d^2 <= ``dependence`` * G_jj (default 100 max(k, 10) eps: the resolution of a Gram matrix, whose entries
carry a relative rounding error ~ eps, is ~ sqrt(k eps) on distances) is numerically dependent on P and
is skipped for this step, as Lawson-Hanson skip a column whose Householder pivot vanishes; after
columns leave P the trailing block of the factor behind the first of them is refactored.  The passive
set starts from the positive part of the unconstrained solution when that is well posed (``_warm_start``:
one Cholesky factorization instead of k one-column steps for the usual near-support set).  Cost: O(k^2)
per added column, O((|P| - i)^3) per removal at position i; memory O(k^2).  On (A, v) with independent columns the minimizer is unique and this agrees
with ``scipy.optimize.nnls(A, v)`` up to rounding (cond(A)^2 eps relative).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular

EPS = np.finfo(float).eps


def gram_nnls(gram, rhs, maxiter: int | None = None, dependence: float | None = None) -> np.ndarray:
    """argmin_{lambda >= 0} lambda^T G lambda - 2 b^T lambda (NNLS of A lambda ~ v with G = A^T A, b = A^T v).

    Args:
        gram: G (k, k), symmetric positive semidefinite.
        rhs: b (k,).
        maxiter: most passive-set changes (default 50 max(k, 10), as the report's dense NNLS).
        dependence: relative squared distance below which a column counts as dependent on the passive
            columns (default 100 max(k, 10) eps).

    Returns:
        lambda (k,) >= 0.

    Raises:
        RuntimeError: maxiter passive-set changes without convergence.
    """
    G = np.asarray(gram, dtype=float)
    b = np.asarray(rhs, dtype=float).reshape(-1)
    k = b.size
    lam = np.zeros(k)
    if k == 0:
        return lam
    maxiter = 50 * max(k, 10) if maxiter is None else int(maxiter)
    dependence = 100.0 * max(k, 10) * EPS if dependence is None else float(dependence)
    state = _Passive(G, dependence)
    lam = _warm_start(state, b, lam, maxiter)
    for _ in range(maxiter):
        w = b - G @ lam
        if not _add_best(state, b, w, _gradient_tolerance(G, b, lam)):
            return lam
        lam = _passive_solve(state, b, lam, maxiter)
    raise RuntimeError("gram_nnls: maximum number of iterations reached")


def _gradient_tolerance(G, b, lam) -> float:
    """w_j below this is zero up to the rounding of b - G lambda."""
    scale = float(np.max(np.abs(b))) + float(np.max(np.abs(G))) * float(np.sum(np.abs(lam)))
    return 10.0 * max(G.shape[0], 10) * EPS * scale


class _Passive:
    """The passive set P (in insertion order) and the lower Cholesky factor L of G_PP, kept in the leading
    block of a (k, k) buffer (no copies as P grows)."""

    def __init__(self, G, dependence: float):
        self.G, self.dependence = G, dependence
        self.index: list[int] = []
        self.buffer = np.zeros_like(G)

    @property
    def L(self) -> np.ndarray:
        n = len(self.index)
        return self.buffer[:n, :n]

    def try_add(self, j: int) -> bool:
        """Append column j when it is independent of P (d^2 > dependence G_jj); False otherwise."""
        gjj = float(self.G[j, j])
        if gjj <= 0:
            return False
        l = solve_triangular(self.L, self.G[self.index, j], lower=True) if self.index else np.zeros(0)
        d2 = gjj - float(l @ l)
        if d2 <= self.dependence * gjj:
            return False
        n = len(self.index)
        self.buffer[n, :n], self.buffer[n, n] = l, np.sqrt(d2)
        self.index.append(j)
        return True

    def pop(self) -> None:
        """Undo the last ``try_add`` (the factor of the remaining columns is its leading block)."""
        self.index.pop()

    def start(self, index) -> bool:
        """P = ``index`` at once (one Cholesky factorization); False, leaving P empty, when G_PP is not
        numerically positive definite at the ``dependence`` level."""
        index = [int(j) for j in index]
        if not index:
            return False
        try:
            L = cholesky(self.G[np.ix_(index, index)], lower=True)
        except np.linalg.LinAlgError:
            return False
        if not np.all(np.diag(L) ** 2 > self.dependence * np.diag(self.G)[index]):
            return False
        n = len(index)
        self.buffer[:n, :n] = L
        self.index = index
        return True

    def keep(self, mask) -> None:
        """Keep the passive columns where ``mask`` (in insertion order).

        With i the first dropped position, rows after it keep their first i columns and the trailing block
        is refactored: G_kept = L_kept L_kept^T gives L22 L22^T = C C^T with C the kept rows' columns i:n.
        """
        mask = np.asarray(mask, dtype=bool)
        n, i = mask.size, int(np.argmin(mask)) if not np.all(mask) else mask.size
        kept_after = i + np.flatnonzero(mask[i:])
        C = self.buffer[kept_after, i:n]
        self.index = [j for j, m in zip(self.index, mask) if m]
        m = len(self.index)
        self.buffer[i:m, :i] = self.buffer[kept_after, :i]
        self.buffer[i:n, i:n] = 0.0
        if m > i:
            try:
                self.buffer[i:m, i:m] = cholesky(C @ C.T, lower=True)
            except np.linalg.LinAlgError:
                self.buffer[:m, :m] = cholesky(self.G[np.ix_(self.index, self.index)], lower=True)

    def solve(self, b) -> np.ndarray:
        return cho_solve((self.L, True), b[self.index]) if self.index else np.zeros(0)


def _warm_start(state: _Passive, b, lam, maxiter: int) -> np.ndarray:
    """Start from the passive set of the unconstrained solution when it is well posed.

    P <- {j : s_j > 0} for s = argmin on P, from P = all columns, until s > 0 on P (each round one Cholesky
    factorization, BLAS-3): then lambda = s is a Lawson-Hanson inner-loop state (feasible, optimal on P)
    and the outer loop continues from it; with independent columns and a positive unconstrained solution
    (the usual near-support set) it ends at once, without k one-column steps.  Cold start (P empty) when
    a G_PP is not positive definite at the dependence level (dependent columns: k > P parameters).
    """
    index = list(range(b.size))
    for _ in range(min(maxiter, 20)):
        if not state.start(index):
            state.index = []
            return lam
        s = state.solve(b)
        if np.all(s > 0):
            out = np.zeros_like(lam)
            out[state.index] = s
            return out
        index = [j for j, v in zip(state.index, s) if v > 0]
    state.index = []
    return lam


def _add_best(state: _Passive, b, w, tol: float) -> bool:
    """Move the largest positive w_j (j not in P) into P; False when none qualifies.

    As in Lawson-Hanson a candidate is skipped when it is dependent on P or when the passive solve with
    it gives it a coefficient <= 0 (then w_j > 0 was rounding).
    """
    w = w.copy()
    w[state.index] = -np.inf
    for j in np.argsort(-w):
        if w[j] <= tol:
            return False
        if state.try_add(int(j)):
            if state.solve(b)[-1] > 0:
                return True
            state.pop()
    return False


def _passive_solve(state: _Passive, b, lam, maxiter: int) -> np.ndarray:
    """Lawson-Hanson's inner loop: move from lam toward the passive solution, dropping columns that hit 0."""
    for _ in range(maxiter):
        P = np.array(state.index)
        s = state.solve(b)
        if np.all(s > 0):
            out = np.zeros_like(lam)
            out[P] = s
            return out
        current = lam[P]
        blocked = s <= 0
        ratios = current[blocked] / (current[blocked] - s[blocked])    # in [0, 1): current > 0 >= s
        alpha = float(np.min(ratios))
        step = current + alpha * (s - current)
        step[np.flatnonzero(blocked)[np.argmin(ratios)]] = 0.0
        lam = np.zeros_like(lam)
        lam[P] = np.maximum(step, 0.0)
        state.keep(step > 0)
    raise RuntimeError("gram_nnls: maximum number of iterations reached")
