"""Lexicographic max-margin (Definition 5 of Nacson et al. 2019), stage by stage.

The sorted margin vector f_(1)(rho theta) <= f_(2) <= ... is maximized lexicographically over the
unit ball, through cumulative ordered values: with S_k(theta) = sum of the k smallest margins,

    stage k:   S_k* = max_{||theta|| <= 1} S_k(theta)   s.t.  S_j(theta) >= S_j* - tol_j,  j < k.

Fixing S_1 .. S_{k-1} at their maxima fixes f_(1) .. f_(k-1), so maximizing S_k maximizes f_(k);
ties (f_(k) = f_(k+1)) need no special handling.  S_k is concave in the margins and has the smooth
epigraph form  S_k(f) = max_{t, s >= 0} k t - sum_n s_n  s.t.  s_n >= t - f_n,  so every stage is a
smooth NLP for IPOPT (one t and N slacks s per stage).  Margins are divided by |gamma*| (the stage-1
value; 1 when |gamma*| < 1e-3) so the stage values are O(1); tol_j = tol * max(1, |S_j*|) in these units.
Homogeneous models need gamma* > 0 (separable data); non-homogeneous ones (log predictors) need not.

Uniqueness: after stage k the kept set {theta : S_j(theta) >= S_j* - tol_j, j <= k} is measured
along a random unit direction r (min and max of r.theta, two IPOPT solves from the stage solution).
A set with positive diameter has positive width along almost every direction, so the solution is
declared unique (and the stages stop) when that width is <= ``uniqueness_tol``.  The test is local
(IPOPT) and the kept set is enlarged by tol: for a curved ball its width scales like sqrt(tol).
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from ._pathtools import Ball, KKTData, certify, safe_normalized_margin, solver_options
from .certificate import Certificate, jsonable
from .errors import LexmarginError, NotSeparableError
from .ipopt import nlp_solver, raise_for_status, run_solver
from .paths import _check_data, margin_path

__all__ = ["LexResult", "LexStage", "lexicographic_max_margin", "sum_smallest"]


def sum_smallest(values, k: int) -> float:
    """Sum of the k smallest entries."""
    return float(np.sum(np.sort(np.asarray(values, dtype=float))[:k]))


@dataclass(frozen=True, eq=False)
class LexStage:
    """Stage k: ``value`` = S_k* (sum of the k smallest margins f_n(rho theta)), ``kth_margin`` = S_k* - S_{k-1}*."""

    k: int
    value: float
    kth_margin: float
    certificate: Certificate
    width: float
    unique: bool

    def to_dict(self) -> dict:
        return {"k": self.k, "value": self.value, "kth_margin": self.kth_margin, "width": self.width,
                "unique": self.unique, "certificate": self.certificate.to_dict()}


@dataclass(frozen=True, eq=False)
class LexResult:
    norm: str
    rho: float
    tol: float
    uniqueness_tol: float
    stages: tuple[LexStage, ...]

    @property
    def theta(self) -> np.ndarray:
        return self.stages[-1].certificate.theta

    @property
    def sorted_margins(self) -> np.ndarray:
        return np.sort(self.stages[-1].certificate.margins)

    @property
    def values(self) -> np.ndarray:
        return np.array([s.value for s in self.stages])

    @property
    def unique(self) -> bool:
        return self.stages[-1].unique

    @property
    def success(self) -> bool:
        return all(s.certificate.success for s in self.stages)

    def to_dict(self) -> dict:
        return {"norm": self.norm, "rho": self.rho, "tol": self.tol, "uniqueness_tol": self.uniqueness_tol,
                "theta": jsonable(self.theta), "sorted_margins": jsonable(self.sorted_margins),
                "values": jsonable(self.values), "unique": self.unique, "success": self.success,
                "stages": [s.to_dict() for s in self.stages]}


class _Layout:
    """z = [theta (P), ball aux (A), t_1..t_k, s_1 (N) .. s_k (N)]."""

    def __init__(self, P, A, N, k):
        self.P, self.A, self.N, self.k = P, A, N, k
        self.t0 = P + A
        self.s0 = P + A + k
        self.size = P + A + k + k * N

    def s(self, j):  # 0-based stage index
        return slice(self.s0 + j * self.N, self.s0 + (j + 1) * self.N)


class _LexProblem:
    """Builds stage and width NLPs; margins F = f(rho theta) / sigma."""

    def __init__(self, model, data, ball: Ball, rho: float, sigma: float, options):
        self.model, self.data, self.ball = model, data, ball
        self.rho, self.sigma, self.options = rho, sigma, options

    def layout(self, k) -> _Layout:
        return _Layout(self.model.n_params, self.ball.n_aux, self.data.n_samples, k)

    # constraints: [s_j >= 0 ; s_j - t_j + F >= 0]_j, [j t_j - sum s_j >= bound_j]_{j<=kept}, ball
    def _constraints(self, z, lay: _Layout, kept: int):
        theta, aux = z[:lay.P], z[lay.P:lay.t0]
        F = self.model.margin_expressions(self.rho * theta, self.data) / self.sigma
        rows = []
        for j in range(lay.k):
            s, t = z[lay.s(j)], z[lay.t0 + j]
            rows += [s, s - t + F]
        rows += [(j + 1) * z[lay.t0 + j] - ca.sum1(z[lay.s(j)]) for j in range(kept)]
        return ca.vertcat(*rows, self.ball.expr(theta, aux))

    def stage_solver(self, k):
        lay = self.layout(k)
        z = ca.SX.sym("z", lay.size)
        objective = -(k * z[lay.t0 + k - 1] - ca.sum1(z[lay.s(k - 1)]))
        return nlp_solver(z, objective, self._constraints(z, lay, k - 1), options=solver_options(self.options),
                          name=f"lex_{k}")

    def width_solver(self, k):
        lay = self.layout(k)
        z, r = ca.SX.sym("z", lay.size), ca.SX.sym("r", lay.P)
        return nlp_solver(z, ca.dot(r, z[:lay.P]), self._constraints(z, lay, k), p=r,
                          options=solver_options(self.options),
                          name=f"lex_width_{k}")

    def lower_bounds(self, lay: _Layout, kept_bounds) -> np.ndarray:
        return np.concatenate([np.zeros(2 * lay.k * lay.N), kept_bounds, np.zeros(self.ball.n_constraints)])

    def scaled_margins(self, theta) -> np.ndarray:
        return self.model.margins(self.rho * theta, self.data) / self.sigma

    def start(self, theta, k) -> np.ndarray:
        """A start for k stages at theta: t_j = j-th smallest margin, s_j = max(0, t_j - F)."""
        F = self.scaled_margins(theta)
        t = np.sort(F)[:k]
        s = np.concatenate([np.maximum(0.0, tj - F) for tj in t])
        return np.concatenate([theta, self.ball.aux_start(theta), t, s])

    def kkt(self, z, lay: _Layout, kept: int, kept_bounds, objective_gradient) -> KKTData:
        """Constraint values and Jacobian in the order of ``_constraints``, from model.margin_jacobian."""
        theta, aux = z[:lay.P], z[lay.P:lay.t0]
        F = self.scaled_margins(theta)
        dF = self.rho * self.model.margin_jacobian(self.rho * theta, self.data) / self.sigma
        blocks = []
        for j in range(lay.k):
            blocks += self._cover_rows(z, lay, j, F, dF)
        blocks += [self._kept_row(z, lay, j, kept_bounds[j]) for j in range(kept)]
        ball = np.zeros((self.ball.n_constraints, lay.size))
        ball[:, :lay.t0] = self.ball.jacobian(theta)
        blocks.append((ball, self.ball.values(theta, aux)))
        return KKTData(objective_gradient, np.vstack([J for J, _ in blocks]), np.concatenate([v for _, v in blocks]))

    @staticmethod
    def _cover_rows(z, lay: _Layout, j, F, dF):
        """s_j >= 0 and s_j - t_j + F >= 0."""
        s, t = z[lay.s(j)], z[lay.t0 + j]
        nonneg = np.zeros((lay.N, lay.size))
        nonneg[:, lay.s(j)] = np.eye(lay.N)
        cover = nonneg.copy()
        cover[:, :lay.P] = dF
        cover[:, lay.t0 + j] = -1.0
        return [(nonneg, s), (cover, s - t + F)]

    @staticmethod
    def _kept_row(z, lay: _Layout, j, bound):
        """(j + 1) t_j - sum s_j >= bound."""
        row = np.zeros((1, lay.size))
        row[0, lay.t0 + j] = j + 1
        row[0, lay.s(j)] = -1.0
        return row, np.array([(j + 1) * z[lay.t0 + j] - z[lay.s(j)].sum() - bound])


def _kept_bound(value: float, tol: float) -> float:
    return value - tol * max(1.0, abs(value))


def _solve_stage(problem: _LexProblem, k: int, theta, kept_bounds):
    lay = problem.layout(k)
    result = run_solver(problem.stage_solver(k), x0=problem.start(theta, k),
                        lbg=problem.lower_bounds(lay, kept_bounds), ubg=np.inf)
    raise_for_status(result, f"lexicographic stage {k}")
    grad = np.zeros(lay.size)
    grad[lay.t0 + k - 1] = -k
    grad[lay.s(k - 1)] = 1.0
    kkt = problem.kkt(result.x, lay, k - 1, kept_bounds, grad)
    return result, kkt, lay


def _width(problem: _LexProblem, k, z, kept_bounds, direction) -> float:
    """max - min of direction . theta over the kept set (NaN when IPOPT cannot settle it)."""
    lay, solver = problem.layout(k), problem.width_solver(k)
    lbg = problem.lower_bounds(lay, kept_bounds)
    ends = []
    for sign in (1.0, -1.0):
        result = run_solver(solver, x0=z, p=sign * direction, lbg=lbg, ubg=np.inf)
        if not result.success:  # inconclusive: the stage is kept as "not shown unique"
            return float("nan")
        ends.append(sign * result.f)
    return max(0.0, ends[1] - ends[0])


def _stage_certificate(problem, k, result, kkt, lay, value, sigma):
    model, data = problem.model, problem.data
    theta = result.x[:lay.P]
    f = model.margins(problem.rho * theta, data)
    rows = np.arange((2 * k - 1) * lay.N, 2 * k * lay.N)  # the cover rows s_k - t_k + F of this stage
    return certify(f"lexicographic_stage_{k}", result, kkt, theta=theta, objective=value,
                   norm=problem.ball.norm, margins=f, normalized_margin=safe_normalized_margin(model, theta, data),
                   margin_rows=rows, constraints=(f"sum of {k} smallest f_n(rho theta) maximal, earlier stages kept "
                                                  f"within tol, {problem.ball.label}"),
                   extras={"rho": problem.rho, "margin_scale": sigma, "sum_smallest_check": sum_smallest(f, k)})


def lexicographic_max_margin(model, data, *, norm: str = "l2", rho: float = 1.0, tol: float = 1e-8,
                             uniqueness_tol: float = 1e-3, max_stages: int | None = None, x0=None, seed: int = 0,
                             options=None) -> LexResult:
    """Lexicographic max-margin over ||theta|| <= 1 at scale rho; one certified stage per ordered margin.

    Stops at the first stage whose kept set has width <= ``uniqueness_tol`` (unique solution), after
    N stages, or after ``max_stages``.
    """
    data = _check_data(data)
    if not (np.isfinite(rho) and rho > 0):
        raise LexmarginError(f"rho must be a finite positive number; got {rho}")
    if not (0 < tol < 1) or not (uniqueness_tol > 0):
        raise LexmarginError(f"tol must be in (0, 1) and uniqueness_tol positive; got {tol}, {uniqueness_tol}")
    N = data.n_samples
    max_stages = N if max_stages is None else int(max_stages)
    if not 1 <= max_stages <= N:
        raise LexmarginError(f"max_stages must be between 1 and N={N}; got {max_stages}")
    first = margin_path(model, data, [rho], norm=norm, x0=x0, seed=seed, options=options).points[0]
    if first.margin <= 0 and model.degree is not None:
        raise NotSeparableError(f"max-min margin at rho={rho:g} is {first.margin:.3g} <= 0: "
                                "the data is not separable by this model")
    sigma = abs(first.margin) if abs(first.margin) > 1e-3 else 1.0
    problem = _LexProblem(model, data, Ball(norm, model.n_params), float(rho), sigma, options)
    direction = np.random.default_rng(seed).standard_normal(model.n_params)
    direction /= np.linalg.norm(direction)
    return LexResult(norm, float(rho), tol, uniqueness_tol,
                     tuple(_stages(problem, first.theta, max_stages, tol, uniqueness_tol, direction)))


def _stages(problem: _LexProblem, theta, max_stages, tol, uniqueness_tol, direction):
    stages, bounds, previous = [], [], 0.0
    for k in range(1, max_stages + 1):
        result, kkt, lay = _solve_stage(problem, k, theta, np.array(bounds))
        value = -result.f
        bounds.append(_kept_bound(value, tol))
        width = _width(problem, k, result.x, np.array(bounds), direction)
        cert = _stage_certificate(problem, k, result, kkt, lay, value * problem.sigma, problem.sigma)
        stages.append(LexStage(k, value * problem.sigma, (value - previous) * problem.sigma, cert, width,
                               width <= uniqueness_tol))
        theta, previous = result.x[:lay.P], value
        if stages[-1].unique:
            break
    return stages
