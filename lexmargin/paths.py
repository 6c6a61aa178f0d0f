"""Margin, constrained and regularization paths of the exponential loss (Nacson et al. 2019, section 3).

* margin path       Theta_m(rho) = argmax_{||theta|| <= 1} min_n f_n(rho theta)   (epigraph form);
* constrained path  Theta_c(rho) = argmin_{||theta|| <= 1} L(rho theta),  L = sum_n exp(-f_n),
  solved as  min log L(rho theta)  in lifted form: variables (theta, m) with m_n = f_n(rho theta) / s
  (equality constraints) and objective (logsumexp(-s m) + c) / s (log-sum-exp shifted by its max,
  offset c = gamma and scale s = max(1, |gamma|) at the warm start), so it stays O(1) at large rho;
* regularization path  argmin_theta L(theta) + lambda ||theta||_2^2,  solved as
  min log(L(theta) + lambda ||theta||^2)  (a log-sum-exp over N + 1 terms).

Each solver is built once with rho (or log lambda) as an IPOPT parameter and re-run along the
schedule, warm-started from the previous point, with geometric continuation substeps (``max_ratio``).
Every point carries a ``Certificate`` whose KKT residuals are recomputed in numpy from
``model.margin_jacobian``.

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

from ._pathtools import (
    Ball,
    KKTData,
    casadi_logsumexp,
    certify,
    check_schedule,
    continuation,
    direction_distance,
    distance,
    logsumexp,
    random_start,
    safe_normalized_margin,
    softmax,
    solver_options,
)
from .certificate import Certificate, jsonable
from .modeling.data import Dataset
from .errors import LexmarginError
from .ipopt import nlp_solver, raise_for_status, run_solver

__all__ = ["Path", "PathPoint", "constrained_path", "direction_distance", "margin_path", "regularization_path"]

LEMMA3_SLACK = 1e-6
LEMMA2_TOL = 1e-6
WARM_OPTIONS = {"ipopt.mu_init": 1e-4}  # solves start next to the solution: a small initial barrier


@dataclass(frozen=True, eq=False)
class PathPoint:
    """One point of a path.  ``theta`` is on the unit ball for margin/constrained paths.

    ``margin`` is gamma(rho, theta) = min_n f_n(rho theta) (for the regularization path min_n f_n(theta)).
    Constrained-path points also report gamma*(rho), the Lemma 3 gap gamma* - gamma <= log N and the
    distance to the margin path point and to a reference direction (when given).
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
    extras: dict = field(default_factory=dict)

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
                "distance_to_margin_path", "distance_to_reference", "extras")
        return {k: jsonable(getattr(self, k)) for k in keys} | {
            "lemma2_holds": self.lemma2_holds, "lemma3_holds": self.lemma3_holds,
            "certificate": self.certificate.to_dict()}


@dataclass(frozen=True, eq=False)
class Path:
    """A path over a schedule (``parameter_name`` "rho" or "lambda")."""

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


def _check_data(data) -> Dataset:
    if not isinstance(data, Dataset):
        raise LexmarginError(f"expected a lexmargin Dataset, got {type(data).__name__}")
    return data


def _start(model, ball: Ball, x0, seed) -> np.ndarray:
    if x0 is None:
        return random_start(model, ball, seed)
    x0 = np.asarray(x0, dtype=float).reshape(-1)
    if x0.shape != (model.n_params,):
        raise LexmarginError(f"x0 must have {model.n_params} entries; got {x0.shape}")
    return ball.interior_start(ball.normalize(x0))


def _scale(value: float) -> float:
    return max(1.0, abs(float(value)))


