"""Margin, constrained and regularization paths of the exponential loss and the cross-entropy (Nacson et al. 2019,
section 3).

* margin path       Theta_m(rho) = argmax_{||theta|| <= 1} min_n f_n(rho theta)   (epigraph form; no loss: the
  same path for every loss, hence no ``loss`` argument);
* constrained path  Theta_c(rho) = argmin_{||theta|| <= 1} L(rho theta),  L = sum_n exp(-f_n),
  solved as  min t  s.t.  sum_n exp(c - f_n(rho theta) - s t) <= 1  (``constrained_path_nlp``: offset
  c = gamma and scale s = max(1, |gamma|) at the warm start, so everything stays O(1) at large rho; the older
  lifted log-sum-exp form is ``formulation="lse"``);  ``loss="cross_entropy"``: L = sum_n log(1 + sum_{j != y_n}
  exp(-f_{n,j})) (softmax cross-entropy; the logistic loss on binary data), solved in log space as
  min (log L(rho theta) + c) / s,  log L = logsumexp_n log softplus(logsumexp_j(-f_{n,j}))
  (``cross_entropy_constrained_path_nlp``, derivatives ``crossentropy.group_log_loss``);
* regularization path  argmin_theta L(theta) + lambda ||theta||_2^2,  solved as
  min log(L(theta) + lambda ||theta||^2)  (a log-sum-exp over N + 1 terms); ``loss="cross_entropy"``: L the softmax
  cross-entropy (``crossentropy.py``).

The margins are rows: one per sample, or one per (n, j) for a model with K outputs (``modeling.multiclass``).

Each is one parametric ``NLP`` (rho, or log lambda, as an IPOPT parameter) re-solved along the
schedule, warm-started, with geometric continuation substeps (``max_ratio``); every point is finished
and certified by the shared pipeline.  The ball is any registered norm's ball form.

Precision limits (constrained and regularization paths).  The loss weights softmax(-f_n(rho theta)) live
on the scale 1 of f while the margins grow like rho^degree: IPOPT solves the constrained problem
reliably while the margin scale gamma(rho) stays below ~1e8 (measured on deep linear nets of depth
2-4).  Moreover, in double precision a sample whose margin exceeds the smallest by more than
~ -log(tol) (about 25 for IPOPT's 1e-10) no longer moves the solution.  When the max-margin set is not
unique the tie is decided by such samples, so the path is resolved only while rho * (gap between the
tied margin levels) stays below that; beyond it IPOPT stops anywhere on the flat set.  Each constrained
point reports ``samples_below_double_precision``.

Lemma 3 checked per point:  gamma*(rho) - gamma(rho, theta_c) <= log N (N margin rows), because
exp(-gamma(theta_c)) <= L(rho theta_c) <= L(rho theta_m) <= N exp(-gamma*).  For the cross-entropy the first
step becomes log(1 + exp(-gamma(theta_c))) <= L(rho theta_c) (the minimal row's sample) and the last
L(rho theta_m) <= sum_{n,j} exp(-f_{n,j}) <= x := N exp(-gamma*) (log(1 + u) <= u), so exp(-gamma(theta_c)) <=
expm1(x) and

    gamma* - gamma(theta_c) <= B := gamma* + log(expm1(x)) = log N + log(expm1(x) / x)  in  [log N + x/2, log N + x]

(``cross_entropy_lemma3_bound``): no separability assumption, B -> log N as gamma* grows, B <= log N + 1 once
gamma* >= log N.  (Where gamma(theta_c) >= 0, log(1 + u) >= u log 2 on [0, 1] gives the weaker constant bound
log N + log(1 / log 2); B is the one reported.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import casadi as ca
import numpy as np

from ..errors import LexmarginError
from ..modeling.data import Dataset
from ..modeling.multiclass import MarginRows, problem_data, with_margin_rows
from ..nlp.certificate import Certificate, Diagnostics, SolverInfo, jsonable
from ..nlp.certify import TINY
from ..nlp.finish import finish_or_keep
from ..nlp.ipopt import IpoptResult, IpoptSolver
from ..nlp.nlp import NLP, Point, Rows, extend, split_extended_multipliers
from ..nlp.nnls import nnls
from ..nlp.norms import BALL, Lift, Norm, get_norm
from ..nlp.options import SolveOptions
from ..nlp.status import Status
from ..nlp.threads import single_blas_thread
from ..progress import bar, get_logger, verbose_call
from .crossentropy import (
    casadi_group_log_loss,
    casadi_log_terms,
    check_loss,
    cross_entropy_regularization_nlp,
    exponents,
    group_log_loss,
    group_log_loss_hessian,
    group_size,
)
from .logspace import casadi_logsumexp, logsumexp, softmax
from .margins import (
    InputAffineMargins,
    LiftedSolver,
    ModelMargins,
    deep_linear_widths,
    model_margins,
)
from .pipeline import Solved, assemble_solved, check, ipopt_options, solve
from .schedule import check_schedule, continuation

log = get_logger(__name__)

__all__ = ["Path", "PathDiagnostics", "PathPoint", "constrained_path", "cross_entropy_lemma3_bound",
           "direction_distance", "margin_path", "regularization_path"]

LEMMA3_SLACK = 1e-6
LEMMA2_TOL = 1e-6
WARM_OPTIONS = {"ipopt.mu_init": 1e-4}  # solves start next to the solution: a small initial barrier


@dataclass(frozen=True)
class PathDiagnostics(Diagnostics):
    """A path point's parameter (rho, lambda or gamma), the NLP's internal scale s and what the
    objective is."""

    kind = "path_point"

    parameter_name: str
    parameter: float
    scale: float = 1.0
    objective_is: str = ""


@dataclass(frozen=True, eq=False)
class PathPoint:
    """One point of a path.  ``theta`` is on the unit ball for margin/constrained paths.

    ``margin`` is gamma(rho, theta) = min_n f_n(rho theta) (for the regularization path min_n f_n(theta)).
    Constrained-path points also report gamma*(rho), the Lemma 3 gap gamma* - gamma and its bound ``lemma3_bound``
    (log N for the exponential loss, ``cross_entropy_lemma3_bound`` for the cross-entropy; N margin rows), the margin
    path's point at the same rho, the distance to it and to a reference direction (when given), and the
    samples whose loss weight is below double precision.
    """

    parameter: float
    theta: np.ndarray
    margin: float
    theta_norm: float
    certificate: Certificate
    gamma_star: float | None = None
    lemma3_gap: float | None = None
    lemma3_bound: float | None = None
    distance_to_margin_path: float | None = None
    distance_to_reference: float | None = None
    margin_path_theta: np.ndarray | None = None
    samples_below_double_precision: int | None = None
    block_squared_norms: dict = field(default_factory=dict)

    @property
    def lemma3_holds(self) -> bool | None:
        if self.lemma3_gap is None:
            return None
        return self.lemma3_gap <= self.lemma3_bound + LEMMA3_SLACK * max(1.0, abs(self.gamma_star))

    @property
    def lemma2_holds(self) -> bool | None:
        """Lemma 2 (constrained path): the minimizer lies on the sphere, ||theta_c|| = 1."""
        if self.gamma_star is None:
            return None
        return abs(self.theta_norm - 1.0) <= LEMMA2_TOL

    @property
    def direction(self) -> np.ndarray:
        return self.theta / np.linalg.norm(self.theta)

    def to_dict(self) -> dict:
        keys = ("parameter", "theta", "margin", "theta_norm", "gamma_star", "lemma3_gap", "lemma3_bound",
                "distance_to_margin_path", "distance_to_reference", "margin_path_theta",
                "samples_below_double_precision", "block_squared_norms")
        return {k: jsonable(getattr(self, k)) for k in keys} | {
            "lemma2_holds": self.lemma2_holds, "lemma3_holds": self.lemma3_holds,
            "certificate": self.certificate.to_dict()}


@dataclass(frozen=True, eq=False)
class Path:
    """A path over a schedule (``parameter_name`` "rho", "lambda" or "gamma").  ``loss``: "exp" or
    "cross_entropy" for constrained and regularization paths, None where no loss enters (margin, gamma paths)."""

    kind: str
    norm: str
    parameter_name: str
    points: tuple[PathPoint, ...]
    loss: str | None = None

    @property
    def parameters(self) -> np.ndarray:
        return np.array([p.parameter for p in self.points])

    @property
    def thetas(self) -> np.ndarray:
        return np.array([p.theta for p in self.points])

    @property
    def margins(self) -> np.ndarray:
        return np.array([p.margin for p in self.points])

    @property
    def theta_norms(self) -> np.ndarray:
        return np.array([p.theta_norm for p in self.points])

    def _optional(self, name) -> np.ndarray:
        return np.array([np.nan if getattr(p, name) is None else getattr(p, name) for p in self.points])

    @property
    def distances_to_margin_path(self) -> np.ndarray:
        return self._optional("distance_to_margin_path")

    @property
    def distances_to_reference(self) -> np.ndarray:
        return self._optional("distance_to_reference")

    @property
    def lemma3_gaps(self) -> np.ndarray:
        return self._optional("lemma3_gap")

    @property
    def success(self) -> bool:
        return all(p.certificate.success for p in self.points)

    @property
    def last(self) -> PathPoint:
        return self.points[-1]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "norm": self.norm, "parameter_name": self.parameter_name,
                "parameters": self.parameters.tolist(), "success": self.success,
                "points": [p.to_dict() for p in self.points]} | ({} if self.loss is None else {"loss": self.loss})


# ---- helpers --------------------------------------------------------------------------------------
def check_data(model, data) -> Dataset:
    """The rows a path's margins run over: the Dataset itself, or a multi-class Dataset's margin rows (n, j).
    ``data``: a Dataset, margin rows, or a tuple (X, y) (integer labels read as the model's K classes)."""
    if isinstance(data, tuple) and len(data) == 2:
        data = problem_data(model, data)[0]
    if not isinstance(data, (Dataset, MarginRows)):
        raise LexmarginError(f"expected a lexmargin Dataset, got {type(data).__name__}")
    return model._check_data(data)


def safe_normalized_margin(model, theta, data):
    if model.degree is None or not np.any(theta):
        return None
    return model.normalized_margin(theta, data)


def distance(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)))


