"""An independent exact reference for small hard-margin problems: min ||theta||^2 s.t. A theta >= 1.

The optimum is the unique minimizer of a strictly convex QP; some subset S of at most rank(A) rows is
active with theta = A_S^T (A_S A_S^T)^{-1} 1 and multipliers lambda_S = 2 (A_S A_S^T)^{-1} 1 >= 0.
Every subset is tried in 60-digit arithmetic (mpmath), so the answer does not depend on the data's
scale or conditioning, nor on any floating-point solver.
"""

from __future__ import annotations

from itertools import combinations

import mpmath as mp
import numpy as np


def _to_mp(A):
    return mp.matrix([[mp.mpf(float(v)) for v in row] for row in np.asarray(A, dtype=float)])


def exact_max_margin(A, digits: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(theta, lambda) of min ||theta||^2 s.t. A theta >= 1 for small A (N <= ~10, d <= 4), exactly."""
    with mp.workdps(digits):
        M = _to_mp(A)
        n, d = M.rows, M.cols
        tol = mp.mpf(10) ** (-(digits // 2))
        best = None
        for k in range(1, min(n, d) + 1):
            for S in combinations(range(n), k):
                AS = mp.matrix([[M[i, j] for j in range(d)] for i in S])
                G = AS * AS.T
                try:
                    lam = 2 * mp.lu_solve(G, mp.matrix([1] * k))
                except ZeroDivisionError:
                    continue
                if any(v < -tol for v in lam):
                    continue
                theta = AS.T * lam / 2
                if all(sum(M[i, j] * theta[j] for j in range(d)) >= 1 - tol for i in range(n)):
                    value = sum(t ** 2 for t in theta)
                    if best is None or value < best[0] - tol:
                        full = [mp.mpf(0)] * n
                        for i, v in zip(S, lam):
                            full[i] = v
                        best = (value, theta, full)
        if best is None:
            raise ValueError("no feasible active set: the rows are not separable")
        return (np.array([float(t) for t in best[1]]), np.array([float(v) for v in best[2]]))
