"""Activation regions of two-layer ReLU nets as convex programs (the group-lasso form of Pilanci & Ergen 2020).

For f_n(theta) = y_n sum_j a_j sigma(v_j . x_n) with sigma(z) = max(z, 0) (or leaky, max(z, slope z)), fix an
activation region, D_nj = 1 where v_j . x_n > 0, and the output signs s_j = sign(a_j).  In the region
a_j sigma(v_j . x_n) = s_j c_nj (u_j . x_n) with u_j = |a_j| v_j and c_nj = D_nj + slope (1 - D_nj) (the region's
unit slopes), and ||v_j||^2 + a_j^2 >= 2 |a_j| ||v_j|| = 2 ||u_j||, with equality when the unit is balanced
(|a_j| = ||v_j||).  So the region's max-margin problem

    min ||theta||^2  s.t.  f_n(theta) >= 1,  (2 D_nj - 1) v_j . x_n >= 0          (a nonconvex NLP in (V, a))

has, over points with these output signs, the value of the second-order cone program

    min 2 sum_j t_j  s.t.  y_n sum_j s_j c_nj u_j . x_n >= 1,  (2 D_nj - 1) u_j . x_n >= 0,  ||u_j|| <= t_j,

and theta = (v_j = u_j / sqrt ||u_j||, a_j = s_j sqrt ||u_j||) attains it.  The SOCP is convex: an interior-point
solver (Clarabel) finds the region's optimum over those signs in a number of iterations that does not depend on
the degenerate directions of the NLP (v_j -> 0 with a_j -> inf at a fixed product), which stall IPOPT there.

Clarabel only proposes the point.  The max-margin pipeline judges it like any region solution: the multipliers
are fitted on the original NLP's rows and every residual, the region's KKT conditions and the Clarke check on
the unrestricted problem are recomputed (``MaxMarginProblem._judge_region``).  Which models: those whose numeric
kernel (``numeric.kernel_for``, verified against the model's own margins) is a layered net with one hidden layer
of ReLU or leaky-ReLU units and no bias; for any other model ``TwoLayerRegions.of`` returns None and the regions
are solved by IPOPT.  Clarabel is a dependency of lexmargin; if it cannot be imported the same fallback applies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..nlp.status import Status

SOLVER_TOL = 1e-10         # Clarabel's gap and feasibility tolerances (the certificate's own are judged afterwards)
RETRY_TOL = 1e-8          # ... and once more at Clarabel's default tolerance where it claims infeasibility
SEED_MARGINS = 300        # first working set: the lowest margins ...
SEED_SIGNS = 1000         # ... and the sign rows nearest to their kink
ROUND_ROWS = 500          # violated rows added per round, of each kind
MAX_ROUNDS = 30
VIOLATION = 1e-9          # relative violation that puts a row into the working set
TINY = np.finfo(float).tiny
DEAD_UNIT = 1e-7          # units with ||u_j|| below this times the largest are dead (exactly 0): an interior point leaves
#                           them at its tolerance, and sqrt of that would give v_j, a_j far from 0 (the certificate judges)

# Clarabel's statuses in ours.  AlmostSolved and InsufficientProgress (degenerate regions at a tight tolerance) leave
# a point worth judging: the pipeline finishes and certifies it like any other; the rest have no point to judge.
STATUS_MAP = {"Solved": Status.OPTIMAL, "AlmostSolved": Status.INACCURATE, "InsufficientProgress": Status.INACCURATE,
              "MaxIterations": Status.MAX_ITERATIONS, "MaxTime": Status.MAX_TIME, "PrimalInfeasible": Status.INFEASIBLE,
              "AlmostPrimalInfeasible": Status.INFEASIBLE}


def _clarabel():
    try:
        import clarabel
    except ImportError:          # pragma: no cover - a dependency; the IPOPT route is the fallback
        return None
    return clarabel


@dataclass(frozen=True)
class ConvexRegionSolution:
    """The SOCP's proposal: theta (balanced units), the solver's status in our vocabulary and its own words."""

    theta: np.ndarray
    status: Status
    return_status: str
    iterations: int
    seconds: float


@dataclass(frozen=True)
class TwoLayerRegions:
    """The convex form of the activation regions of one two-layer net on one dataset (see the module docstring).

    ``v_columns`` (H, d) and ``a_columns`` (H,): where V and a sit in the flat theta.
    """

    X: np.ndarray
    y: np.ndarray
    v_columns: np.ndarray
    a_columns: np.ndarray

    @classmethod
    def of(cls, model, data) -> TwoLayerRegions | None:
        """The convex form for ``model`` if its verified numeric kernel is a bias-free one-hidden-layer ReLU or
        leaky-ReLU net and Clarabel is importable; None otherwise (the regions go to IPOPT)."""
        if _clarabel() is None or getattr(data, "n_classes", None) is not None:
            return None
        from ..numeric.kernels import LayeredNetKernel, kernel_for
        try:
            kernel = kernel_for(model, data.X, data.y)
        except Exception:  # noqa: BLE001  no verified fast kernel: not this family
            return None
        if not (isinstance(kernel, LayeredNetKernel) and len(kernel.hidden) == 1 and not kernel.first_bias
                and kernel.activation in ("relu", "leaky_relu")):
            return None
        V, a = kernel.arrays[0], kernel.arrays[-1]
        columns = np.arange(kernel.n_params)
        return cls(np.asarray(data.X, dtype=float), np.asarray(data.y, dtype=float),
                   columns[V.columns].reshape(V.shape), columns[a.columns])

    @property
    def width(self) -> int:
        return int(self.a_columns.size)

    def applies_to(self, region) -> bool:
        """Whether the region's units are this net's hidden units in order (its pattern is (N, H))."""
        return region.active.shape == (self.X.shape[0], self.width)

    def output_signs(self, theta) -> np.ndarray:
        """s_j = sign(a_j), +1 for a_j = 0."""
        return np.where(np.asarray(theta)[self.a_columns] < 0, -1.0, 1.0)

    def solve(self, region, signs, theta, time_limit: float | None = None) -> ConvexRegionSolution:
        """The region's SOCP (``region.slopes`` = c, ``region.signs`` = 2 D - 1) with output signs ``signs``.

        On working sets of its rows: the margin rows and sign rows nearest to binding at ``theta`` (the walk's
        point) first; after each solve the violated rows of all N (1 + H) join (the most violated first) until
        none is violated, so the result is the SOCP's on every row.  At N = 10^4, width 8, one solve on all 90000
        rows took about 6 s, most of them rows that cannot bind.
        """
        started = time.perf_counter()
        rows = _RowSets(self, np.asarray(region.slopes, float), np.asarray(region.signs, float), signs)
        margin_rows, sign_rows = rows.seed(np.asarray(theta, dtype=float))
        iterations, name, u = 0, "Unsolved", np.zeros(self.v_columns.shape)
        for _ in range(MAX_ROUNDS):
            left = None if time_limit is None else time_limit - (time.perf_counter() - started)
            if left is not None and left <= 0:
                name = "MaxTime"
                break
            solution = self._solve_rows(rows, margin_rows, sign_rows, left, SOLVER_TOL)
            name, iterations = str(solution.status).split(".")[-1], iterations + int(solution.iterations)
            if STATUS_MAP.get(name, Status.FAILED) in (Status.INFEASIBLE, Status.FAILED):
                # a tight tolerance can make Clarabel call a degenerate (but feasible: it holds the walk's point)
                # region infeasible or stall numerically; its default tolerances are tried once more
                solution = self._solve_rows(rows, margin_rows, sign_rows, left, RETRY_TOL)
                name, iterations = str(solution.status).split(".")[-1], iterations + int(solution.iterations)
            if STATUS_MAP.get(name, Status.FAILED) not in (Status.OPTIMAL, Status.INACCURATE):
                break
            u = np.asarray(solution.x, dtype=float)[:self.v_columns.size].reshape(self.v_columns.shape)
            more_margins, more_signs = rows.violated(u, margin_rows, sign_rows)
            if not (more_margins.size or more_signs.size):
                break
            margin_rows, sign_rows = np.union1d(margin_rows, more_margins), np.union1d(sign_rows, more_signs)
        return ConvexRegionSolution(self.theta(u, signs), STATUS_MAP.get(name, Status.FAILED), f"clarabel: {name}",
                                    iterations, time.perf_counter() - started)

    @staticmethod
    def _solve_rows(rows, margin_rows, sign_rows, time_limit, tol: float):
        clarabel = _clarabel()
        P, q, A, b, cones = rows.program(margin_rows, sign_rows)
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = tol
        if time_limit is not None:
            settings.time_limit = max(float(time_limit), 0.01)
        return clarabel.DefaultSolver(P, q, A, b, cones, settings).solve()

    def theta(self, u, signs) -> np.ndarray:
        """The balanced point of u: v_j = u_j / sqrt||u_j||, a_j = s_j sqrt||u_j|| (dead units exactly 0)."""
        norms = np.linalg.norm(u, axis=1)
        norms = np.where(norms > DEAD_UNIT * float(np.max(norms, initial=0.0)), norms, 0.0)
        root = np.sqrt(norms)
        theta = np.zeros(int(max(self.v_columns.max(), self.a_columns.max())) + 1)
        theta[self.v_columns] = np.where(root[:, None] > 0, u / np.where(root > 0, root, 1.0)[:, None], 0.0)
        theta[self.a_columns] = signs * root
        return theta


class _RowSets:
    """The SOCP's rows of one region and output signs: margin rows y_n sum_j s_j c_nj u_j . x_n >= 1 and sign rows
    (2 D_nj - 1) u_j . x_n >= 0, posed on subsets (row working sets)."""

    def __init__(self, form: TwoLayerRegions, slopes, pattern_signs, signs):
        self.X = form.X
        self.H = form.width
        self.v_columns, self.a_columns = form.v_columns, form.a_columns
        self.d = self.X.shape[1]
        self.coefficients = form.y[:, None] * signs[None, :] * slopes          # (N, H): f_n = sum_j C_nj u_j . x_n
        self.pattern_signs = pattern_signs                                     # (N, H)

    def values(self, u):
        """(margins (N,), sign values (N H,)) at u (H, d)."""
        Z = self.X @ u.T
        return np.sum(self.coefficients * Z, axis=1), (self.pattern_signs * Z).ravel()

    def seed(self, theta):
        """The rows nearest to binding at theta: the SEED_MARGINS lowest margins of u = |a| v and the SEED_SIGNS
        smallest relative sign slacks |v_j . x_n| / (||v_j|| ||x_n||)."""
        N, H = self.coefficients.shape
        V, a = theta[self.v_columns], theta[self.a_columns]
        Z = self.X @ V.T
        margins = np.sum(self.coefficients * np.abs(a)[None, :] * Z, axis=1)
        scale = np.linalg.norm(self.X, axis=1)[:, None] * np.maximum(np.linalg.norm(V, axis=1), TINY)[None, :]
        relative = (np.abs(Z) / np.maximum(scale, TINY)).ravel()
        return (np.sort(np.argsort(margins, kind="stable")[:min(N, SEED_MARGINS)]),
                np.sort(np.argsort(relative, kind="stable")[:min(N * H, SEED_SIGNS)]))

    def violated(self, u, margin_rows, sign_rows):
        """The rows off the working sets that u violates beyond VIOLATION (relative to the margin level 1 and to
        the largest |u_j . x_n|), at most ROUND_ROWS of each kind, the most violated first."""
        margins, signs = self.values(u)
        scale = max(float(np.max(np.abs(self.X @ u.T), initial=0.0)), TINY)
        out = []
        for slack, kept in ((margins - 1.0, margin_rows), (signs / scale, sign_rows)):
            slack = slack.copy()
            slack[kept] = np.inf
            bad = np.nonzero(slack < -VIOLATION)[0]
            out.append(np.sort(bad[np.argsort(slack[bad], kind="stable")[:ROUND_ROWS]]))
        return out[0], out[1]

    def program(self, margin_rows, sign_rows):
        """Clarabel's (P, q, A, b, cones) for x = [u (H d, row-major), t (H)]: A x + s = b, s in the cones."""
        X, H, d = self.X, self.H, self.d
        n_u, n = H * d, H * d + H
        m, k = margin_rows.size, sign_rows.size
        margin = (self.coefficients[margin_rows][:, :, None] * X[margin_rows][:, None, :]).reshape(m, n_u)
        samples, units = np.divmod(sign_rows, H)
        sign_values = (self.pattern_signs[samples, units][:, None] * X[samples]).ravel()
        sign_cols = (units[:, None] * d + np.arange(d)[None, :]).ravel()
        soc_rows = np.arange(H * (d + 1))
        soc_cols = np.concatenate([np.concatenate([[n_u + j], j * d + np.arange(d)]) for j in range(H)])
        A = sp.vstack([sp.hstack([sp.csc_matrix(-margin), sp.csc_matrix((m, H))]),
                       sp.csc_matrix((-sign_values, (np.repeat(np.arange(k), d), sign_cols)), shape=(k, n)),
                       sp.csc_matrix((-np.ones(soc_rows.size), (soc_rows, soc_cols)), shape=(soc_rows.size, n))],
                      format="csc")
        b = np.concatenate([-np.ones(m), np.zeros(k + H * (d + 1))])
        q = np.concatenate([np.zeros(n_u), np.full(H, 2.0)])
        clarabel = _clarabel()
        cones = [clarabel.NonnegativeConeT(m + k)] + [clarabel.SecondOrderConeT(d + 1) for _ in range(H)]
        return sp.csc_matrix((n, n)), q, A, b, cones


__all__ = ["ConvexRegionSolution", "STATUS_MAP", "TwoLayerRegions"]

