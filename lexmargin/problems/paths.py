"""Margin, constrained and regularization paths of the exponential loss (Nacson et al. 2019, section 3).

* margin path       Theta_m(rho) = argmax_{||theta|| <= 1} min_n f_n(rho theta)   (epigraph form);
* constrained path  Theta_c(rho) = argmin_{||theta|| <= 1} L(rho theta),  L = sum_n exp(-f_n),
  solved as  min log L(rho theta)  in lifted form: variables (theta, m) with m_n = f_n(rho theta) / s
  (equality rows) and objective (logsumexp(-s m) + c) / s (log-sum-exp shifted by its max, offset
  c = gamma and scale s = max(1, |gamma|) at the warm start), so it stays O(1) at large rho;
* regularization path  argmin_theta L(theta) + lambda ||theta||_2^2,  solved as
  min log(L(theta) + lambda ||theta||^2)  (a log-sum-exp over N + 1 terms).

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

Lemma 3 checked per point:  gamma*(rho) - gamma(rho, theta_c) <= log N, because
exp(-gamma(theta_c)) <= L(rho theta_c) <= L(rho theta_m) <= N exp(-gamma*).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import casadi as ca
import numpy as np

from ..errors import LexmarginError
from ..modeling.data import Dataset
from ..nlp.certificate import Certificate, Diagnostics, jsonable
from ..nlp.certify import TINY
from ..nlp.ipopt import IpoptSolver
from ..nlp.nlp import NLP, Point, Rows
from ..nlp.norms import BALL, Lift, Norm, get_norm
from ..nlp.options import SolveOptions
from .logspace import casadi_logsumexp, logsumexp, softmax
from .pipeline import Solved, assemble_solved, check, ipopt_options, solve
from .schedule import check_schedule, continuation

__all__ = ["Path", "PathDiagnostics", "PathPoint", "constrained_path", "direction_distance", "margin_path",
           "regularization_path"]

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
    Constrained-path points also report gamma*(rho), the Lemma 3 gap gamma* - gamma <= log N, the margin
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
    """A path over a schedule (``parameter_name`` "rho", "lambda" or "gamma")."""

    kind: str
    norm: str
    parameter_name: str
    points: tuple[PathPoint, ...]

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
                "points": [p.to_dict() for p in self.points]}


# ---- helpers --------------------------------------------------------------------------------------
def check_data(model, data) -> Dataset:
    if not isinstance(data, Dataset):
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


def _scale(value: float) -> float:
    return max(1.0, abs(float(value)))


def margin_level(f_scaled, jacobian, *others) -> float:
    """The natural scale of scaled-margin rows over the unit ball: the largest |f_n / s|, |epigraph
    variable|, and ||grad_theta f_n / s|| (how much a margin can change over the ball: at theta = 0 the
    values alone are all 0)."""
    gradient = float(np.max(np.linalg.norm(jacobian, axis=1), initial=0.0)) if np.size(jacobian) else 0.0
    return max(float(np.max(np.abs(f_scaled), initial=0.0)), gradient, *[abs(float(o)) for o in others], TINY)


def _ball_rows(lift: Lift) -> list:
    return [Rows("ball", lift.n_rows)] if lift.n_rows else []


def _pad(J, width: int) -> np.ndarray:
    return np.hstack([J, np.zeros((J.shape[0], width))])


# ---- margin path ----------------------------------------------------------------------------------
def margin_path_nlp(model, data, lift: Lift) -> NLP:
    """max tau  s.t.  f_n(rho theta)/s - tau >= 0,  ||theta|| <= 1;  z = [lift; tau], p = (rho, s)."""
    N, nl = data.n_samples, lift.n

    def expressions(z, p):
        theta, tau = lift.theta(z[:nl]), z[nl]
        f = model.margin_expressions(p[0] * theta, data)
        return -tau, ca.vertcat(f / p[1] - tau, lift.rows(z[:nl]))

    def evaluate(z, p) -> Point:
        rho, s = float(p[0]), float(p[1])
        theta, tau = lift.theta(z[:nl]), float(z[nl])
        f = model.margins(rho * theta, data) / s
        J = lift.pull_back(rho * model.margin_jacobian(rho * theta, data) / s)
        grad = np.zeros(nl + 1)
        grad[nl] = -1.0
        values = np.concatenate([f - tau, lift.row_values(z[:nl])])
        jacobian = np.vstack([np.hstack([J, -np.ones((N, 1))]), _pad(lift.row_jacobian(z[:nl]), 1)])
        levels = np.concatenate([np.full(N, margin_level(f, J, tau)), lift.row_levels(z[:nl])])
        return Point(-tau, grad, values, jacobian, levels)

    def hessian(z, p, lam):
        rho, s = float(p[0]), float(p[1])
        theta = lift.theta(z[:nl])
        H = np.zeros((nl + 1, nl + 1))
        H[:nl, :nl] = -lift.push_hessian(rho ** 2 * model.weighted_hessian(rho * theta, data, lam[:N]) / s) \
            - lift.row_hessian(z[:nl], lam[N:])
        return H

    lower, upper = lift.bounds()
    return NLP("margin_path", nl + 1, (Rows("margin", N, samples=np.arange(N)), *_ball_rows(lift)),
               np.append(lower, -np.inf), np.append(upper, np.inf), expressions, evaluate,
               theta=lambda z: lift.theta(z[:nl]), hessian=hessian, parameters=2)


class _MarginPath:
    def __init__(self, model, data, norm: Norm, opts: SolveOptions):
        self.model, self.data, self.norm, self.opts = model, data, norm, opts
        self.lift = norm.lift(BALL, model.n_params)
        self.solver = IpoptSolver(margin_path_nlp(model, data, self.lift), ipopt_options(opts))

    def start(self, rho: float, theta0):
        """(z0, p) warm-started at theta0."""
        gamma0 = float(np.min(self.model.margins(rho * theta0, self.data)))
        s = _scale(gamma0)
        return np.append(self.lift.start(theta0), gamma0 / s), [rho, s]

    def certificate(self, rho: float, p, solved: Solved) -> tuple[np.ndarray, Certificate]:
        theta = self.lift.theta(solved.z[:self.lift.n])
        f = self.model.margins(rho * theta, self.data)
        return theta, _assemble("margin_path", solved, self.model, self.data, self.norm, theta=theta,
                                objective=float(np.min(f)), margins=f,
                                constraints=f"f_n(rho theta) >= gamma, {self.norm.ball_label}",
                                diagnostics=PathDiagnostics("rho", rho, p[1], "gamma(rho) = min_n f_n(rho theta)"))

    def what(self, rho: float) -> str:
        return f"margin path at rho={rho:g}"


def _assemble(problem, solved: Solved, model, data, norm, *, theta, objective, margins, constraints,
              diagnostics) -> Certificate:
    return assemble_solved(problem, solved, theta=theta, objective=objective, norm_label=norm.label, margins=margins,
                           normalized_margin=safe_normalized_margin(model, theta, data), n_samples=data.n_samples,
                           constraints=constraints, diagnostics=diagnostics)


def margin_path(model, data, rhos, *, norm="l2", max_ratio: float = 2.0, options: SolveOptions | None = None,
                **overrides) -> Path:
    """Theta_m(rho) = argmax_{||theta|| <= 1} min_n f_n(rho theta) for an increasing schedule of rho > 0.

    Args:
        norm: the ball's norm (a name or a Norm).
        max_ratio: warm-start continuation factor (see ``constrained_path``).
        options: SolveOptions (init: the first warm start; seed: a random one otherwise), or overrides.
    """
    opts = SolveOptions.resolve(options, **overrides)
    data, rhos, norm = check_data(model, data), check_schedule(rhos, "rho"), get_norm(norm)
    problem = _MarginPath(model, data, norm, opts)
    warm, points, previous = ball_start(model, norm, opts.init, opts.seed), [], None
    for rho, reported in continuation(rhos, max_ratio):
        result = advance(problem, previous, rho, warm, reported)
        warm, previous = result.warm, rho
        if reported:
            cert = result.certificate
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
    z0, p = problem.start(rho, warm)
    nl = problem.lift.n
    if not reported:
        result = problem.solver.solve(z0, p)
        theta = problem.lift.theta(result.z[:nl])
        return Step(theta, None, theta, bool(result.converged and np.all(np.isfinite(result.z))))
    solved = solve(problem.solver, z0, problem.opts, p=p)
    theta, cert = problem.certificate(rho, p, solved)
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
def constrained_path_nlp(model, data, lift: Lift) -> NLP:
    """Lifted log-sum-exp:  min_{theta, m} (log sum_n exp(-s m_n) + c) / s
    s.t.  f_n(rho theta) / s - m_n = 0,  ||theta|| <= 1;   p = (rho, c, s).

    The value is (log L(rho theta) + c) / s; c = gamma at the warm start (an offset: the objective is ~0
    near the solution), s = max(1, |c|) (scaled margins are O(1)).  Keeping the sharp softmax in the
    variables m and the model in smooth rows solves further in rho than the composed
    logsumexp(-f(rho theta)) (measured on depth-3 linear nets: up to a margin scale rho^3 gamma ~ 7e7 against
    ~2e6).  The rows are equalities: as inequalities the barrier pushes the m_n of negligible samples far
    down.  Their multipliers are the loss weights softmax(-f)."""
    N, nl = data.n_samples, lift.n

    def expressions(z, p):
        theta, m = lift.theta(z[:nl]), z[nl:]
        f = model.margin_expressions(p[0] * theta, data)
        return (casadi_logsumexp(-p[2] * m) + p[1]) / p[2], ca.vertcat(f / p[2] - m, lift.rows(z[:nl]))

    def evaluate(z, p) -> Point:
        rho, c, s = (float(v) for v in p)
        theta, m = lift.theta(z[:nl]), z[nl:]
        f = model.margins(rho * theta, data) / s
        J = lift.pull_back(rho * model.margin_jacobian(rho * theta, data) / s)
        grad = np.concatenate([np.zeros(nl), -softmax(-s * m)])
        values = np.concatenate([f - m, lift.row_values(z[:nl])])
        jacobian = np.vstack([np.hstack([J, -np.eye(N)]), _pad(lift.row_jacobian(z[:nl]), N)])
        levels = np.concatenate([np.full(N, margin_level(f, J, *m)), lift.row_levels(z[:nl])])
        return Point((logsumexp(-s * m) + c) / s, grad, values, jacobian, levels)

    def hessian(z, p, lam):
        rho, _, s = (float(v) for v in p)
        theta, m = lift.theta(z[:nl]), z[nl:]
        w = softmax(-s * m)
        H = np.zeros((nl + N, nl + N))
        H[nl:, nl:] = s * (np.diag(w) - np.outer(w, w))
        H[:nl, :nl] = -lift.push_hessian(rho ** 2 * model.weighted_hessian(rho * theta, data, lam[:N]) / s) \
            - lift.row_hessian(z[:nl], lam[N:])
        return H

    lower, upper = lift.bounds()
    return NLP("constrained_path", nl + N,
               (Rows("margin_link", N, equality=True, samples=np.arange(N)), *_ball_rows(lift)),
               np.concatenate([lower, np.full(N, -np.inf)]), np.concatenate([upper, np.full(N, np.inf)]),
               expressions, evaluate, theta=lambda z: lift.theta(z[:nl]), hessian=hessian, parameters=3,
               options=dict(WARM_OPTIONS))


class _ConstrainedPath:
    def __init__(self, model, data, norm: Norm, opts: SolveOptions):
        self.model, self.data, self.norm, self.opts = model, data, norm, opts
        self.lift = norm.lift(BALL, model.n_params)
        self.solver = IpoptSolver(constrained_path_nlp(model, data, self.lift), ipopt_options(opts))

    def start(self, rho: float, theta0):
        """(z0, p) warm-started at theta0."""
        f0 = self.model.margins(rho * theta0, self.data)
        c = float(np.min(f0))
        s = _scale(c)
        return np.concatenate([self.lift.start(theta0), f0 / s]), [rho, c, s]

    def certificate(self, rho: float, p, solved: Solved) -> tuple[np.ndarray, Certificate]:
        theta = self.lift.theta(solved.z[:self.lift.n])
        f = self.model.margins(rho * theta, self.data)
        return theta, _assemble("constrained_path", solved, self.model, self.data, self.norm, theta=theta,
                                objective=logsumexp(-f), margins=f,
                                constraints=f"f_n(rho theta) / s = m_n, {self.norm.ball_label}",
                                diagnostics=PathDiagnostics("rho", rho, p[2], "log L(rho theta)"))

    def what(self, rho: float) -> str:
        return (f"constrained path at rho={rho:g} (beyond a margin scale of ~1e8 the loss weights are resolved "
                "below double precision)")


def _reference_direction(reference, norm: Norm, n_params: int):
    if reference is None:
        return None
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape != (n_params,):
        raise LexmarginError(f"reference must have {n_params} entries; got {ref.shape}")
    return norm.normalize(ref)


def constrained_path(model, data, rhos, *, norm="l2", reference=None, max_ratio: float = 2.0,
                     options: SolveOptions | None = None, **overrides) -> Path:
    """Theta_c(rho) = argmin_{||theta|| <= 1} L(rho theta) along an increasing schedule of rho > 0.

    The margin path is solved on the same schedule for gamma*(rho) and the distance to it.
    ``reference``: a direction (e.g. the max-margin solution), normalized in the ball's norm.
    ``max_ratio``: warm-start continuation; between schedule points rho grows by at most this factor
    per solve (at large rho the log-sum-exp is nearly a max, and Newton needs a close start).
    """
    opts = SolveOptions.resolve(options, **overrides)
    data, rhos, norm = check_data(model, data), check_schedule(rhos, "rho"), get_norm(norm)
    reference = _reference_direction(reference, norm, model.n_params)
    mpath = margin_path(model, data, rhos, norm=norm, max_ratio=max_ratio, options=opts)
    problem = _ConstrainedPath(model, data, norm, opts)
    warm, points, mpoints, previous = mpath.points[0].theta, [], iter(mpath.points), None
    for rho, reported in continuation(rhos, max_ratio):
        result = advance(problem, previous, rho, warm, reported)
        warm, previous = result.warm, rho
        if reported:
            points.append(_constrained_point(rho, result.theta, result.certificate, next(mpoints), reference, norm,
                                             data.n_samples))
    return Path("constrained", norm.label, "rho", tuple(points))


def _constrained_point(rho, theta, cert, mpoint: PathPoint, reference, norm: Norm, n_samples) -> PathPoint:
    gamma = float(np.min(cert.margins))
    return PathPoint(rho, theta, gamma, norm.value(theta), cert, gamma_star=mpoint.margin,
                     lemma3_gap=mpoint.margin - gamma, lemma3_bound=float(np.log(n_samples)),
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


def regularization_path(model, data, lambdas, *, reference=None, options: SolveOptions | None = None,
                        **overrides) -> Path:
    """argmin_theta L(theta) + lambda ||theta||_2^2 along a strictly decreasing schedule lambda -> 0.

    ``reference``: a direction to compare with (distance between l2-normalized directions).
    """
    opts = SolveOptions.resolve(options, **overrides)
    data, lambdas = check_data(model, data), check_schedule(lambdas, "lambda", increasing=False)
    nlp = regularization_nlp(model, data)
    solver = IpoptSolver(nlp, ipopt_options(opts))
    theta = model.random_params(seed=opts.seed) if opts.init is None else np.asarray(opts.init, dtype=float).reshape(-1)
    if theta.shape != (model.n_params,) or not np.any(theta):
        raise LexmarginError(f"init must be a non-zero vector with {model.n_params} entries")
    points, l2 = [], get_norm("l2")
    for lam in lambdas:
        log_lam = float(np.log(lam))
        shift = float(np.max(np.concatenate([-model.margins(theta, data), [log_lam + np.log(theta @ theta)]])))
        solved = solve(solver, theta, opts, p=[log_lam, shift])
        theta = solved.z
        f = model.margins(theta, data)
        a = np.append(-f, log_lam + np.log(theta @ theta))
        cert = check(_assemble("regularization_path", solved, model, data, l2, theta=theta, objective=logsumexp(a),
                               margins=f, constraints="none (unconstrained)",
                               diagnostics=PathDiagnostics("lambda", float(lam), 1.0,
                                                           "log(L(theta) + lambda ||theta||^2)")),
                     opts, f"regularization path at lambda={lam:g}")
        ref = None if reference is None else direction_distance(theta, reference)
        points.append(PathPoint(float(lam), theta, float(np.min(f)), float(np.linalg.norm(theta)), cert,
                                distance_to_reference=ref))
    return Path("regularization", "l2", "lambda", tuple(points))
