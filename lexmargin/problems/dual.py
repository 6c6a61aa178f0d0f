"""The dual route of linear l2 max-margin problems: an exact active-set solve of a least-distance program.

    min ||theta||^2   s.t.   A theta >= r                                                  (LDP)

(A: the margin rows A theta + c >= 1 and any extra linear rows; r = 1 - c) is solved by Lawson and Hanson's
reduction to non-negative least squares (Solving Least Squares Problems, 1974, ch. 23).  With the columns
e_n = (A_n, r_n) of E = [A^T; r^T] and f = (0, ..., 0, 1):

    min ||E u - f||  s.t.  u >= 0;     theta = A^T u / rho,   rho = 1 - r.u = ||E u - f||^2,

and rho = 0 exactly when the rows are inconsistent (then A^T u = 0, r.u = 1: no theta satisfies them).  The
multipliers of the objective ||theta||^2 (stationarity 2 theta = A^T lambda) are lambda = 2 u / rho.  Since
rho = 1 / (1 + ||theta*||^2), an optimum above ~1e7 (separable data whose margin is ~1e-7 of its scale, e.g. a
sample at 1e-12 of the others' size) leaves rho at rounding level although A^T u = rho theta* is not 0.  Where
that g = A^T u separates the rows the solve saw (a proof that they are consistent), the LDP of s r, whose optimum
is s theta* and multipliers s lambda*, is solved with s a power of two that brings g's separating multiple to
unit size, then once more with theta at unit size (``_rescaled``).

The NNLS problem is solved in its Gram form, min 1/2 u.K u - r.u over u >= 0 with K = E^T E = A A^T + r r^T,
a QP in the N multipliers, by Lawson-Hanson's active-set method: its gradient w = r - K u = rho (r - A theta)
is positive exactly on the rows that theta violates, so each outer iteration adds violated rows (the most
violated first) to the passive set, solves the passive least-squares problem K_PP z = r_P by Cholesky (the
factor extended by a Schur complement when rows join, rows nearly dependent on the passive ones skipped by a
pivoted Cholesky), and steps back to u >= 0 when z is not positive, dropping the rows that reach 0.  Rows are
added in batches (all of them at once for wide data, where most rows are support vectors), which keeps the
objective decreasing; the passive rows stay linearly independent, so the multipliers are a vertex.

Shape-aware: for wide data (N <= 2 (d + 1), N <= 6000) K is formed once for all rows (one BLAS product,
N^2 d); block principal pivoting (Judice and Pires 1994, exchanges in blocks) proposes the passive set and
Lawson-Hanson makes it exact.  For tall data no N x N matrix is formed: scipy's Lawson-Hanson NNLS runs on
E restricted to a working set of rows: the rows with a positive multiplier and the most violated rows (one product
A theta per round).  In exact arithmetic rho decreases strictly from round to round; where the NNLS's rounding
is above the violations it is meant to remove (features in units 1e-6 to 1e6: rho fluctuating by 1e-4 relative
while every round adds 300 "violated" rows), STALL_ROUNDS rounds without a new smallest rho end the loop as
"stalled": its last point goes to the finish and the certificate like any other proposal.

Unregularized coordinates (``PartialL2``: the SVM's bias) have no least-distance form: the dual QP with the
equality constraints A_F^T mu = 0 is solved by the same active-set loop with a bordered system, started from
the support of the least-distance program that penalizes them slightly (``_free_qp``).

This solver only proposes a point and multipliers: the exact finish and the certificate (``nlp.finish``,
``nlp.certify``) recompute everything from the problem's own functions, and the caller falls back to IPOPT
when they do not certify ``optimal``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg import LinAlgError
from scipy.linalg.lapack import dpstrf

from ..nlp.lapack import cho_solve_lower, cholesky_lower, solve_lower
from ..nlp.nnls import nnls
from .margins import largest_magnitude, power_of_two_exponent

TINY = np.finfo(float).tiny
DEPENDENT = 1e-12        # squared distance of a row's e_n from the passive span, relative to ||e_n||^2: skipped
VIOLATION = 1e-13        # relative violation r_n - A_n theta that makes a row a candidate
FULL_GRAM_RATIO = 2      # K for all rows when N <= FULL_GRAM_RATIO (d + 1) ...
FULL_GRAM_MAX = 6000     # ... and N <= FULL_GRAM_MAX (an N x N matrix)
SMALL_PROBLEM = 200_000   # N (d + 1) up to this ...
ALL_ROWS_RATIO = 64       # ... and N <= ALL_ROWS_RATIO (d + 1): NNLS on all rows at once.  Taller data take the working
#                           set (measured, one thread: N = 1000, d = 10 in 0.76 of the all-rows time, 2000 x 10 in 0.29,
#                           5000 x 10 in 0.18; all rows win up to N ~ 50 (d + 1): 500 x 10 and 1000 x 20 by 1.5x, 1.1x)
SEED_ROWS = 200          # tall data: the first working set (the rows lowest along the centroid direction) has
SEED_SHARE = 10          # min(SEED_ROWS, N / SEED_SHARE) rows, at least SEED_FACTOR (d + 1) (``_seed_size``) ...
SEED_FACTOR = 2
ROUND_ROWS = 300         # ... and each round adds min(ROUND_ROWS, max(ROUND_FACTOR (d + 1), N / ROUND_SHARE)) rows,
ROUND_SHARE = 20         # at least d + 1, the most violated first (``_round_size``).  A round costs an NNLS on its
ROUND_FACTOR = 10        # rows (~ their number) and a pass over all N rows: the batch grows with N up to ROUND_ROWS
NNLS_ITER = 10
MIN_BATCH = 8
BPP_REGULARIZATION = 1e-13
BPP_TOL = 1e-10
BPP_MAX_ITER = 50
BPP_HANDOVER = 0.02       # block pivoting hands over to Lawson-Hanson below this fraction of exchanges
BPP_BACKUP = 3
WARM_WEIGHT = 2.0 ** 3   # free coordinates: the tall-data warm start penalizes them with weight 1 / WARM_WEIGHT^2
EQ_ZERO = 1e-13          # free coordinates: passive values above -EQ_ZERO max|z| count as >= 0
RHO_ROUNDING = 16 * np.finfo(float).eps   # rho = 1 - r.u at or below this times |r|.u is 0: inconsistent rows
ROW_BOUND = 2.0 ** 20     # r is scaled first when one row alone bounds ||theta*|| above this (``_row_bound_scale``)
STALL_ROUNDS = 5          # tall data: this many rounds in a row without a new smallest rho ...
STALL_DECREASE = 1e-12    # ... (smaller by more than this, relative) end the working-set loop: "stalled"

ROUTES = ("auto", "ipopt", "dual", "lp")

__all__ = ["ROUTES", "LDPResult", "dual_applies", "dual_certificate", "least_distance", "linear_margins"]


@dataclass(frozen=True, eq=False)
class LDPResult:
    """A proposed solution of the LDP: theta, multipliers (of ||theta||^2, one per row), the passive rows.

    status: "optimal" (no row violated beyond rounding), "inconsistent" (rho = 0: the rows cannot all hold),
    "stalled" (violated rows remain but none is independent of the passive set; tall data: rho did not decrease
    beyond rounding for STALL_ROUNDS rounds), "max_iterations", "max_time".
    """

    theta: np.ndarray
    multipliers: np.ndarray
    passive: np.ndarray
    status: str
    iterations: int
    seconds: float
    rows_formed: int        # distinct rows the solve formed (Gram entries, or the NNLS's columns: its working sets)
    full_gram: bool
    row_gram: np.ndarray | None = None   # A A^T of the rows as given, when the solve formed it (wide data)

    @property
    def converged(self) -> bool:
        return self.status == "optimal"


class _Gram:
    """Entries of K = A A^T + r r^T: from one precomputed N x N product, or formed on demand."""

    def __init__(self, A, r, full: bool, with_r: bool = True, K=None):
        self.A, self.r = A, (r if with_r else np.zeros(A.shape[0]))
        self.K = self.rows_gram = None
        self.formed = np.zeros(A.shape[0], dtype=bool)
        if full:
            if K is None:           # else the caller's A A^T (+ r r^T), e.g. assembled from column blocks
                K = self.rows_gram = A @ A.T        # kept: the certificate's LICQ reads A A^T of the same rows
                if with_r:
                    K = K + np.outer(r, r)
            self.K = K
            self.formed[:] = True

    def block(self, rows, cols) -> np.ndarray:
        if self.K is not None:
            return self.K[np.ix_(rows, cols)]
        self.formed[rows] = True
        self.formed[cols] = True
        return self.A[rows] @ self.A[cols].T + np.outer(self.r[rows], self.r[cols])


def _extend(L, passive, new, gram: _Gram):
    """The Cholesky factor of K over ``passive`` + the rows of ``new`` that are independent of them (and of each
    other), in that order.  Returns (L, passive, positions in ``new`` of the rows kept)."""
    k = passive.size
    Knn = gram.block(new, new)
    if k:
        C = solve_lower(L, gram.block(passive, new))
        S = Knn - C.T @ C
    else:
        C, S = np.zeros((0, new.size)), Knn
    length = np.sqrt(np.maximum(np.diag(Knn), TINY))
    scaled = S / length[:, None] / length[None, :]
    keep = np.arange(new.size)
    try:
        L22 = cholesky_lower(scaled)
        if np.min(np.diag(L22)) ** 2 <= DEPENDENT:
            raise LinAlgError("nearly dependent")
    except (LinAlgError, ValueError):
        factor, piv, rank, _ = dpstrf(scaled, tol=DEPENDENT, lower=1)
        keep = np.sort(piv[:rank] - 1)           # keep the caller's order (the most violated first)
        if keep.size == 0:
            return L, passive, keep
        try:
            L22 = cholesky_lower(scaled[np.ix_(keep, keep)])
        except LinAlgError:
            keep = piv[:rank] - 1
            L22 = np.tril(factor[:rank, :rank])
    L22 = L22 * length[keep][:, None]
    out = np.zeros((k + keep.size, k + keep.size))
    out[:k, :k] = L
    out[k:, :k] = C[:, keep].T
    out[k:, k:] = L22
    return out, np.concatenate([passive, new[keep]]), keep


def _drop(L, passive, u, drop, gram: _Gram):
    """Remove the rows ``drop`` (a mask over ``passive``): the factor of the rows before the first one dropped
    is kept, the rest is refactored."""
    first = int(np.argmax(drop))
    rest = np.nonzero(~drop[first:])[0] + first
    L2, P2, keep = _extend(L[:first, :first], passive[:first], passive[rest], gram)
    return L2, P2, np.concatenate([u[:first], u[rest][keep]])


def _step_back(L, passive, u, z, negative, gram: _Gram):
    """Lawson-Hanson's step back: from the feasible u toward the unconstrained z as far as the rows going
    ``negative`` allow, then drop the rows that reach 0 (and any rounded below 0: rows at 0 that move up stay)."""
    un, zn = u[negative], z[negative]
    ratio = np.where(un > 0, un / np.maximum(un - zn, TINY), 0.0)
    alpha = float(np.min(ratio))
    u = u + alpha * (z - u)
    drop = np.zeros(passive.size, dtype=bool)
    drop[np.nonzero(negative)[0][ratio <= alpha]] = True
    drop |= u < 0
    return _drop(L, passive, np.maximum(u, 0.0), drop, gram)


def _first_order(A, r) -> np.ndarray:
    """A guess of which rows bind: the violation at a multiple of the mean row (the centroid direction)."""
    g = A.mean(axis=0)
    margins = A @ g
    scale = float(np.median(np.abs(margins)))
    if not scale > 0:
        return -r
    return margins / scale - r


def _seed_size(N: int, columns: int) -> int:
    """The first working set's rows for tall data: min(SEED_ROWS, N / SEED_SHARE), at least SEED_FACTOR columns, at
    most N.  Measured against the earlier 200 seed rows and 300 per round (one thread, interleaved, data seeds 0
    and 1): max_margin at 600-2500 x 5-15 in 0.75-0.93 of the time, 3000 x 20 and 4000 x 30 within the noise (+-5 %);
    svm_with_bias at 100-2500 x 5-20 in 0.88-1.03.  From N = 2000 (seed) and 6000 (rounds) on the sizes are the
    earlier ones."""
    return min(N, max(SEED_FACTOR * columns, min(SEED_ROWS, N // SEED_SHARE)))


def _round_size(N: int, columns: int) -> int:
    """The violated rows a round adds: min(ROUND_ROWS, max(ROUND_FACTOR columns, N / ROUND_SHARE)), at least
    ``columns`` (see ``_seed_size``)."""
    return max(columns, min(ROUND_ROWS, max(ROUND_FACTOR * columns, N // ROUND_SHARE)))


def _ldp(A, r, *, warm=None, max_iter: int, deadline: float, full_gram: bool | None, rownorm, K=None, seed=None):
    N, d = A.shape
    full = (N <= FULL_GRAM_RATIO * (d + 1) and N <= FULL_GRAM_MAX) if full_gram is None else full_gram
    if full:
        return _ldp_gram(A, r, warm=warm, max_iter=max_iter, deadline=deadline, rownorm=rownorm, K=K)
    return _ldp_rows(A, r, warm=warm, max_iter=max_iter, deadline=deadline, rownorm=rownorm, seed=seed)


def _violated(A, r, theta, rownorm, exclude=None):
    """Rows with r_n - A_n theta above rounding (relative), most violated first."""
    violation = r - A @ theta
    tol = VIOLATION * np.maximum(np.abs(r), rownorm * float(np.max(np.abs(theta), initial=0.0)))
    score = violation - tol
    if exclude is not None:
        score[exclude] = -np.inf
    candidates = np.nonzero(score > 0)[0]
    return candidates[np.argsort(-score[candidates], kind="stable")]


def _separating_size(rows, r, g) -> float:
    """max |theta| of theta = t g, the smallest multiple of g with rows theta >= r, when g separates the rows
    (rows g > 0 where r > 0 and >= 0 elsewhere); 0 when it does not (the rows may be inconsistent)."""
    margins = rows @ g
    need = r > 0
    if not need.any() or np.any(margins[need] <= 0) or np.any(margins[~need] < 0):
        return 0.0
    return float(np.max(r[need] / margins[need])) * float(np.max(np.abs(g)))


def _rescaled(A, r, *, max_iter: int, deadline: float, full_gram, rownorm):
    """``_ldp`` of (A, r); when it finds the rows inconsistent although the NNLS's A^T u separates the rows it saw
    (``_separating_size``: rho below rounding, not 0), ``_ldp`` of (A, s r) with s the power of two that brings
    that separating theta to unit size, then once more with s divided by the power of two of the result's
    max |theta| (an optimum of unit size: rho near 1/2), mapped back exactly: theta / s, lambda / s.  Anything else
    is reported as at r (inconsistent rows: IPOPT and the Farkas proof then decide).  ``max_iter`` bounds the
    iterations of all the solves together."""
    first = _ldp(A, r, max_iter=max_iter, deadline=deadline, full_gram=full_gram, rownorm=rownorm)
    if first[3] != "inconsistent" or not first[8] > 0 or first[4] >= max_iter:
        return first[:8]
    scale = np.ldexp(1.0, -power_of_two_exponent(first[8]))
    found = _ldp(A, scale * r, max_iter=max_iter - first[4], deadline=deadline, full_gram=full_gram,
                 rownorm=rownorm)
    iterations = first[4] + found[4]
    if found[3] not in ("optimal", "stalled"):
        return (*first[:4], iterations, *first[5:8])
    if iterations < max_iter:
        unit = np.ldexp(scale, -power_of_two_exponent(float(np.max(np.abs(found[0]), initial=0.0))))
        refined = _ldp(A, unit * r, max_iter=max_iter - iterations, deadline=deadline, full_gram=full_gram,
                       rownorm=rownorm)
        iterations += refined[4]
        if refined[3] in ("optimal", found[3]):
            found, scale = refined, unit
    theta, lam, passive, status, _, formed, full, AAt = found[:8]
    return theta / scale, lam / scale, passive, status, iterations, formed, full, AAt


def _row_bound_scale(r, rownorm) -> float:
    """The power of two s by which r is scaled before the first solve (the LDP of (A, s r) has the optimum
    s theta* and the multipliers s lambda*, exactly): 1 unless L = max_n r_n / max_j |A_nj| is above ROW_BOUND,
    then 2^-e with L / 2^e in [1/2, 1).  A row alone bounds the optimum, ||theta*||_inf >= r_n / ||A_n||_1 >=
    L / d, so rho = 1 / (1 + ||theta*||^2) of (A, r) would be at most ~(d / L)^2: rounding level for a sample at
    1e-10 of the others' size (multi-class rows (W_y - W_j) x_n have no separating A^T u to rescale from)."""
    positive = (r > 0) & (rownorm > 0)
    if not positive.any():
        return 1.0
    bound = float(np.max(r[positive] / rownorm[positive]))
    return 1.0 if not bound > ROW_BOUND else float(np.ldexp(1.0, -power_of_two_exponent(bound)))