def direction_distance(a, b) -> float:
    """Euclidean distance between the l2 directions a/||a|| and b/||b||."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        raise LexmarginError("direction of a zero vector is undefined")
    return float(np.linalg.norm(a / na - b / nb))


def ball_start(model, norm: Norm, init, seed) -> np.ndarray:
    """init (or a seeded random theta) normalized in the ball's norm, inside the ball."""
    if init is None:
        theta = model.random_params(seed=seed)
    else:
        theta = np.asarray(init, dtype=float).reshape(-1)
        if theta.shape != (model.n_params,):
            raise LexmarginError(f"init must have {model.n_params} entries; got {theta.shape}")
    return norm.interior(norm.normalize(theta))


LEVEL_FLOOR = 1e-6      # ``margin_levels``: the floor, a fraction of the margin rows' common scale


def _scale(value: float) -> float:
    return max(1.0, abs(float(value)))


def margin_levels(f_scaled, jacobian, z, others=0.0) -> np.ndarray:
    """Each margin row's natural scale: the size of the terms that cancel in it,

        s_n = max(|f_n / s|, |other_n|, sum_j |d(f_n / s)/dz_j| |z_j|, LEVEL_FLOOR c)

    (``others``: the row's other term, tau or the fixed level, a scalar or one per row).  The third is the size of
    the terms of f_n at the point (for f = A theta: sum_j |A_nj theta_j|), so a row's slack is judged against what
    its own terms resolve, whatever the units of the other features or rows.  c = max over the rows of |f_n / s|,
    |other_n| and ||grad_z (f_n / s)||_2 (how much a margin can change over the unit ball) is the common scale of
    all margin rows: a row whose own terms vanish (theta ~ 0, the optimum on data no direction separates, or a
    row at a degenerate zero such as f = s |s| at s = 0) is judged at LEVEL_FLOOR of it.  So margins below
    tol LEVEL_FLOOR c (1e-14 c at the default tolerance) are not resolved.  (The common scale alone as the level
    let a feature in large units swallow the margins: units 1e-6 / 1e5 made a violation of 1e-6 look like 1e-11.)"""
    f = np.abs(np.asarray(f_scaled, dtype=float)).reshape(-1)
    z = np.asarray(z, dtype=float).reshape(-1)
    J = np.asarray(jacobian, dtype=float).reshape(f.size, z.size)
    other = np.broadcast_to(np.abs(np.asarray(others, dtype=float)), f.shape)
    own = np.maximum(np.maximum(f, np.abs(J) @ np.abs(z)), other)
    gradient = float(np.max(np.linalg.norm(J, axis=1), initial=0.0)) if J.size else 0.0
    common = max(float(np.max(f, initial=0.0)), float(np.max(other, initial=0.0)), gradient)
    return np.maximum(own, max(LEVEL_FLOOR * common, TINY))


def _linear(model) -> bool:
    """Margins linear in theta (``NLP.linear_margins``: the finish always runs)."""
    return bool(model.is_linear_in_params and model.degree == 1)


def _ball_rows(lift: Lift) -> list:
    return [Rows("ball", lift.n_rows)] if lift.n_rows else []


def _push(lift: Lift, H) -> np.ndarray:
    """T^T H T (``Lift.push_hessian``) without the two dense products when T = [I 0] (no split lift)."""
    if lift.split:
        return lift.push_hessian(H)
    P = lift.n_params
    out = np.zeros((lift.n, lift.n))
    out[:P, :P] = H
    return out


def _pad(J, width: int) -> np.ndarray:
    return np.hstack([J, np.zeros((J.shape[0], width))])