# ---- margin path --------------------------------------------------------------------------------
class _MarginPathProblem:
    """max tau  s.t.  f_n(rho theta)/s - tau >= 0, ||theta|| <= 1;  p = (rho, s)."""

    def __init__(self, model, data, ball: Ball, options):
        self.model, self.data, self.ball = model, data, ball
        P, A = model.n_params, ball.n_aux
        z, p = ca.SX.sym("z", P + A + 1), ca.SX.sym("p", 2)
        theta, aux, tau = z[:P], z[P:P + A], z[P + A]
        f = model.margin_expressions(p[0] * theta, data)
        g = ca.vertcat(f / p[1] - tau, ball.expr(theta, aux))
        self.solver = nlp_solver(z, -tau, g, p=p, options=solver_options(options), name="margin_path")

    def solve(self, rho: float, theta0) -> tuple[np.ndarray, Certificate]:
        model, data, ball = self.model, self.data, self.ball
        gamma0 = float(np.min(model.margins(rho * theta0, data)))
        s = _scale(gamma0)
        z0 = np.concatenate([theta0, ball.aux_start(theta0), [gamma0 / s]])
        result = run_solver(self.solver, x0=z0, p=[rho, s], lbg=0.0, ubg=np.inf)
        raise_for_status(result, f"margin path at rho={rho:g}")
        return self._certificate(rho, s, result)

    def _certificate(self, rho, s, result):
        model, data, ball = self.model, self.data, self.ball
        P, A, N = model.n_params, ball.n_aux, data.n_samples
        theta, aux, tau = result.x[:P], result.x[P:P + A], result.x[P + A]
        f = model.margins(rho * theta, data)
        Jf = np.hstack([rho * model.margin_jacobian(rho * theta, data) / s, np.zeros((N, A)), -np.ones((N, 1))])
        Jb = np.hstack([ball.jacobian(theta), np.zeros((ball.n_constraints, 1))])
        grad = np.zeros(P + A + 1)
        grad[-1] = -1.0
        kkt = KKTData(grad, np.vstack([Jf, Jb]), np.concatenate([f / s - tau, ball.values(theta, aux)]))
        cert = certify("margin_path", result, kkt, theta=theta, objective=float(np.min(f)), norm=ball.norm,
                       margins=f, normalized_margin=safe_normalized_margin(model, theta, data),
                       margin_rows=np.arange(N), constraints=f"f_n(rho theta) >= gamma, {ball.label}",
                       extras={"rho": rho, "scale": s, "epigraph_gamma": s * tau})
        return theta, cert


def margin_path(model, data, rhos, *, norm: str = "l2", x0=None, seed: int = 0, max_ratio: float = 2.0,
                options=None) -> Path:
    """Theta_m(rho) = argmax_{||theta|| <= 1} min_n f_n(rho theta) for an increasing schedule of rho > 0.

    ``max_ratio``: warm-start continuation factor (see ``constrained_path``).
    """
    data, rhos = _check_data(data), check_schedule(rhos, "rho")
    ball = Ball(norm, model.n_params)
    problem = _MarginPathProblem(model, data, ball, options)
    theta, points = _start(model, ball, x0, seed), []
    for rho, reported in continuation(rhos, max_ratio):
        theta, cert = problem.solve(rho, theta)
        if reported:
            points.append(PathPoint(rho, theta, cert.objective, ball.norm_of(theta), cert))
    return Path("margin", norm, "rho", tuple(points))