def _consistent(rho: float, r, u) -> bool:
    """rho = 1 - r.u is positive beyond the rounding of r.u: rho at rounding level means r.u = 1 and A^T u = 0 up
    to rounding, the rows are inconsistent (theta = A^T u / rho would be rounding noise divided by it)."""
    return rho > RHO_ROUNDING * float(np.abs(r) @ u)


def _ldp_rows(A, r, *, warm, max_iter: int, deadline: float, rownorm, seed=None):
    """Tall data: Lawson-Hanson NNLS (scipy, on E_W = [A_W^T; r_W^T]) on a working set W of rows until no row is
    violated; each round keeps W's rows with a positive multiplier and adds the most violated rows.  The LDP's value
    then increases strictly from round to round (the last theta, the unique optimum over the kept rows, violates an
    added row), so no working set repeats.  No N x N matrix is formed.  Measured, one thread, against keeping every
    row of W: 0.8 of the time at 1000-5000 x 10, 0.4 at 20000 x 50, 0.3 at 5000 x 100, no slower at 10^5 x 10 and
    50000 x 20."""
    N, d = A.shape
    if _all_rows(N, d):
        W = np.arange(N)
    else:
        size = _seed_size(N, d + 1)
        W = np.argsort(-_first_order(A, r), kind="stable")[:size] if seed is None else np.asarray(seed, dtype=int)
        if warm is not None and warm.size:
            W = np.union1d(W, warm)
        W = np.sort(W)
    target = np.zeros(d + 1)
    target[-1] = 1.0
    theta, lam_W, rho, status, rounds = np.zeros(d), np.zeros(0), 1.0, "max_iterations", 0
    separating = 0.0
    iterations, solved = 0, W
    formed = np.zeros(N, dtype=bool)
    formed[W] = True
    smallest, since = np.inf, 0                         # the smallest rho so far, rounds since it was found
    for rounds in range(1, max_iter + 1):
        if time.perf_counter() > deadline:
            status = "max_time"
            break
        if since >= STALL_ROUNDS:
            status = "stalled"
            break
        E = np.empty((d + 1, W.size))
        E[:d] = A[W].T
        E[d] = r[W]
        try:
            u, _ = nnls(E, target, maxiter=max(1, min(max_iter, NNLS_ITER * max(W.size, d + 1))))
        except RuntimeError:        # its iteration limit
            status = "max_iterations"
            break
        iterations += 1
        rho = 1.0 - float(r[W] @ u)
        if not _consistent(rho, r[W], u):
            status = "inconsistent"
            separating = _separating_size(A[W], r[W], A[W].T @ u)
            break
        theta = A[W].T @ u / rho
        lam_W = 2.0 * u / rho
        since = 0 if rho < smallest * (1.0 - STALL_DECREASE) else since + 1
        smallest = min(smallest, rho)
        mask = np.zeros(N, dtype=bool)
        mask[W] = True
        violated = _violated(A, r, theta, rownorm, exclude=mask)
        solved = W
        if violated.size == 0:
            status = "optimal"
            break
        batch = violated[:_round_size(N, d + 1)]
        formed[batch] = True
        W = np.sort(np.concatenate([W[u > 0], batch]))     # the rows with a multiplier, then the most violated
    lam = np.zeros(N)
    if lam_W.size:
        lam[solved] = lam_W
    passive = np.nonzero(lam > 0)[0]
    return theta, lam, passive, status, iterations, int(formed.sum()), False, None, separating