# ---- margin path ----------------------------------------------------------------------------------
def margin_path_nlp(source, lift: Lift) -> NLP:
    """max tau  s.t.  f_n(rho theta)/s - tau >= 0,  ||theta|| <= 1;  z = [lift; tau], p = (rho, s).
    ``source``: the margins (``margins.model_margins``)."""
    N, nl = source.n_samples, lift.n

    def expressions(z, p):
        theta, tau = lift.theta(z[:nl]), z[nl]
        f = source.expression(p[0] * theta)
        return -tau, ca.vertcat(f / p[1] - tau, lift.rows(z[:nl]))

    def evaluate(z, p) -> Point:
        rho, s = float(p[0]), float(p[1])
        theta, tau = lift.theta(z[:nl]), float(z[nl])
        f = source.values(rho * theta) / s
        J = lift.pull_back(rho * source.jacobian(rho * theta) / s)
        grad = np.zeros(nl + 1)
        grad[nl] = -1.0
        values = np.concatenate([f - tau, lift.row_values(z[:nl])])
        jacobian = np.vstack([np.hstack([J, -np.ones((N, 1))]), _pad(lift.row_jacobian(z[:nl]), 1)])
        levels = np.concatenate([margin_levels(f, J, z[:nl], tau), lift.row_levels(z[:nl])])
        return Point(-tau, grad, values, jacobian, levels)

    def hessian(z, p, lam):
        rho, s = float(p[0]), float(p[1])
        theta = lift.theta(z[:nl])
        H = np.zeros((nl + 1, nl + 1))
        H[:nl, :nl] = -_push(lift, rho ** 2 * source.weighted_hessian(rho * theta, slice(None), lam[:N]) / s) \
            - lift.row_hessian(z[:nl], lam[N:])
        return H

    lower, upper = lift.bounds()
    return NLP("margin_path", nl + 1, (Rows("margin", N, samples=np.arange(N)), *_ball_rows(lift)),
               np.append(lower, -np.inf), np.append(upper, np.inf), expressions, evaluate,
               theta=lambda z: lift.theta(z[:nl]), hessian=hessian, parameters=2, symbol=source.symbol,
               linear_margins=_linear(source.model))


def lifted_margin_path_nlp(source, lift: Lift) -> NLP:
    """IPOPT's form of ``margin_path_nlp`` for margins f = M u(theta) with few link variables (a model affine in
    its input: u = (beta, c), f = A beta + y c):  z = [lift; tau; u],  rows  M u - tau >= 0 (N),  the ball,
    u - u(rho theta)/s = 0 (link, equalities).  The margin rows are linear in (u, tau): the dense N x P Jacobian
    of the direct form (in IPOPT's factorization and in CasADi's derivatives) becomes N x k plus k x P.  Only
    IPOPT sees it (``margins.LiftedSolver``)."""
    N, nl, k = source.n_samples, lift.n, source.n_link

    def expressions(z, p):
        theta, tau, u = lift.theta(z[:nl]), z[nl], z[nl + 1:]
        return -tau, ca.vertcat(source.lifted_expression(u) - tau, lift.rows(z[:nl]),
                                u - source.link_expression(p[0] * theta) / p[1])

    lower, upper = lift.bounds()
    return NLP("margin_path_lifted", nl + 1 + k, (Rows("margin", N), *_ball_rows(lift), Rows("link", k, equality=True)),
               np.concatenate([lower, np.full(k + 1, -np.inf)]), np.concatenate([upper, np.full(k + 1, np.inf)]),
               expressions, None, theta=lambda z: lift.theta(z[:nl]), parameters=2, symbol=source.symbol)


def _lifts(source, structure: str) -> bool:
    """IPOPT solves a lifted form when the margins factor through fewer link variables than parameters."""
    return structure == "auto" and isinstance(source, InputAffineMargins) and source.n_link < source.model.n_params


def _link_start(source, lift: Lift, nl: int):
    """The lifted start [z0; u(rho theta0)/s] of a path NLP point z0 (p[0] = rho, p[-1] = s)."""
    def start(z0, p):
        theta = lift.theta(z0[:nl])
        return np.concatenate([z0, source.link_values(float(p[0]) * theta) / float(p[-1])])
    return start


class _MarginPath:
    def __init__(self, model, data, norm: Norm, opts: SolveOptions, structure: str = "auto"):
        self.model, self.data, self.norm, self.opts = model, data, norm, opts
        self.lift = norm.lift(BALL, model.n_params)
        self.source = model_margins(model, data, structure)
        self.nlp = margin_path_nlp(self.source, self.lift)
        self.lifted = _lifts(self.source, structure)
        self._solver = None
        # homogeneous f: f(rho theta) = rho^L f(theta), so the solution set does not depend on rho
        self.invariant = structure == "auto" and model.degree is not None
        self.last: tuple[Solved, list] | None = None     # the last certified point and its parameters

    @property
    def solver(self):
        """IPOPT, built on first use (points certified without IPOPT never build it)."""
        if self._solver is None:
            nlp, options = self.nlp, ipopt_options(self.opts)
            self._solver = LiftedSolver(nlp, lifted_margin_path_nlp(self.source, self.lift), np.arange(nlp.m),
                                        _link_start(self.source, self.lift, self.lift.n + 1), options) \
                if self.lifted else IpoptSolver(nlp, options)
        return self._solver

    def start(self, rho: float, theta0):
        """(z0, p) warm-started at theta0."""
        gamma0 = float(np.min(self.source.values(rho * theta0)))
        s = _scale(gamma0)
        return np.append(self.lift.start(theta0), gamma0 / s), [rho, s]

    def reuse(self, rho: float) -> Step | None:
        """A point certified without IPOPT, or None (then IPOPT runs as usual):

        * homogeneous models after the first point: the previous point (the scaled problem does not depend on rho;
          the margin rows' multipliers sum to 1 at every rho and are kept, the ball's are fitted);
        * the first point with the l2 ball and no ``init``, for a model linear in theta and homogeneous
          (f = A theta) or a deep linear net: the l2 max-margin solution normalized (for a homogeneous model the
          margin path's solution at every rho), from ``max_margin`` (the linear pipeline, or the deep linear
          closed form: global minima), with its multipliers normalized to sum 1.
        Either way the point is finished and certified on the margin-path NLP at rho like an IPOPT point."""
        if not self.invariant:
            return None
        N = self.data.n_samples
        if self.last is not None:
            last, _ = self.last
            return self._candidate(rho, last.z[:self.lift.n], last.point.multipliers[:N], "previous_point",
                                   REUSED_MESSAGE)
        if self.opts.init is not None or self.norm.name != "l2":
            return None
        if not (self.model.is_linear_in_params and self.model.degree == 1) \
                and deep_linear_widths(self.model, self.source) is None:
            return None
        started = time.perf_counter()
        from .maxmargin import max_margin

        mm = max_margin(self.model, self.data, self.norm, options=replace(self.opts, raise_on_failure=False))
        total = float(np.sum(mm.multipliers))
        if not mm.success or not np.any(mm.theta) or not total > 0:
            return None
        return self._candidate(rho, self.lift.start(self.norm.normalize(mm.theta)), mm.multipliers / total,
                               "max_margin", MAX_MARGIN_MESSAGE, time.perf_counter() - started)

    def _candidate(self, rho: float, z_lift, margin_multipliers, name: str, message: str,
                   seconds: float = 0.0) -> Step | None:
        """Finish and certify z = [z_lift; tau] at rho, tau = min_n f_n(rho theta) / s, with the margin rows'
        multipliers given (they sum to 1) and those of the ball's rows and bounds fitted (``_fit_others``)."""
        started, nl = time.perf_counter(), self.lift.n
        theta = self.lift.theta(z_lift)
        _, p = self.start(rho, theta)
        z0 = np.append(z_lift, float(np.min(self.source.values(rho * theta))) / p[1])
        nlp = self.nlp
        rows, lower, upper = _fit_others(nlp, z0, p, margin_multipliers, self.opts.tolerances)
        result = IpoptResult(z0, -float(z0[nl]), rows, lower, upper, Status.OPTIMAL, name, 0, 0.0)
        point, report = finish_or_keep(nlp, result, self.opts, p)
        if not report.kkt_met(self.opts.tolerances):
            return None
        solved = Solved(result, point, report, Status.OPTIMAL, self.opts.tolerances)
        self.last = (solved, p)
        theta, cert = self.certificate(rho, p, solved)
        cert = replace(cert, solver=SolverInfo(name, Status.OPTIMAL, "not run (no IPOPT)", 0,
                                               seconds + time.perf_counter() - started, message))
        return Step(theta, cert, self.lift.theta(z0[:nl]), True)

    def certificate(self, rho: float, p, solved: Solved) -> tuple[np.ndarray, Certificate]:
        theta = self.lift.theta(solved.z[:self.lift.n])
        f = self.source.values(rho * theta)
        return theta, _assemble("margin_path", solved, self.model, self.data, self.norm, theta=theta,
                                objective=float(np.min(f)), margins=f,
                                constraints=f"f_n(rho theta) >= gamma, {self.norm.ball_label}",
                                diagnostics=PathDiagnostics("rho", rho, p[1], "gamma(rho) = min_n f_n(rho theta)"))

    def what(self, rho: float) -> str:
        return f"margin path at rho={rho:g}"


