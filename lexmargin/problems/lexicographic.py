"""Lexicographic max-margin (Definition 5 of Nacson et al. 2019) by progressive max-min.

The sorted margin vector f_(1)(rho theta) <= f_(2) <= ... is maximized lexicographically over the unit
ball by the textbook sequential algorithm (lexicographic max-min, "water filling"): with F the samples
already fixed at their levels v_n and R the rest,

    stage k:   tau_k* = max_{theta, tau} tau   s.t.  f_n(rho theta)/sigma >= tau  (n in R),
                                                     f_n(rho theta)/sigma  = v_n  (n in F),  ||theta|| <= 1,

after which the free samples with a positive multiplier are fixed at v_n = tau_k* (their margin cannot
grow without lowering a smaller one) and the next stage starts.  Earlier stages are kept exactly
(equality rows, never "value - tol"), every stage is finished and certified by the shared pipeline, and
a stage fixes at least one sample (its multipliers sum to 1).  For convex stages (models linear in
theta) the result is the lexicographic max-min solution; for nonconvex models it is a local one.
Margins are divided by sigma = |tau_1*| (1 when |tau_1*| < 1e-3) so stage values are O(1).
Homogeneous models need tau_1* > 0 (separable data); non-homogeneous ones (log predictors) need not.

Uniqueness: the stages stop when the solution is unique: the stage's second-order check is strict (the
reduced Hessian is positive definite on the null space of its support gradients, so the stage optimum
is an isolated point and so is the set of lexicographic optima), or the set of points achieving all
levels so far has width <= ``uniqueness_tol``: its two ends along a random unit direction r (the minimizer
and maximizer of r.theta: two solves, each end certified optimal with a strict second-order check; otherwise
the width is not trusted and the stages go on, which is always correct: a further stage only fixes more
samples at their levels) differ by at most ``uniqueness_tol`` in theta (Euclidean; theta in the unit ball)
and in every margin relative to the first level (``spread``).  This is a test, not a proof: a set whose
ends along r are close while it extends elsewhere (r nearly orthogonal to a face) still reads narrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import casadi as ca
import numpy as np

from ..errors import LexmarginError, NotSeparableError
from ..nlp.certificate import Certificate, Diagnostics, jsonable
from ..nlp.certify import TINY
from ..nlp.ipopt import IpoptSolver
from ..nlp.nlp import NLP, Point, Rows
from ..nlp.norms import BALL, Lift, get_norm
from ..nlp.options import SolveOptions
from ..nlp.threads import single_blas_thread
from ..progress import get_logger, verbose_call
from ..modeling.multiclass import with_margin_rows
from .paths import _ball_rows, _linear, _pad, check_data, margin_levels, margin_path, safe_normalized_margin
from .pipeline import assemble_solved, check, ipopt_options, solve

log = get_logger(__name__)

__all__ = ["LexResult", "LexStage", "LexStageDiagnostics", "lexicographic_max_margin", "sum_smallest"]


def sum_smallest(values, k: int) -> float:
    """Sum of the k smallest entries."""
    return float(np.sum(np.sort(np.asarray(values, dtype=float))[:k]))


@dataclass(frozen=True)
class LexStageDiagnostics(Diagnostics):
    kind = "lexicographic_stage"

    rho: float
    margin_scale: float
    level: float
    fixed_before: tuple[int, ...]
    fixed_now: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class LexStage:
    """Stage k: ``level`` = tau_k* sigma (the k-th distinct level of the sorted margins f_n(rho theta)),
    ``fixed``: the samples fixed at this level, ``width``: of the remaining solution set (``spread`` of its ends
    along a random direction; nan: not measured or inconclusive), ``unique``: the lexicographic solution is
    determined after this stage."""

    k: int
    level: float
    fixed: tuple[int, ...]
    certificate: Certificate
    width: float
    unique: bool

    def to_dict(self) -> dict:
        return {"k": self.k, "level": self.level, "fixed": list(self.fixed), "width": jsonable(self.width),
                "unique": self.unique, "certificate": self.certificate.to_dict()}


@dataclass(frozen=True, eq=False)
class LexResult:
    norm: str
    rho: float
    uniqueness_tol: float
    stages: tuple[LexStage, ...]

    @property
    def theta(self) -> np.ndarray:
        return self.stages[-1].certificate.theta

    @property
    def sorted_margins(self) -> np.ndarray:
        return np.sort(self.stages[-1].certificate.margins)

    @property
    def levels(self) -> np.ndarray:
        return np.array([s.level for s in self.stages])

    @property
    def unique(self) -> bool:
        return self.stages[-1].unique

    @property
    def success(self) -> bool:
        return all(s.certificate.success for s in self.stages)

    def to_dict(self) -> dict:
        return {"norm": self.norm, "rho": self.rho, "uniqueness_tol": self.uniqueness_tol,
                "theta": jsonable(self.theta), "sorted_margins": jsonable(self.sorted_margins),
                "levels": jsonable(self.levels), "unique": self.unique, "success": self.success,
                "stages": [s.to_dict() for s in self.stages]}


class _Stages:
    """Stage and width NLPs on F = f(rho theta) / sigma; z = [ball lift; tau] (stages) or [ball lift] (width)."""

    def __init__(self, model, data, lift: Lift, rho: float, sigma: float):
        self.model, self.data, self.lift, self.rho, self.sigma = model, data, lift, rho, sigma

    def scaled_margins(self, theta) -> np.ndarray:
        return self.model.margins(self.rho * theta, self.data) / self.sigma

    def nlp(self, free, fixed, levels, *, width: bool = False, tau=None) -> NLP:
        """Stage NLP (max tau) or width NLP (min r.theta with tau fixed at ``tau``, p = r)."""
        model, data, lift, rho, sigma = self.model, self.data, self.lift, self.rho, self.sigma
        nl, free, fixed = lift.n, np.asarray(free, dtype=int), np.asarray(fixed, dtype=int)
        levels = np.asarray(levels, dtype=float)
        n = nl if width else nl + 1
        rows = [Rows("margin", free.size, samples=free), Rows("fixed_margin", fixed.size, equality=True,
                                                               samples=fixed), *_ball_rows(lift)]

        def expressions(z, p):
            theta = lift.theta(z[:nl])
            F = model.margin_expressions(rho * theta, data) / sigma
            t = tau if width else z[nl]
            objective = ca.dot(p, theta) if width else -z[nl]
            return objective, ca.vertcat(F[free.tolist()] - t, F[fixed.tolist()] - levels, lift.rows(z[:nl]))

        def evaluate(z, p) -> Point:
            theta = lift.theta(z[:nl])
            F = self.scaled_margins(theta)
            dF = lift.pull_back(rho * model.margin_jacobian(rho * theta, data) / sigma)
            t = tau if width else float(z[nl])
            tail = 0 if width else 1
            grad = np.zeros(n)
            if width:
                grad[:nl] = lift.pull_back(np.asarray(p, dtype=float)[None, :])[0]
            else:
                grad[nl] = -1.0
            column = -np.ones((free.size, tail))
            jacobian = np.vstack([np.hstack([dF[free], column]), _pad(dF[fixed], tail),
                                  _pad(lift.row_jacobian(z[:nl]), tail)])
            values = np.concatenate([F[free] - t, F[fixed] - levels, lift.row_values(z[:nl])])
            # free and fixed margin rows share one common scale (``margin_levels`` over all of them, as the margin path)
            margin = np.concatenate([free, fixed])
            others = np.concatenate([np.full(free.size, t), np.broadcast_to(levels, fixed.shape)])
            levels_ = np.concatenate([margin_levels(F[margin], dF[margin], z[:nl], others), lift.row_levels(z[:nl])])
            objective = float(grad[:nl] @ z[:nl]) if width else -t
            return Point(objective, grad, values, jacobian, levels_)

        def hessian(z, p, lam):
            theta = lift.theta(z[:nl])
            weights = np.zeros(data.n_samples)
            weights[free] += lam[:free.size]
            weights[fixed] += lam[free.size:free.size + fixed.size]
            H = np.zeros((n, n))
            H[:nl, :nl] = -lift.push_hessian(rho ** 2 * model.weighted_hessian(rho * theta, data, weights) / sigma) \
                - lift.row_hessian(z[:nl], lam[free.size + fixed.size:])
            return H

        lower, upper = lift.bounds()
        if not width:
            lower, upper = np.append(lower, -np.inf), np.append(upper, np.inf)
        return NLP("lex_width" if width else "lex_stage", n, tuple(r for r in rows if r.size), lower, upper,
                   expressions, evaluate, theta=lambda z: lift.theta(z[:nl]), hessian=hessian,
                   parameters=model.n_params if width else 0, linear_margins=_linear(model))


def _width(stages: _Stages, free, fixed, levels, tau, z, direction, opts: SolveOptions) -> float:
    """The spread of the set achieving the levels so far between its two ends along ``direction`` r (the minimizer
    and the maximizer of r.theta): ``spread`` of those ends (nan when IPOPT cannot settle one: the stage is then
    "not shown unique")."""
    solver = IpoptSolver(stages.nlp(free, fixed, levels, width=True, tau=tau), ipopt_options(opts))
    ends = []
    for sign in (1.0, -1.0):
        solved = solve(solver, z[:stages.lift.n], opts, p=sign * direction)
        # an end that is not a certified strict local minimum proves nothing (IPOPT can stop at the
        # maximizer of r.theta on a curved set: a KKT point too)
        if not solved.status.success or solved.report.second_order.strict is not True:
            return float("nan")
        ends.append(stages.lift.theta(solved.z))
    return spread(stages, *ends)


def spread(stages: _Stages, low, high) -> float:
    """max(||theta_+ - theta_-||_2, max_n |F_n(theta_+) - F_n(theta_-)|) of two points of the remaining set (F the
    margins divided by sigma, so relative to the first level; theta in the unit ball, so relative to its radius).
    Not r.(theta_+ - theta_-) alone: that reads a segment almost orthogonal to the random r as a point (a 0.01 long
    segment read 4.5e-4 in R^4), nor theta alone: with columns in units 3e4 a set 2.4e-7 wide in theta moved the
    margins by a third of their level.  Along a segment the two ends are its end points whatever r (unless r is
    exactly orthogonal to it), so the distance is its length."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    moved = np.abs(stages.scaled_margins(high) - stages.scaled_margins(low))
    return max(float(np.linalg.norm(high - low)), float(np.max(moved, initial=0.0)))