# ---- constrained path ---------------------------------------------------------------------------
class _ConstrainedPathProblem:
    """Lifted log-sum-exp:  min_{theta, m} (log sum_n exp(-s m_n) + c) / s
    s.t.  f_n(rho theta) / s - m_n = 0,  ||theta|| <= 1;   p = (rho, c, s).

    The value is (log L(rho theta) + c) / s; c = gamma at the warm start (an offset: the objective is ~0
    near the solution), s = max(1, |c|) (scaled margins are O(1)).  Keeping the sharp softmax in the
    variables m and the model in smooth constraints solves further in rho than the composed
    logsumexp(-f(rho theta)) (measured on depth-3 linear nets: up to a margin scale rho^3 gamma ~ 7e7 against ~2e6).  The
    rows are equalities: as inequalities the barrier pushes the m_n of negligible samples far down.
    Their multipliers are the loss weights softmax(-f)."""

    def __init__(self, model, data, ball: Ball, options):
        self.model, self.data, self.ball = model, data, ball
        P, A, N = model.n_params, ball.n_aux, data.n_samples
        z, p = ca.SX.sym("z", P + A + N), ca.SX.sym("p", 3)
        theta, aux, m = z[:P], z[P:P + A], z[P + A:]
        f = model.margin_expressions(p[0] * theta, data)
        objective = (casadi_logsumexp(-p[2] * m) + p[1]) / p[2]
        g = ca.vertcat(f / p[2] - m, ball.expr(theta, aux))
        self.solver = nlp_solver(z, objective, g, p=p, options=solver_options({**WARM_OPTIONS, **(options or {})}),
                                 name="constrained_path")

    def solve(self, rho: float, theta0) -> tuple[np.ndarray, Certificate]:
        model, data, ball = self.model, self.data, self.ball
        f0 = model.margins(rho * theta0, data)
        c = float(np.min(f0))
        s = _scale(c)
        z0 = np.concatenate([theta0, ball.aux_start(theta0), f0 / s])
        N = data.n_samples
        ubg = np.concatenate([np.zeros(N), np.full(ball.n_constraints, np.inf)])
        result = run_solver(self.solver, x0=z0, p=[rho, c, s], lbg=0.0, ubg=ubg)
        raise_for_status(result, f"constrained path at rho={rho:g} (margin scale {s:.3g}; beyond ~1e8 the loss "
                                 "weights are resolved below double precision)")
        return self._certificate(rho, s, result)

    def _certificate(self, rho, s, result):
        model, data, ball = self.model, self.data, self.ball
        P, A, N = model.n_params, ball.n_aux, data.n_samples
        theta, aux, m = result.x[:P], result.x[P:P + A], result.x[P + A:]
        f = model.margins(rho * theta, data)
        grad = np.concatenate([np.zeros(P + A), -softmax(-s * m)])
        J_margin = np.hstack([rho * model.margin_jacobian(rho * theta, data) / s, np.zeros((N, A)), -np.eye(N)])
        J_ball = np.hstack([ball.jacobian(theta), np.zeros((ball.n_constraints, N))])
        kkt = KKTData(grad, np.vstack([J_margin, J_ball]), np.concatenate([f / s - m, ball.values(theta, aux)]),
                      equality_rows=np.arange(N))
        cert = certify("constrained_path", result, kkt, theta=theta, objective=logsumexp(-f), norm=ball.norm,
                       margins=f, normalized_margin=safe_normalized_margin(model, theta, data),
                       margin_rows=np.arange(N), constraints=f"f_n(rho theta) / s = m_n, {ball.label}",
                       extras={"rho": rho, "scale": s, "objective_is": "log L(rho theta)",
                               "loss_weights": softmax(-f)})
        return theta, cert


def _reference_direction(reference, ball: Ball, n_params: int):
    if reference is None:
        return None
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape != (n_params,):
        raise LexmarginError(f"reference must have {n_params} entries; got {ref.shape}")
    return ball.normalize(ref)


def constrained_path(model, data, rhos, *, norm: str = "l2", x0=None, seed: int = 0, reference=None,
                     max_ratio: float = 2.0, options=None) -> Path:
    """Theta_c(rho) = argmin_{||theta|| <= 1} L(rho theta) along an increasing schedule of rho > 0.

    The margin path is solved on the same schedule for gamma*(rho) and the distance to it.
    ``reference``: a direction (e.g. the max-margin solution), normalized in the ball's norm.
    ``max_ratio``: warm-start continuation; between schedule points rho grows by at most this factor
    per solve (at large rho the log-sum-exp is nearly a max, and Newton needs a close start).
    """
    data, rhos = _check_data(data), check_schedule(rhos, "rho")
    ball = Ball(norm, model.n_params)
    reference = _reference_direction(reference, ball, model.n_params)
    mpath = margin_path(model, data, rhos, norm=norm, x0=x0, seed=seed, max_ratio=max_ratio, options=options)
    problem = _ConstrainedPathProblem(model, data, ball, options)
    theta, points, mpoints = mpath.points[0].theta, [], iter(mpath.points)
    for rho, reported in continuation(rhos, max_ratio):
        theta, cert = problem.solve(rho, theta)
        if reported:
            points.append(_constrained_point(rho, theta, cert, next(mpoints), reference, ball, data.n_samples))
    return Path("constrained", norm, "rho", tuple(points))