REUSED_MESSAGE = ("homogeneous model: the scaled problem does not depend on rho, so the previous point was finished "
                  "and certified at this rho without IPOPT")
MAX_MARGIN_MESSAGE = ("homogeneous model: the normalized l2 max-margin solution (max_margin: the linear pipeline or the "
                      "deep linear closed form) finished and certified at this rho without IPOPT")


def _fit_others(nlp: NLP, z, p, first, tol):
    """Multipliers (rows, lower bounds, upper bounds) of ``nlp`` at z with those of its first rows fixed to
    ``first`` and those of the other active rows (the ball's rows and bounds) fitted by NNLS to the rest of
    the stationarity balance.  Only a proposal: the certificate recomputes every residual."""
    point = nlp.evaluate(z, p)
    ext = extend(nlp, point, z)
    k = len(first)
    lam = np.zeros(ext.values.size)
    lam[:k] = first
    others = np.nonzero((np.arange(lam.size) >= k) & (ext.values / np.maximum(ext.levels, TINY) <= tol.active))[0]
    if others.size:
        rest = point.gradient - ext.jacobian[:k].T @ lam[:k]
        lam[others] = nnls(ext.jacobian[others].T, rest)[0]
    return split_extended_multipliers(nlp, lam)


def _assemble(problem, solved: Solved, model, data, norm, *, theta, objective, margins, constraints,
              diagnostics) -> Certificate:
    return with_margin_rows(assemble_solved(
        problem, solved, theta=theta, objective=objective, norm_label=norm.label, margins=margins,
        normalized_margin=safe_normalized_margin(model, theta, data), n_samples=data.n_samples,
        constraints=constraints, diagnostics=diagnostics), data)


@verbose_call
def margin_path(model, data, rhos, *, norm="l2", max_ratio: float = 2.0, structure: str = "auto",
                options: SolveOptions | None = None, **overrides) -> Path:
    """Theta_m(rho) = argmax_{||theta|| <= 1} min_n f_n(rho theta) for an increasing schedule of rho > 0.

    Args:
        model: the Model.
        data: a Dataset, or (X, y).
        rhos: the schedule: finite, positive, strictly increasing.
        norm: the ball's norm (a name or a Norm).
        max_ratio: warm-start continuation factor (see ``constrained_path``).
        structure: "auto" (default): models affine in their input are evaluated through beta(theta) and
            solved by IPOPT in lifted form, and for homogeneous models (whose solution does not depend on rho)
            each point after the first is the previous one, finished and certified at its rho (IPOPT only
            when that fails); "general": the model's own CasADi functions and IPOPT at every rho.
        options: SolveOptions (init: the first warm start; seed: a random one otherwise; verbose: log each
            rho at INFO, ``lexmargin.progress``).
        **overrides: SolveOptions fields.

    Returns:
        The Path (kind "margin"), one certified point per rho.
    """
    opts = SolveOptions.resolve(options, **overrides)
    data, rhos, norm = check_data(model, data), check_schedule(rhos, "rho"), get_norm(norm)
    with single_blas_thread():
        problem = _MarginPath(model, data, norm, opts, structure)
        warm, points, previous = ball_start(model, norm, opts.init, opts.seed), [], None
        for rho, reported in bar(continuation(rhos, max_ratio), desc="margin path", unit="rho"):
            if not reported and problem.invariant and problem.last is not None:
                continue                  # continuation substeps cannot help: the solution does not move
            result = advance(problem, previous, rho, warm, reported)
            warm, previous = result.warm, rho
            if reported:
                cert = result.certificate
                log.info("margin path: rho=%g status=%s margin=%.6g", rho, cert.status, cert.objective)
                points.append(PathPoint(rho, result.theta, cert.objective, norm.value(result.theta), cert))
    return Path("margin", norm.label, "rho", tuple(points))


MAX_REFINEMENTS = 4


@dataclass(frozen=True, eq=False)
class Step:
    """One solve along a schedule: ``warm`` (IPOPT's own theta) starts the next one; substeps that are
    not reported carry no certificate (IPOPT only) and ``ok`` is IPOPT's convergence."""

    theta: np.ndarray
    certificate: Certificate | None
    warm: np.ndarray
    ok: bool


def step(problem, rho: float, warm, reported: bool) -> Step:
    if reported:
        reused = problem.reuse(rho)
        if reused is not None:
            return reused
    z0, p = problem.start(rho, warm)
    nl = problem.lift.n
    if not reported:
        result = problem.solver.solve(z0, p)
        theta = problem.lift.theta(result.z[:nl])
        return Step(theta, None, theta, bool(result.converged and np.all(np.isfinite(result.z))))
    solved = solve(problem.solver, z0, problem.opts, p=p)
    theta, cert = problem.certificate(rho, p, solved)
    if cert.success:
        problem.last = (solved, p)
    return Step(theta, cert, problem.lift.theta(solved.result.z[:nl]), cert.success)