@verbose_call
def lexicographic_max_margin(model, data, *, norm="l2", rho: float = 1.0, uniqueness_tol: float = 1e-3,
                             max_stages: int | None = None, options: SolveOptions | None = None,
                             **overrides) -> LexResult:
    """Lexicographic max-margin over ||theta|| <= 1 at scale rho; one certified stage per level.

    Stops when the solution is unique (see the module docstring), when every sample is fixed, or after
    ``max_stages``.

    Args:
        model: the Model.
        data: a Dataset, or (X, y).
        norm: the ball's norm (a name or a Norm).
        rho: the scale at which margins f_n(rho theta) are compared (matters for non-homogeneous models).
        uniqueness_tol: the width of the remaining solution set below which the solution counts as unique.
        max_stages: at most this many stages (default N).
        options: SolveOptions (init: a start theta; seed: random start and direction; verbose: log each
            stage at INFO, ``lexmargin.progress``).
        **overrides: SolveOptions fields.

    Returns:
        The LexResult: one certified stage per level.
    """
    opts = SolveOptions.resolve(options, **overrides)
    data, norm = check_data(model, data), get_norm(norm)
    if not (np.isfinite(rho) and rho > 0):
        raise LexmarginError(f"rho must be a finite positive number; got {rho}")
    if not uniqueness_tol > 0:
        raise LexmarginError(f"uniqueness_tol must be positive; got {uniqueness_tol}")
    N = data.n_samples
    max_stages = N if max_stages is None else int(max_stages)
    if not 1 <= max_stages <= N:
        raise LexmarginError(f"max_stages must be between 1 and N={N}; got {max_stages}")
    with single_blas_thread():
        return _lexicographic(model, data, norm, float(rho), uniqueness_tol, max_stages, opts)