def _constrained_point(rho, theta, cert, mpoint: PathPoint, reference, ball, n_samples) -> PathPoint:
    gamma = float(np.min(cert.margins))
    return PathPoint(rho, theta, gamma, ball.norm_of(theta), cert, gamma_star=mpoint.margin,
                     lemma3_gap=mpoint.margin - gamma, lemma3_bound=float(np.log(n_samples)),
                     distance_to_margin_path=distance(theta, mpoint.theta),
                     distance_to_reference=None if reference is None else distance(theta, reference),
                     extras={"margin_path_theta": mpoint.theta,
                             "samples_below_double_precision": _underflow_count(cert.margins)})


def _underflow_count(margins) -> int:
    """Samples whose loss weight exp(-(f_n - min f)) is below double precision relative to the largest."""
    return int(np.sum(np.asarray(margins) - np.min(margins) > -np.log(np.finfo(float).eps)))


# ---- regularization path ------------------------------------------------------------------------
class _RegularizationProblem:
    """min log(sum_n exp(-f_n(theta)) + exp(log lambda + log ||theta||^2)) - c;  p = (log lambda, c)."""

    def __init__(self, model, data, options):
        self.model, self.data = model, data
        z, p = ca.SX.sym("z", model.n_params), ca.SX.sym("p", 2)
        a = ca.vertcat(-model.margin_expressions(z, data), p[0] + ca.log(ca.dot(z, z)))
        self.solver = nlp_solver(z, casadi_logsumexp(a) - p[1], ca.SX(0, 1), p=p, options=solver_options(options),
                                 name="regularization_path")

    def exponents(self, theta, log_lam) -> np.ndarray:
        return np.concatenate([-self.model.margins(theta, self.data), [log_lam + np.log(theta @ theta)]])

    def solve(self, lam: float, theta0) -> Certificate:
        log_lam = float(np.log(lam))
        shift = float(np.max(self.exponents(theta0, log_lam)))
        result = run_solver(self.solver, x0=theta0, p=[log_lam, shift])
        raise_for_status(result, f"regularization path at lambda={lam:g}")
        return self._certificate(lam, result)

    def _certificate(self, lam, result):
        model, data, theta = self.model, self.data, result.x
        a = self.exponents(theta, np.log(lam))
        w = softmax(a)
        grad = -model.margin_jacobian(theta, data).T @ w[:-1] + w[-1] * 2 * theta / (theta @ theta)
        kkt = KKTData(grad, np.zeros((0, theta.size)), np.zeros(0))
        f = -a[:-1]
        return certify("regularization_path", result, kkt, theta=theta, objective=logsumexp(a), norm="l2",
                       margins=f, normalized_margin=safe_normalized_margin(model, theta, data),
                       margin_rows=np.zeros(0, dtype=int), constraints="none (unconstrained)",
                       extras={"lambda": lam, "objective_is": "log(L(theta) + lambda ||theta||^2)"})


def regularization_path(model, data, lambdas, *, x0=None, seed: int = 0, reference=None, options=None) -> Path:
    """argmin_theta L(theta) + lambda ||theta||_2^2 along a strictly decreasing schedule lambda -> 0.

    ``reference``: a direction to compare with (distance between l2-normalized directions).
    """
    data, lambdas = _check_data(data), check_schedule(lambdas, "lambda", increasing=False)
    problem = _RegularizationProblem(model, data, options)
    theta = model.random_params(seed=seed) if x0 is None else np.asarray(x0, dtype=float).reshape(-1)
    if theta.shape != (model.n_params,) or not np.any(theta):
        raise LexmarginError(f"x0 must be a non-zero vector with {model.n_params} entries")
    points = []
    for lam in lambdas:
        cert = problem.solve(float(lam), theta)
        theta = cert.theta
        ref = None if reference is None else direction_distance(theta, reference)
        points.append(PathPoint(float(lam), theta, float(np.min(cert.margins)), float(np.linalg.norm(theta)),
                                cert, distance_to_reference=ref))
    return Path("regularization", "l2", "lambda", tuple(points))