def advance(problem, previous: float | None, rho: float, warm, reported: bool = True, depth: int = 0) -> Step:
    """Solve at rho from the warm start of ``previous``; a step that fails is retried after a geometric
    midpoint substep (up to MAX_REFINEMENTS halvings of log rho).  A reported point that still fails raises
    when ``raise_on_failure``; an unreported substep that fails only hands on its warm start."""
    result = step(problem, rho, warm, reported)
    if not result.ok and previous is not None and depth < MAX_REFINEMENTS:
        mid = float(np.sqrt(previous * rho))
        middle = advance(problem, previous, mid, warm, False, depth + 1)
        if middle.ok:
            return advance(problem, mid, rho, middle.warm, reported, depth + 1)
    if reported:
        check(result.certificate, problem.opts, problem.what(rho))
    return result


# ---- constrained path ---------------------------------------------------------------------------
def constrained_path_nlp(source, lift: Lift) -> NLP:
    """Epigraph of the log-loss:  min_{theta, t} t  s.t.  (1 - sum_n exp(c - f_n(rho theta) - s t)) / s >= 0  (the
    loss row, level 1/s), ||theta|| <= 1;  z = [lift; t], p = (rho, c, s).

    At the optimum the loss row is active: s t - c = log L(rho theta).  c = gamma at the warm start (an offset:
    the exponents are <= 0 near the solution and t ~ 0), s = max(1, |c|) (t is O(1); dividing the row by s keeps
    its gradient O(1) as the margins grow).  The Hessian of the Lagrangian is lam / s (sum_n E_n g_n g_n^T -
    rho^2 sum_n E_n Hess f_n) with g_n the gradient of the exponent (E_n = exp(c - f_n - s t)): (P + 1) x (P + 1),
    no N x N block.  At the optimum the row's multiplier is 1 and the E_n are the loss weights softmax(-f)."""
    N, nl = source.n_samples, lift.n

    def expressions(z, p):
        theta, t = lift.theta(z[:nl]), z[nl]
        f = source.expression(p[0] * theta)
        return t, ca.vertcat((1 - ca.sum1(ca.exp(p[1] - f - p[2] * t))) / p[2], lift.rows(z[:nl]))

    def parts(z, p):
        rho, c, s = (float(v) for v in p)
        theta, t = lift.theta(z[:nl]), float(z[nl])
        with np.errstate(over="ignore"):      # far from the solution (Newton steps of the finish): inf, not certified
            E = np.exp(c - source.values(rho * theta) - s * t)
        G = np.hstack([lift.pull_back(rho * source.jacobian(rho * theta)), np.full((N, 1), s)])
        return rho, s, theta, E, G

    def evaluate(z, p) -> Point:
        _, s, _, E, G = parts(z, p)
        grad = np.zeros(nl + 1)
        grad[nl] = 1.0
        with np.errstate(invalid="ignore"):
            values = np.concatenate([[(1.0 - np.sum(E)) / s], lift.row_values(z[:nl])])
            jacobian = np.vstack([E @ G / s, _pad(lift.row_jacobian(z[:nl]), 1)])
            # the loss row's gradient is a sum over the samples that cancels at the optimum: its terms' sizes
            terms = np.vstack([E @ np.abs(G) / s, np.abs(jacobian[1:])])
        levels = np.concatenate([[1.0 / s], lift.row_levels(z[:nl])])
        return Point(float(z[nl]), grad, values, jacobian, levels, jacobian_scale=terms)

    def hessian(z, p, lam):
        rho, s, theta, E, G = parts(z, p)
        H = lam[0] / s * (G.T * E) @ G
        H[:nl, :nl] -= lam[0] / s * _push(lift, rho ** 2 * source.weighted_hessian(rho * theta, slice(None), E)) \
            + lift.row_hessian(z[:nl], lam[1:])
        return H

    lower, upper = lift.bounds()
    return NLP("constrained_path", nl + 1, (Rows("loss", 1), *_ball_rows(lift)),
               np.append(lower, -np.inf), np.append(upper, np.inf), expressions, evaluate,
               theta=lambda z: lift.theta(z[:nl]), hessian=hessian, parameters=3, symbol=source.symbol,
               options=dict(WARM_OPTIONS))


def lifted_constrained_path_nlp(source, lift: Lift) -> NLP:
    """IPOPT's form of ``constrained_path_nlp`` with the margins lifted, f = s M u:  z = [lift; t; u],
    rows  (1 - sum_n exp(c - s (M u)_n - s t)) / s >= 0,  the ball,  u - u(rho theta)/s = 0 (link).  For a general
    model u = f(rho theta)/s (M = I, one variable per sample: the exponentials' Hessian is diagonal in u plus
    the t row and column, O(N) entries); for a model affine in its input u = (beta, c)(rho theta)/s (d + 1
    variables).  The sharp softmax lives in u, the model in smooth link rows (as the lifted log-sum-exp form
    before it, without its dense N x N Hessian block)."""
    nl, k = lift.n, source.n_link

    def expressions(z, p):
        theta, t, u = lift.theta(z[:nl]), z[nl], z[nl + 1:]
        loss = (1 - ca.sum1(ca.exp(p[1] - p[2] * source.lifted_expression(u) - p[2] * t))) / p[2]
        return t, ca.vertcat(loss, lift.rows(z[:nl]), u - source.link_expression(p[0] * theta) / p[2])

    lower, upper = lift.bounds()
    return NLP("constrained_path_lifted", nl + 1 + k, (Rows("loss", 1), *_ball_rows(lift), Rows("link", k, equality=True)),
               np.concatenate([lower, np.full(k + 1, -np.inf)]), np.concatenate([upper, np.full(k + 1, np.inf)]),
               expressions, None, theta=lambda z: lift.theta(z[:nl]), parameters=3, symbol=source.symbol,
               options=dict(WARM_OPTIONS))


def lse_constrained_path_nlp(source, lift: Lift) -> NLP:
    """The previous formulation (``formulation="lse"``), kept for comparison: lifted log-sum-exp
    min_{theta, m} (log sum_n exp(-s m_n) + c) / s  s.t.  f_n(rho theta) / s - m_n = 0,  ||theta|| <= 1;
    p = (rho, c, s).  Its objective's Hessian s (diag(w) - w w^T) is a dense N x N block: IPOPT's
    factorization costs at least N^3 per iteration, and so does the certificate (N + P variables).  The
    multipliers of the equalities are the loss weights softmax(-f)."""
    N, nl = source.n_samples, lift.n

    def expressions(z, p):
        theta, m = lift.theta(z[:nl]), z[nl:]
        f = source.expression(p[0] * theta)
        return (casadi_logsumexp(-p[2] * m) + p[1]) / p[2], ca.vertcat(f / p[2] - m, lift.rows(z[:nl]))

    def evaluate(z, p) -> Point:
        rho, c, s = (float(v) for v in p)
        theta, m = lift.theta(z[:nl]), z[nl:]
        f = source.values(rho * theta) / s
        J = lift.pull_back(rho * source.jacobian(rho * theta) / s)
        grad = np.concatenate([np.zeros(nl), -softmax(-s * m)])
        values = np.concatenate([f - m, lift.row_values(z[:nl])])
        jacobian = np.vstack([np.hstack([J, -np.eye(N)]), _pad(lift.row_jacobian(z[:nl]), N)])
        levels = np.concatenate([margin_levels(f, J, z[:nl], m), lift.row_levels(z[:nl])])
        return Point((logsumexp(-s * m) + c) / s, grad, values, jacobian, levels)

    def hessian(z, p, lam):
        rho, _, s = (float(v) for v in p)
        theta, m = lift.theta(z[:nl]), z[nl:]
        w = softmax(-s * m)
        H = np.zeros((nl + N, nl + N))
        H[nl:, nl:] = s * (np.diag(w) - np.outer(w, w))
        H[:nl, :nl] = -_push(lift, rho ** 2 * source.weighted_hessian(rho * theta, slice(None), lam[:N]) / s) \
            - lift.row_hessian(z[:nl], lam[N:])
        return H

    lower, upper = lift.bounds()
    return NLP("constrained_path", nl + N,
               (Rows("margin_link", N, equality=True, samples=np.arange(N)), *_ball_rows(lift)),
               np.concatenate([lower, np.full(N, -np.inf)]), np.concatenate([upper, np.full(N, np.inf)]),
               expressions, evaluate, theta=lambda z: lift.theta(z[:nl]), hessian=hessian, parameters=3,
               symbol=source.symbol, options=dict(WARM_OPTIONS))