def _lexicographic(model, data, norm, rho: float, uniqueness_tol: float, max_stages: int,
                   opts: SolveOptions) -> LexResult:
    """lexicographic_max_margin on checked inputs: the margin path's point at rho, then the stages."""
    first = margin_path(model, data, [rho], norm=norm, options=opts).points[0]
    if first.margin <= 0 and model.degree is not None:
        raise NotSeparableError(f"max-min margin at rho={rho:g} is {first.margin:.3g} <= 0: "
                                "the data is not separable by this model")
    sigma = abs(first.margin) if abs(first.margin) > 1e-3 else 1.0
    stages = _Stages(model, data, norm.lift(BALL, model.n_params), float(rho), sigma)
    direction = np.random.default_rng(opts.seed).standard_normal(model.n_params)
    direction /= np.linalg.norm(direction)
    return LexResult(norm.label, float(rho), uniqueness_tol,
                     tuple(_run_stages(stages, first.theta, max_stages, uniqueness_tol, direction, opts)))


def _run_stages(stages: _Stages, theta, max_stages, uniqueness_tol, direction, opts: SolveOptions):
    model, data, lift = stages.model, stages.data, stages.lift
    fixed, levels, out = np.zeros(0, dtype=int), np.zeros(0), []
    for k in range(1, max_stages + 1):
        free = np.setdiff1d(np.arange(data.n_samples), fixed)
        nlp = stages.nlp(free, fixed, levels)
        F = stages.scaled_margins(theta)
        z0 = np.append(lift.start(theta), np.min(F[free]))
        solved = solve(IpoptSolver(nlp, ipopt_options(opts)), z0, opts)
        theta = lift.theta(solved.z[:lift.n])
        tau = float(solved.z[lift.n])
        lam = solved.point.multipliers[:free.size]
        now = free[lam > opts.tolerances.support * max(float(np.max(lam, initial=0.0)), TINY)]
        f = model.margins(stages.rho * theta, data)
        cert = check(with_margin_rows(assemble_solved(
            f"lexicographic_stage_{k}", solved, theta=theta, objective=tau * stages.sigma, norm_label=lift.norm.label,
            margins=f, normalized_margin=safe_normalized_margin(model, theta, data), n_samples=data.n_samples,
            constraints=(f"max the smallest free f_n(rho theta); samples fixed by earlier stages held at their levels "
                         f"(equalities); {lift.norm.ball_label}"),
            diagnostics=LexStageDiagnostics(stages.rho, stages.sigma, tau * stages.sigma, tuple(fixed.tolist()),
                                            tuple(now.tolist()))), data), opts, f"lexicographic stage {k}")
        fixed, levels = np.concatenate([fixed, now]), np.concatenate([levels, np.full(now.size, tau)])
        done = fixed.size == data.n_samples
        strict = cert.second_order.strict is True
        width = float("nan") if done or strict else _width(
            stages, np.setdiff1d(np.arange(data.n_samples), fixed), fixed, levels, tau, solved.z, direction, opts)
        unique = done or strict or bool(width <= uniqueness_tol)
        out.append(LexStage(k, tau * stages.sigma, tuple(now.tolist()), cert, width, unique))
        log.info("lexicographic stage %d: level=%.6g status=%s fixed %d of %d samples, unique=%s", k,
                 tau * stages.sigma, cert.status, fixed.size, data.n_samples, unique)
        if unique or done:
            break
    return out