def _bpp(K, r, start, *, max_iter: int, deadline: float):
    """Block principal pivoting (Judice and Pires 1994; Kim and Park 2011) for min 1/2 u.K u - r.u, u >= 0,
    with K + delta I (delta = BPP_REGULARIZATION of its largest diagonal: K is singular when N > d + 1): all
    infeasible variables are exchanged at once while their number decreases (three more tries otherwise, then
    the largest index alone, which guarantees termination).  Returns u (an estimate for Lawson-Hanson)."""
    N = K.shape[0]
    delta = BPP_REGULARIZATION * float(np.max(np.diag(K), initial=0.0))
    tol = BPP_TOL * max(float(np.max(np.abs(r), initial=0.0)), TINY)
    free = np.zeros(N, dtype=bool)
    free[start] = True
    u = np.zeros(N)
    best, backup = N + 1, BPP_BACKUP
    for _ in range(max_iter):
        if time.perf_counter() > deadline:
            break
        index = np.nonzero(free)[0]
        u = np.zeros(N)
        if index.size:
            block = K[np.ix_(index, index)]
            block[np.diag_indices(index.size)] += delta
            try:
                u[index] = cho_solve_lower(cholesky_lower(block), r[index])
            except LinAlgError:
                break
        y = K @ u - r
        infeasible = (free & (u < 0)) | (~free & (y < -tol))
        count = int(infeasible.sum())
        if count <= BPP_HANDOVER * free.sum():
            break                   # few exchanges left: Lawson-Hanson makes them one factor update at a time
        if count < best:
            best, backup = count, BPP_BACKUP
            free ^= infeasible
        elif backup > 0:
            backup -= 1
            free ^= infeasible
        else:
            i = int(np.nonzero(infeasible)[0][-1])
            free[i] = not free[i]
    return np.maximum(u, 0.0)