def cross_entropy_constrained_path_nlp(source, lift: Lift, g: int) -> NLP:
    """The cross-entropy constrained path in log space:  min_theta (A(f(rho theta)) + c) / s  s.t.  ||theta|| <= 1,
    A = log L = logsumexp_n log softplus(logsumexp_j(-f_{n,j})) over samples of g margin rows (``crossentropy``);
    z = lift, p = (rho, c, s) as for the exponential loss (c = gamma at the warm start, s = max(1, |c|): the objective
    and its gradient stay O(1) as the margins grow).  With G = rho J T (J the rows' Jacobian at rho theta, T the lift)
    and v, q from ``group_log_loss``:

        grad = -G^T v / s,
        Hessian of the Lagrangian = (G^T (diag v - blockdiag(v_n q_n^T) - v v^T) G - rho^2 T^T (sum v Hess f) T) / s
                                    - ball rows,

    n x n (n the lift's size): no N x N block; the ball's multiplier balances the gradient (Lemma 2: ||theta|| = 1)."""
    nl = lift.n

    def expressions(z, p):
        f = source.expression(p[0] * lift.theta(z[:nl]))
        return (casadi_group_log_loss(f, g) + p[1]) / p[2], (lift.rows(z[:nl]) if lift.n_rows else None)

    def parts(z, p):
        rho, c, s = (float(v) for v in p)
        theta = lift.theta(z[:nl])
        A, v, q, _ = group_log_loss(source.values(rho * theta).reshape(-1, g))
        return rho, c, s, theta, A, v, q, lift.pull_back(rho * source.jacobian(rho * theta))

    def evaluate(z, p) -> Point:
        _, c, s, _, A, v, _, G = parts(z, p)
        return Point((A + c) / s, -G.T @ v.reshape(-1) / s, lift.row_values(z[:nl]), lift.row_jacobian(z[:nl]),
                     lift.row_levels(z[:nl]), np.abs(G).T @ v.reshape(-1) / s)

    def hessian(z, p, lam):
        rho, _, s, theta, _, v, q, G = parts(z, p)
        curvature = _push(lift, rho ** 2 * source.weighted_hessian(rho * theta, slice(None), v.reshape(-1)))
        return (group_log_loss_hessian(G, v, q) - curvature) / s - lift.row_hessian(z[:nl], lam)

    lower, upper = lift.bounds()
    return NLP("constrained_path_cross_entropy", nl, tuple(_ball_rows(lift)), lower, upper, expressions, evaluate,
               theta=lambda z: lift.theta(z[:nl]), hessian=hessian, parameters=3, symbol=source.symbol,
               options=dict(WARM_OPTIONS))


def epigraph_cross_entropy_path_nlp(source, lift: Lift, g: int) -> NLP:
    """IPOPT's form of ``cross_entropy_constrained_path_nlp`` (as ``constrained_path_nlp`` for the exponential loss):
    min_{theta, t} t  s.t.  (1 - sum_n exp(a_n(f(rho theta)) + c - s t)) / s >= 0,  the ball;  z = [lift; t],
    a_n = log l_n (``crossentropy.casadi_log_terms``).  At the optimum the row is active, t = (log L + c) / s, its
    multiplier is 1 and the ball's multipliers are those of the log-space form, which the certificate checks
    (``margins.LiftedSolver``).  A log-sum-exp objective is nearly a max at large rho (IPOPT needed hundreds of
    iterations per point where the margins pass ~25); the epigraph keeps it linear."""
    nl = lift.n

    def expressions(z, p):
        a = casadi_log_terms(source.expression(p[0] * lift.theta(z[:nl])), g)
        return z[nl], ca.vertcat((1 - ca.sum1(ca.exp(a + p[1] - p[2] * z[nl]))) / p[2], lift.rows(z[:nl]))

    lower, upper = lift.bounds()
    return NLP("constrained_path_cross_entropy_epigraph", nl + 1, (Rows("loss", 1), *_ball_rows(lift)),
               np.append(lower, -np.inf), np.append(upper, np.inf), expressions,
               None,  # type: ignore[arg-type]  # IPOPT's form only: the certificate evaluates the log-space NLP
               theta=lambda z: lift.theta(z[:nl]), parameters=3, symbol=source.symbol, options=dict(WARM_OPTIONS))


def cross_entropy_lemma3_bound(gamma_star: float, n_rows: int) -> float:
    """B with gamma*(rho) - gamma(rho, theta_c) <= B for the cross-entropy constrained path (R = ``n_rows`` = N (K - 1)):

        B = gamma* + log(expm1(R e^{-gamma*})) = log R + log(expm1(x) / x),  x = R e^{-gamma*},
        log R + x / 2 <= B <= log R + x   (so B -> log R as gamma* -> infinity; B <= log R + 1 once gamma* >= log R).

    From log(1 + e^{-gamma_c}) <= L(rho theta_c) <= L(rho theta_m) <= sum_{n,j} e^{-f_{n,j}(rho theta_m)} <= x
    (the minimal row's sample term, optimality over the ball, log(1 + u) <= u): e^{-gamma_c} <= expm1(x).  No
    separability assumption; infinite (vacuous) when x overflows.

    Args:
        gamma_star: the margin path's gamma*(rho).
        n_rows: the number of margin rows R.

    Returns:
        The bound (a float, possibly inf).
    """
    log_x = float(np.log(n_rows)) - float(gamma_star)
    if log_x > 700.0:
        return float("inf")
    x = float(np.exp(log_x))
    if x == 0.0:
        return float(np.log(n_rows))
    return float(np.log(n_rows)) + x + float(np.log(-np.expm1(-x))) - log_x   # log(expm1(x) / x), no overflow


FORMULATIONS = ("epigraph", "lse")


class _ConstrainedPath:
    invariant = False

    def __init__(self, model, data, norm: Norm, opts: SolveOptions, structure: str = "auto",
                 formulation: str = "epigraph"):
        if formulation not in FORMULATIONS:
            raise LexmarginError(f"unknown constrained-path formulation {formulation!r}; use one of {FORMULATIONS}")
        self.model, self.data, self.norm, self.opts = model, data, norm, opts
        self.formulation = formulation
        self.lift = norm.lift(BALL, model.n_params)
        self.source = model_margins(model, data, structure)
        if formulation == "lse":
            self.solver = IpoptSolver(lse_constrained_path_nlp(self.source, self.lift), ipopt_options(opts))
            return
        nlp = constrained_path_nlp(self.source, self.lift)
        if structure == "auto" and (isinstance(self.source, ModelMargins) or _lifts(self.source, structure)):
            self.solver = LiftedSolver(nlp, lifted_constrained_path_nlp(self.source, self.lift), np.arange(nlp.m),
                                       _link_start(self.source, self.lift, self.lift.n + 1), ipopt_options(opts))
        else:
            self.solver = IpoptSolver(nlp, ipopt_options(opts))

    def start(self, rho: float, theta0):
        """(z0, p) warm-started at theta0."""
        f0 = self.source.values(rho * theta0)
        c = float(np.min(f0))
        s = _scale(c)
        if self.formulation == "lse":
            return np.concatenate([self.lift.start(theta0), f0 / s]), [rho, c, s]
        return np.append(self.lift.start(theta0), (logsumexp(-f0) + c) / s), [rho, c, s]

    def reuse(self, rho: float):
        return None

    def certificate(self, rho: float, p, solved: Solved) -> tuple[np.ndarray, Certificate]:
        theta = self.lift.theta(solved.z[:self.lift.n])
        f = self.source.values(rho * theta)
        if self.formulation == "lse":
            constraints = f"f_n(rho theta) / s = m_n, {self.norm.ball_label}"
        else:
            constraints = f"sum_n exp(c - f_n(rho theta) - s t) <= 1, {self.norm.ball_label}"
        return theta, _assemble("constrained_path", solved, self.model, self.data, self.norm, theta=theta,
                                objective=logsumexp(-f), margins=f, constraints=constraints,
                                diagnostics=PathDiagnostics("rho", rho, p[2], "log L(rho theta)"))

    def what(self, rho: float) -> str:
        return (f"constrained path at rho={rho:g} (beyond a margin scale of ~1e8 the loss weights are resolved "
                "below double precision)")


class _CrossEntropyConstrainedPath:
    """The constrained path of the softmax cross-entropy (``cross_entropy_constrained_path_nlp``): the exponential
    path's schedule, warm starts and certificate with the log-space objective; IPOPT solves its epigraph
    (``epigraph_cross_entropy_path_nlp``) on the model's own CasADi expressions (no lifted margins)."""

    invariant = False

    def __init__(self, model, data, norm: Norm, opts: SolveOptions, structure: str = "auto"):
        self.model, self.data, self.norm, self.opts = model, data, norm, opts
        self.formulation, self.group = "log_space", group_size(data)
        self.lift = norm.lift(BALL, model.n_params)
        self.source = model_margins(model, data, structure)
        nlp = cross_entropy_constrained_path_nlp(self.source, self.lift, self.group)
        self.solver = LiftedSolver(nlp, epigraph_cross_entropy_path_nlp(self.source, self.lift, self.group),
                                   np.arange(1, 1 + nlp.m), lambda z0, p: np.append(z0, nlp.evaluate(z0, p).objective),
                                   ipopt_options(opts))

    def start(self, rho: float, theta0):
        """(z0, p) warm-started at theta0: p = (rho, c, s) with c = min_n f_n(rho theta0), s = max(1, |c|)."""
        c = float(np.min(self.source.values(rho * theta0)))
        return self.lift.start(theta0), [rho, c, _scale(c)]

    def certificate(self, rho: float, p, solved: Solved) -> tuple[np.ndarray, Certificate]:
        theta = self.lift.theta(solved.z[:self.lift.n])
        f = self.source.values(rho * theta)
        return theta, _assemble("constrained_path", solved, self.model, self.data, self.norm, theta=theta,
                                objective=group_log_loss(f.reshape(-1, self.group))[0], margins=f,
                                constraints=self.norm.ball_label,
                                diagnostics=PathDiagnostics("rho", rho, p[2], "log L(rho theta), L the cross-entropy"))

    def reuse(self, rho: float):
        return None

    def what(self, rho: float) -> str:
        return f"cross-entropy constrained path at rho={rho:g}"


def _constrained_problem(model, data, norm: Norm, opts: SolveOptions, structure: str, formulation: str,
                         loss: str) -> _ConstrainedPath | _CrossEntropyConstrainedPath:
    """The constrained path's problem for ``loss`` (the exponential loss's takes ``formulation``)."""
    if check_loss(loss, "constrained") == "exp":
        return _ConstrainedPath(model, data, norm, opts, structure, formulation)
    if formulation != "epigraph":
        raise LexmarginError(f"formulation {formulation!r} is the exponential loss's; the cross-entropy path has one form")
    return _CrossEntropyConstrainedPath(model, data, norm, opts, structure)


def _reference_direction(reference, norm: Norm, n_params: int):
    if reference is None:
        return None
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape != (n_params,):
        raise LexmarginError(f"reference must have {n_params} entries; got {ref.shape}")
    return norm.normalize(ref)


@verbose_call
def constrained_path(model, data, rhos, *, norm="l2", reference=None, max_ratio: float = 2.0,
                     structure: str = "auto", formulation: str = "epigraph", loss: str = "exp",
                     options: SolveOptions | None = None, **overrides) -> Path:
    """Theta_c(rho) = argmin_{||theta|| <= 1} L(rho theta) along an increasing schedule of rho > 0.

    The margin path is solved on the same schedule for gamma*(rho) and the distance to it.  Each point reports
    Lemma 3's gap gamma* - gamma and its bound: log R for the exponential loss (R margin rows), and for the
    cross-entropy B = gamma* + log(expm1(R e^{-gamma*})) in [log R + x/2, log R + x], x = R e^{-gamma*}
    (``cross_entropy_lemma3_bound``).

    Args:
        model: the Model.
        data: a Dataset, or (X, y).
        rhos: the schedule: finite, positive, strictly increasing.
        norm: the ball's norm (a name or a Norm).
        reference: a direction (e.g. the max-margin solution), normalized in the ball's norm; each point
            reports its distance to it.
        max_ratio: warm-start continuation; between schedule points rho grows by at most this factor
            per solve (at large rho the log-sum-exp is nearly a max, and Newton needs a close start).
        structure: as in ``margin_path`` ("general": no lifted IPOPT form, the model's own CasADi functions).
        formulation: "epigraph" (default: min t s.t. sum_n exp(c - f_n(rho theta) - s t) <= 1, certified on
            (theta, t)) or "lse" (the previous lifted log-sum-exp form with one variable and one equality per
            sample and a dense N x N Hessian block; kept for comparison).  The exponential loss's only.
        loss: "exp" (default): L = sum of exp(-f) over the margin rows; "cross_entropy": the softmax
            cross-entropy sum_n log(1 + sum_{j != y_n} exp(-f_nj)) (the logistic loss on binary data), solved as
            min log L in log space (``cross_entropy_constrained_path_nlp``).
        options: SolveOptions (``verbose``: log each rho at INFO, ``lexmargin.progress``).
        **overrides: SolveOptions fields.

    Returns:
        The Path (kind "constrained"), one certified point per rho with the margin path's numbers.
    """
    opts = SolveOptions.resolve(options, **overrides)
    data, rhos, norm = check_data(model, data), check_schedule(rhos, "rho"), get_norm(norm)
    reference = _reference_direction(reference, norm, model.n_params)
    check_loss(loss, "constrained")
    mpath = margin_path(model, data, rhos, norm=norm, max_ratio=max_ratio, structure=structure, options=opts)
    with single_blas_thread():
        problem = _constrained_problem(model, data, norm, opts, structure, formulation, loss)
        warm, points, mpoints, previous = mpath.points[0].theta, [], iter(mpath.points), None
        for rho, reported in bar(continuation(rhos, max_ratio), desc="constrained path", unit="rho"):
            result = advance(problem, previous, rho, warm, reported)
            warm, previous = result.warm, rho
            if reported:
                log.info("constrained path: rho=%g status=%s min margin=%.6g", rho, result.certificate.status,
                         float(np.min(result.certificate.margins)))
                points.append(_constrained_point(rho, result.theta, result.certificate, next(mpoints), reference,
                                                 norm, data.n_samples, loss))
    return Path("constrained", norm.label, "rho", tuple(points), loss)