def _ldp_gram(A, r, *, warm=None, max_iter: int, deadline: float, rownorm, K=None):
    """Wide data: K = A A^T + r r^T of all rows (formed once, or given); block principal pivoting proposes the
    passive set, Lawson-Hanson (rows added in batches, the most violated first) makes it exact and a vertex."""
    N, d = A.shape
    gram = _Gram(A, r, True, K=K)
    if warm is None or not warm.size:
        guess = _bpp(gram.K, r, np.arange(N), max_iter=min(max_iter, BPP_MAX_ITER), deadline=deadline)
        warm = np.nonzero(guess > 0)[0]
        warm = warm[np.argsort(-guess[warm], kind="stable")]
    L, passive, u = np.zeros((0, 0)), np.zeros(0, dtype=int), np.zeros(0)
    theta, rho, separating = np.zeros(d), 1.0, 0.0
    status, iterations = "max_iterations", 0
    for iterations in range(1, max_iter + 1):
        if time.perf_counter() > deadline:
            status = "max_time"
            break
        ranked = _violated(A, r, theta, rownorm, exclude=passive)
        if ranked.size == 0:
            status = "optimal"
            iterations -= 1                             # this pass only checked
            break
        if iterations == 1 and warm.size:
            ranked = warm
        else:
            ranked = ranked[:max(MIN_BATCH, passive.size // 8)]
        L, passive, kept = _extend(L, passive, ranked, gram)
        if kept.size == 0:
            status = "stalled"
            break
        u = np.concatenate([u, np.zeros(kept.size)])
        while True:                                     # Lawson-Hanson's inner loop
            z = cho_solve_lower(L, r[passive])
            negative = z <= 0
            if not negative.any():
                u = z
                break
            L, passive, u = _step_back(L, passive, u, z, negative, gram)
            if passive.size == 0:
                break
        rho = 1.0 - float(r[passive] @ u)
        if not _consistent(rho, r[passive], u):
            status = "inconsistent"
            separating = _separating_size(A[passive], r[passive], _combine(A, passive, u))
            break
        theta = _combine(A, passive, u) / rho
    lam = np.zeros(N)
    if status != "inconsistent":
        lam[passive] = 2.0 * u / rho
    return theta, lam, passive, status, iterations, N, True, gram.rows_gram, separating


def least_distance(A, r, *, free=(), max_iter: int = 10_000, time_limit: float = float("inf"),
                   full_gram: bool | None = None) -> LDPResult:
    """min ||theta_R||^2 s.t. A theta >= r, R = the coordinates not in ``free`` (see the module docstring)."""
    started = time.perf_counter()
    deadline = started + time_limit
    A = np.ascontiguousarray(A, dtype=float)
    r = np.asarray(r, dtype=float).reshape(-1)
    if max_iter <= 0:
        return LDPResult(np.zeros(A.shape[1]), np.zeros(A.shape[0]), np.zeros(0, dtype=int), "max_iterations", 0,
                         time.perf_counter() - started, 0, False)
    free = np.asarray(sorted(free), dtype=int)
    if free.size == 0:
        rownorm = largest_magnitude(A, 1) if A.shape[1] else np.zeros(A.shape[0])
        scale = _row_bound_scale(r, rownorm)
        theta, lam, passive, status, its, formed, full, AAt = _rescaled(A, scale * r, max_iter=max_iter,
                                                                        deadline=deadline, full_gram=full_gram,
                                                                        rownorm=rownorm)
        return LDPResult(theta / scale, lam / scale, passive, status, its, time.perf_counter() - started, formed,
                         full, AAt)
    return _free_qp(A, r, free, max_iter=max_iter, deadline=deadline, started=started, full_gram=full_gram)


# ---- unregularized coordinates: the dual QP with equality constraints --------------------------------------
def _free_qp(A, r, free, *, max_iter: int, deadline: float, started: float, full_gram):
    """min ||theta_R||^2 s.t. A theta >= r with the coordinates F = ``free`` left out of the objective.

    No least-distance form exists (the objective does not see theta_F); the dual QP is solved instead:

        min 1/2 mu.G mu - r.mu   s.t.  mu >= 0,  C^T mu = 0        (G = A_R A_R^T, C = A_F)

    with theta_R = A_R^T mu, theta_F = nu (the multiplier of C^T mu = 0) and lambda = 2 mu.  On C^T mu = 0,
    mu.G mu = mu.K mu with K = A A^T (all columns), whose passive blocks are positive definite while the
    passive rows are independent; the passive problem is solved by Cholesky of K_PP and the Schur complement
    C_P^T K_PP^-1 C_P for nu.  Lawson-Hanson's active-set loop (the most violated rows join, a step back to
    mu >= 0 drops rows) runs on the Gram matrix of all rows (N <= 2 (d + 1)) or of a working set of rows that
    grows by the most violated ones (tall data).  The free columns are scaled by a power of two to the size of
    the others (exact).  |A| is formed once: the column and row maxima of A, of the scaled A and of the warm
    start's A are maxima of its (exactly) rescaled columns."""
    N, n = A.shape
    is_regularized = np.ones(n, dtype=bool)
    is_regularized[free] = False
    regularized = np.flatnonzero(is_regularized)
    cols = _columns(regularized)
    magnitude = np.abs(A)
    columns = magnitude.max(axis=0) if N else np.zeros(n)
    top = float(np.max(columns[regularized], initial=0.0)) if regularized.size else 1.0
    column = columns[free]
    scale = np.where(column > 0, np.maximum(top, TINY) / np.maximum(column, TINY), 1.0)
    scale = np.ldexp(1.0, np.frexp(scale)[1] - 1)          # powers of two: exact
    rownorm_R = magnitude[:, cols].max(axis=1) if regularized.size else np.zeros(N)
    rownorm = np.maximum(rownorm_R, magnitude[:, free].max(axis=1))           # of A
    magnitude[:, free] *= scale                                                 # |As|
    rownorm_scaled = np.maximum(rownorm_R, magnitude[:, free].max(axis=1))    # of As
    As = A.copy()
    As[:, free] *= scale
    C = As[:, free]
    full = (N <= FULL_GRAM_RATIO * (n + 1) and N <= FULL_GRAM_MAX) if full_gram is None else full_gram
    # warm start: with the free columns weighted by WARM_WEIGHT more, penalizing them too is a small change of the
    # problem that is a least-distance program (fast: block pivoting on the Gram matrix for wide data, NNLS on a
    # working set for tall data); its passive rows start the exact solve, which then exchanges a few rows
    Aw = As.copy()
    Aw[:, free] *= WARM_WEIGHT
    rownorm_warm = np.maximum(rownorm_R, WARM_WEIGHT * magnitude[:, free].max(axis=1))
    K_regularized = None
    if full:                        # one N x N product for both Gram matrices: A_R A_R^T, then rank-q terms
        AR = As[:, cols]
        K_regularized = AR @ AR.T
        K_warm = K_regularized + WARM_WEIGHT ** 2 * (C @ C.T) + np.outer(r, r)
    size = _seed_size(N, n + 1)                                    # the first working set's rows (tall data)
    seed = None if full or _all_rows(N, n) else _signed_seed(Aw, r, regularized, free, size)
    guess = _ldp(Aw, r, max_iter=max_iter, deadline=deadline, full_gram=full, rownorm=rownorm_warm,
                 K=K_warm if full else None, seed=seed)
    if full or size == N:           # every row: no union with the lowest margins, positions are rows
        W = np.arange(N)
        warm = guess[2] if guess[3] == "optimal" else None
    else:
        margins = Aw @ guess[0] - r
        W = np.union1d(guess[2], np.argsort(margins, kind="stable")[:size])
        warm = np.searchsorted(W, guess[2]) if guess[3] == "optimal" else None
    iterations, status = 0, "max_iterations"
    theta = np.zeros(n)
    mu_W, passive_W = np.zeros(0), np.zeros(0, dtype=int)
    rounds = 0
    while iterations < max_iter:
        rounds += 1
        every = W.size == N
        AW = As if every else As[W]
        gram = _Gram(AW, r[W], full=True, with_r=False,
                     K=K_regularized + C @ C.T if full and K_regularized is not None else None)
        mu_W, nu, passive_W, status, its = _eq_active_set(
            gram, magnitude if every else magnitude[W], rownorm_scaled[W], r[W], C[W], warm=warm,
            max_iter=max_iter - iterations, deadline=deadline)
        iterations += its
        theta = np.zeros(n)
        theta[regularized] = (AW.T @ mu_W)[regularized]
        theta[free] = nu * scale
        if status != "optimal" or full or every:       # every row solved: none can be violated outside W
            break
        mask = np.zeros(N, dtype=bool)
        mask[W] = True
        violated = _violated(A, r, theta, rownorm, exclude=mask)
        if violated.size == 0:
            break
        added = violated[:_round_size(N, n + 1)]
        warm = np.searchsorted(np.union1d(W, added), W[passive_W])
        W = np.union1d(W, added)
    lam = np.zeros(N)
    lam[W] = 2.0 * mu_W
    passive = np.sort(W[passive_W])
    _exact_free_bounds(A, r, theta, passive, free, rownorm_R)
    # A A^T of the rows as given (the certificate's LICQ): the regularized columns' product formed above, plus the
    # free columns' (unscaled) rank-q term
    row_gram = None if K_regularized is None else K_regularized + A[:, free] @ A[:, free].T
    return LDPResult(theta, lam, passive, status, iterations, time.perf_counter() - started, int(W.size), full,
                     row_gram)


def _exact_free_bounds(A, r, theta, passive, free, regularized_size):
    """A passive row on one free coordinate alone (a bound such as the SVM's b >= 0) holds exactly: theta's entry
    is set from it (in place).  ``regularized_size``: max |A_n| over the regularized columns (0 exactly for the
    rows without a regularized entry), so that only the free entries of the rows are read."""
    alone = (regularized_size[passive] == 0) & (np.count_nonzero(A[np.ix_(passive, free)], axis=1) == 1)
    for i in passive[alone].tolist():
        j = int(np.flatnonzero(A[i, free])[0])
        theta[free[j]] = r[i] / A[i, free[j]]


def _combine(A, rows, weights) -> np.ndarray:
    """A[rows]^T weights; from half of A's rows on, as one product with all of A (weights 0 elsewhere), which reads
    A once instead of copying the rows (wide data's rows are long)."""
    if 2 * rows.size < A.shape[0]:
        return A[rows].T @ weights
    full = np.zeros(A.shape[0])
    full[rows] = weights
    return full @ A


def _all_rows(N: int, d: int) -> bool:
    """Tall data small enough for one NNLS on all rows (no working set)."""
    return N * (d + 1) <= SMALL_PROBLEM and N <= ALL_ROWS_RATIO * (d + 1)


def _signed_seed(A, r, regularized, free, size: int) -> np.ndarray:
    """Tall data with free coordinates: the first working set of the warm start, split by the sign of the rows' first
    free entry (the SVM's classes: y_n on the bias column), ``size`` / 2 rows of each sign lowest along the centroid
    direction of the regularized columns (each class's closest rows to the other, whatever the bias), and every row
    without that entry.  Measured (SVM warm start, one thread): 1000 x 10 in one NNLS round instead of eight, 10^5 x
    10 in 0.4 of the NNLS time, 5000 x 100 in 0.6; the centroid seed of all rows ignores the bias's shift."""
    AR = A[:, _columns(regularized)]
    margins = AR @ AR.mean(axis=0) - r
    sign = np.sign(A[:, free[0]])
    parts = [np.flatnonzero(sign == 0)]
    for side in (1.0, -1.0):
        rows = np.flatnonzero(sign == side)
        parts.append(rows[np.argsort(margins[rows], kind="stable")[:size // 2]])
    return np.sort(np.concatenate(parts))


def _columns(index):
    """A sorted index array as a slice when it is contiguous (a view instead of a copy of the columns)."""
    if index.size and index[-1] - index[0] + 1 == index.size:
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _eq_active_set(gram, magnitude, rownorm, r, C, *, warm, max_iter: int, deadline: float):
    """Lawson-Hanson for min 1/2 mu.K mu - r.mu, mu >= 0, C^T mu = 0 (see ``_free_qp``) on the rows of ``gram``
    (``magnitude``: |A| of those rows, ``rownorm``: its row maxima).  Returns (mu, nu, passive positions, status,
    iterations).  Each outer iteration starts at the solution of its passive set, which in exact arithmetic lowers
    the objective from one to the next: a passive set seen before is a cycle of rounding (rows whose violation is
    at the level of the bordered solve's rounding join and leave again: columns in units 1e-7 to 1 cycled through
    3000 iterations), which ends the loop as "stalled" (IPOPT and the certificate take over)."""
    m, q = C.shape
    L, passive, u = np.zeros((0, 0)), np.zeros(0, dtype=int), np.zeros(0)
    nu = np.zeros(q)
    status, iterations = "max_iterations", 0
    seen = set()
    for iterations in range(1, max_iter + 1):
        if time.perf_counter() > deadline:
            status = "max_time"
            break
        visited = np.sort(passive).tobytes()
        if visited in seen:
            status = "stalled"
            break
        if iterations > 1:              # after the warm start (which may leave no row), the passive sets of the loop
            seen.add(visited)
        mu = np.zeros(m)
        mu[passive] = u
        violation = r - gram.K @ mu - C @ nu
        size = float(np.max(np.abs(mu) @ magnitude, initial=0.0)) + float(np.max(np.abs(nu), initial=0.0))
        tol = VIOLATION * np.maximum(np.abs(r), rownorm * max(size, TINY))
        score = violation - tol
        score[passive] = -np.inf
        candidates = np.nonzero(score > 0)[0]
        if candidates.size == 0:
            status = "optimal"
            iterations -= 1                             # this pass only checked
            break
        ranked = candidates[np.argsort(-score[candidates], kind="stable")]
        if iterations == 1 and warm is not None and warm.size:
            ranked = warm
        elif iterations > 1 or m > 2 * ranked.size:
            ranked = ranked[:max(MIN_BATCH, passive.size // 8)]
        L, passive, kept = _extend(L, passive, ranked, gram)
        if kept.size:
            u = np.concatenate([u, np.zeros(kept.size)])
        else:
            # the most violated row depends on the passive ones (they span the rows' space): a simplex pivot.
            # Its row is sum_i c_i (row i), so mu + t (e_j - c) keeps K mu and C^T mu and lowers the objective
            # by t (r_j - A_j theta) > 0: move until a passive mu_i reaches 0, and exchange the two
            j = int(ranked[0])
            c = cho_solve_lower(L, gram.block(passive, np.array([j])).ravel())
            positive = c > EQ_ZERO * max(float(np.max(np.abs(c), initial=0.0)), TINY)
            if not positive.any():
                status = "inconsistent"          # r_j - A_j theta > 0 along a direction the rows cannot stop
                break
            ratios = np.full(c.size, np.inf)
            ratios[positive] = u[positive] / c[positive]
            k = int(np.argmin(ratios))
            t = float(ratios[k])
            u = np.maximum(u - t * c, 0.0)
            drop = np.zeros(passive.size, dtype=bool)
            drop[k] = True
            L, passive, u = _drop(L, passive, u, drop, gram)
            L, passive, kept = _extend(L, passive, np.array([j]), gram)
            if kept.size == 0:
                status = "stalled"
                break
            u = np.append(u, t)
        while passive.size:                             # Lawson-Hanson's inner loop
            z, nu = _bordered(L, r[passive], C[passive])
            floor = EQ_ZERO * max(float(np.max(np.abs(z), initial=0.0)), TINY)
            negative = z < -floor
            if not negative.any():
                u = np.maximum(z, 0.0)
                break
            L, passive, u = _step_back(L, passive, u, z, negative, gram)
    mu = np.zeros(m)
    mu[passive] = u
    return mu, nu, passive, status, iterations


def _bordered(L, r, C):
    """(z, nu) with K z + C nu = r, C^T z = 0 for K = L L^T: nu from the Schur complement C^T K^-1 C
    (least squares when it is singular)."""
    z0 = cho_solve_lower(L, r)
    if C.shape[1] == 0:
        return z0, np.zeros(0)
    Zc = cho_solve_lower(L, C)
    S = C.T @ Zc
    nu = np.linalg.lstsq(S, C.T @ z0, rcond=None)[0]
    return z0 - Zc @ nu, nu


# ---- the route on the max-margin pipeline ----------------------------------------------------------------
def linear_margins(model, data):
    """The ``LinearMargins`` of a model linear in theta, with A from the model's input-affine structure when it has
    one (``margins.input_affine``: g = beta(theta).x + c(theta), beta and c linear): A = (y X) J_beta + y grad c^T
    from the (sparse) Jacobian of beta at 0, one product with the data instead of an N-mapped CasADi evaluation of
    the model's gradient (a plain linear model: A = y X itself).  The prescaling is ``LinearMargins``'s (a test
    compares every attribute); other models get ``LinearMargins(model, data)``."""
    from .margins import LinearMargins, input_affine, prescale

    parts = input_affine(model)
    if parts is None:
        return LinearMargins(model, data)
    beta, dbeta, offset, doffset, _, has_offset = parts
    rows, cols, values, identity, n_params, homogeneous = _beta_structure(model, dbeta)
    zero = np.zeros(n_params)
    y = np.asarray(data.y, dtype=float)
    yX = y[:, None] * data.X
    if identity:
        A = yX
    else:
        A = np.zeros((data.n_samples, n_params))
        for i, j, v in zip(rows.tolist(), cols.tolist(), values.tolist()):
            A[:, j] += v * yX[:, i]
    if homogeneous:
        c = np.zeros(data.n_samples)                    # homogeneous: f(0) = 0
    else:
        c = yX @ np.asarray(beta(zero), dtype=float).reshape(-1)
        if has_offset:
            c = c + y * float(offset(zero))
    if has_offset:
        A = A + np.outer(y, np.asarray(doffset(zero), dtype=float).reshape(-1))
    source = LinearMargins.__new__(LinearMargins)
    source.c = c
    # A is a new array (y X, or its combinations): scaled in place
    source.A, source.scale_exponent, source.column_scale = prescale(A, in_place=True)
    source.n_samples = A.shape[0]
    return source


def _beta_structure(model, dbeta):
    """(rows, cols, values of d beta / d theta at 0, whether it is the identity, n_params, homogeneous) of a model
    linear in theta: constant, computed once per model (cached on it beside ``input_affine``'s functions)."""
    cache = model.__dict__.setdefault("_lexmargin_structure", {})
    if "beta_structure" not in cache:
        n_params, d = model.n_params, model.input_dim
        J = dbeta(np.zeros(n_params))
        rows, cols = (np.asarray(index, dtype=int) for index in J.sparsity().get_triplet())
        values = np.asarray(J.nonzeros(), dtype=float)
        identity = n_params == d and np.array_equal(rows, np.arange(d)) and np.array_equal(cols, rows) and \
            bool(np.all(values == 1.0))
        cache["beta_structure"] = (rows, cols, values, identity, n_params,
                                   model.degree is not None and model.degree > 0)
    return cache["beta_structure"]


def dual_applies(problem) -> bool:
    """The route's scope: a model linear in theta, objective ||theta||^2 (``L2``, or ``PartialL2`` with
    unregularized coordinates), theta itself the decision vector (no lift variables)."""
    lift = problem.lift
    return bool(problem.source.linear and problem.norm.name == "l2" and not lift.split and lift.n == lift.n_params)


def dual_rows(source, n_params: int):
    """(A, r) of every row of the max-margin NLP as A theta >= r: the margins (r = 1 - c), then the source's extra
    rows (linear: their Jacobian and value at theta = 0)."""
    A, r = source.A, 1.0 - source.c
    if source.n_extra:
        zero = np.zeros(n_params)
        A = np.vstack([A, source.extra_jacobian(zero)])
        r = np.concatenate([r, -source.extra_values(zero)])
    return A, r


def dual_certificate(problem, opts, started: float, *, force: bool = False):
    """Solve a ``MaxMarginProblem`` in ``dual_applies``'s scope by ``least_distance``, finish (``finish_or_keep``:
    only where it can matter, from the solver's vertex) and certify on every row.  Returns the Certificate whatever
    its status (the caller runs IPOPT when it is neither ``optimal`` nor ``not_separable`` and keeps the better
    kind, ``maxmargin.preferred``).  Rows the least-distance program finds inconsistent get the problem's Farkas
    proof at once (``_infeasibility_status``): verified, the certificate is ``not_separable`` with it (no IPOPT
    run: its infeasibility detection takes hundreds of iterations); without one, None (IPOPT and the proof decide
    then), unless ``force``.  It runs inside ``MaxMarginProblem.solve``'s one-BLAS-thread block
    (``nlp.threads``)."""
    from ..nlp.certificate import SolverInfo
    from ..nlp.certify import RowGram
    from ..nlp.ipopt import IpoptResult
    from ..nlp.status import Status
    from .maxmargin import MaxMarginDiagnostics, margin_nlp, proposal_certificate, representable

    source, lift = problem.source, problem.lift
    N = problem.data.n_samples
    A, r = dual_rows(source, lift.n_params)
    free = tuple(getattr(problem.norm, "free", ()))
    limit = float("inf") if opts.time_limit is None else float(opts.time_limit)
    solved = least_distance(A, r, free=free, max_iter=opts.max_iter, time_limit=limit)
    proof = None
    if solved.status == "inconsistent":
        proof = problem._infeasibility_status(Status.INFEASIBLE, ())[1]
        if proof is None and not force:
            return None                              # IPOPT, then a Farkas proof, decide
    # "stalled" (no progress beyond rounding) is IPOPT's acceptable level: a proposal the finish may still make exact
    status = {"optimal": Status.OPTIMAL, "stalled": Status.INACCURATE, "max_iterations": Status.MAX_ITERATIONS,
              "max_time": Status.MAX_TIME, "inconsistent": Status.INFEASIBLE}.get(solved.status, Status.FAILED)
    nlp = margin_nlp(source, lift, np.arange(N))
    z = lift.start(solved.theta)
    result = IpoptResult(z, lift.objective_value(z), solved.multipliers, np.zeros(lift.n), np.zeros(lift.n),
                         status, solved.status, solved.iterations, solved.seconds, solver="dual_active_set",
                         vertex=True)
    cert, verdict = proposal_certificate(problem, nlp, result, opts, started, solved.iterations,
                                         np.arange(solved.rows_formed),
                                         None if solved.row_gram is None else RowGram(A, solved.row_gram))
    how = "the Gram matrix of all rows" if solved.full_gram else f"a working set of {solved.rows_formed} rows"
    solver = SolverInfo("dual_active_set", status, solved.status, solved.iterations, time.perf_counter() - started,
                        f"dual active set (Lawson-Hanson NNLS of the least-distance problem on {how}): "
                        f"{solved.status} after {solved.iterations} iterations"
                        f"{representable(cert.theta, verdict, source.scale_exponent)[1]}")
    if proof is not None and isinstance(cert.diagnostics, MaxMarginDiagnostics):
        return replace(cert, solver=solver, status=Status.NOT_SEPARABLE,
                       diagnostics=replace(cert.diagnostics, farkas=proof))
    return replace(cert, solver=solver)