def _constrained_point(rho, theta, cert, mpoint: PathPoint, reference, norm: Norm, n_samples,
                       loss: str = "exp") -> PathPoint:
    gamma = float(np.min(cert.margins))
    bound = float(np.log(n_samples)) if loss == "exp" else cross_entropy_lemma3_bound(mpoint.margin, n_samples)
    return PathPoint(rho, theta, gamma, norm.value(theta), cert, gamma_star=mpoint.margin,
                     lemma3_gap=mpoint.margin - gamma, lemma3_bound=bound,
                     distance_to_margin_path=distance(theta, mpoint.theta),
                     distance_to_reference=None if reference is None else distance(theta, reference),
                     margin_path_theta=mpoint.theta, samples_below_double_precision=_underflow_count(cert.margins))


def _underflow_count(margins) -> int:
    """Samples whose loss weight exp(-(f_n - min f)) is below double precision relative to the largest."""
    return int(np.sum(np.asarray(margins) - np.min(margins) > -np.log(np.finfo(float).eps)))


# ---- regularization path ------------------------------------------------------------------------
def regularization_nlp(model, data) -> NLP:
    """min log(sum_n exp(-f_n(theta)) + exp(log lambda + log ||theta||^2)) - c;  p = (log lambda, c)."""
    P = model.n_params

    def exponents(theta, log_lam):
        return np.concatenate([-model.margins(theta, data), [log_lam + np.log(theta @ theta)]])

    def expressions(z, p):
        a = ca.vertcat(-model.margin_expressions(z, data), p[0] + ca.log(ca.dot(z, z)))
        return casadi_logsumexp(a) - p[1], None

    def evaluate(z, p) -> Point:
        a = exponents(z, float(p[0]))
        w = softmax(a)
        J = model.margin_jacobian(z, data)
        reg = 2 * z / (z @ z)
        grad = -J.T @ w[:-1] + w[-1] * reg
        scale = np.abs(J).T @ w[:-1] + w[-1] * np.abs(reg)
        return Point(logsumexp(a) - float(p[1]), grad, np.zeros(0), np.zeros((0, P)), np.zeros(0), scale)

    def hessian(z, p, lam):
        w = softmax(exponents(z, float(p[0])))
        sq = z @ z
        gradients = np.vstack([-model.margin_jacobian(z, data), 2 * z / sq])
        mean = gradients.T @ w
        H = -model.weighted_hessian(z, data, w[:-1]) + w[-1] * (2 * np.eye(P) / sq - 4 * np.outer(z, z) / sq ** 2)
        return H + (gradients.T * w) @ gradients - np.outer(mean, mean)

    return NLP("regularization_path", P, (), np.full(P, -np.inf), np.full(P, np.inf), expressions, evaluate,
               theta=lambda z: z, hessian=hessian, parameters=2)


@verbose_call
def regularization_path(model, data, lambdas, *, reference=None, loss: str = "exp",
                        options: SolveOptions | None = None, **overrides) -> Path:
    """argmin_theta L(theta) + lambda ||theta||_2^2 along a strictly decreasing schedule lambda -> 0.

    Args:
        model: the Model.
        data: a Dataset, or (X, y).
        lambdas: the schedule: finite, positive, strictly decreasing.
        reference: a direction to compare with (distance between l2-normalized directions).
        loss: "exp" (default): L = sum of exp(-f) over the margin rows (the multi-class exponential loss
            sum_n sum_{j != y_n} exp(-f_nj) for a K-output model); "cross_entropy": the softmax cross-entropy
            sum_n log(1 + sum_{j != y_n} exp(-f_nj)) (the logistic loss on binary data; ``problems/crossentropy.py``).
        options: SolveOptions (``verbose``: log each lambda at INFO, ``lexmargin.progress``).
        **overrides: SolveOptions fields.

    Returns:
        The Path (kind "regularization"), one certified point per lambda.
    """
    opts = SolveOptions.resolve(options, **overrides)
    data, lambdas = check_data(model, data), check_schedule(lambdas, "lambda", increasing=False)
    nlp = regularization_nlp(model, data) if check_loss(loss) == "exp" else cross_entropy_regularization_nlp(model, data)
    solver = IpoptSolver(nlp, ipopt_options(opts))
    theta = model.random_params(seed=opts.seed) if opts.init is None else np.asarray(opts.init, dtype=float).reshape(-1)
    if theta.shape != (model.n_params,) or not np.any(theta):
        raise LexmarginError(f"init must be a non-zero vector with {model.n_params} entries")
    points, l2 = [], get_norm("l2")
    for lam in bar(lambdas, desc="regularization path", unit="lambda"):
        log_lam = float(np.log(lam))
        shift = float(np.max(exponents(loss, model, data, theta, log_lam)))
        solved = solve(solver, theta, opts, p=[log_lam, shift])
        theta = solved.z
        f = model.margins(theta, data)
        a = exponents(loss, model, data, theta, log_lam)
        cert = check(_assemble("regularization_path", solved, model, data, l2, theta=theta, objective=logsumexp(a),
                               margins=f, constraints="none (unconstrained)",
                               diagnostics=PathDiagnostics("lambda", float(lam), 1.0,
                                                           "log(L(theta) + lambda ||theta||^2)")),
                     opts, f"regularization path at lambda={lam:g}")
        log.info("regularization path: lambda=%g status=%s min margin=%.6g", lam, cert.status, float(np.min(f)))
        ref = None if reference is None else direction_distance(theta, reference)
        points.append(PathPoint(float(lam), theta, float(np.min(f)), float(np.linalg.norm(theta)), cert,
                                distance_to_reference=ref))
    return Path("regularization", "l2", "lambda", tuple(points), loss)
