"""Depth-sensitive margins (Theorem 1 of Nacson et al. 2019, eqs. 13-14).

For a sum of homogeneous blocks f_n(w) = sum_k y_n g_k(w_k; x_n) with degrees alpha_1 < ... < alpha_K:

* block-lexicographic solution (eq. 13), shallowest block first:
      v_1* = min ||w_1||^2  s.t.  f_n(w) >= 1,
      v_k* = min ||w_k||^2  s.t.  f_n(w) >= 1,  earlier blocks kept at their solution (j < k).
  Earlier blocks are kept exactly: each stage fixes its blocks at the values it found, and later stages
  solve over the remaining blocks only (no "v_j* + tol" slack, so nothing drifts).  This is exact
  whenever a stage determines its blocks' contribution g_k(w_k; x_n) (always for blocks entering f
  linearly, e.g. the weights of an SVM with bias); for nonconvex blocks it keeps the stage optimum found.
  A block with v_k* <= zero_tol is discarded (fixed at exactly 0): the data is separated without it.
  Blocks of equal degree form one stage (sum of their squared norms).
* finite-gamma problem (eq. 14):  min sum_k gamma^(2/alpha_k) ||w_k||^2  s.t.  f_n(w) >= 1, solved in the
  coordinates u_k = gamma^(1/alpha_k) w_k, along an increasing gamma schedule, warm-started; its solutions
  converge to the block-lexicographic one as gamma -> infinity.

``svm_with_bias``: the hard-margin SVM with an unregularized bias as the depth-sensitive solution of
f_n = y_n (w.x_n + b1^2 - b2^2) (weights degree 1 first, bias degree 2 second); by default solved as the
convex QP in (w, b) and certified stage by stage (``svm_bias.py``), with this module's general route as
the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LexmarginError, ModelError, SolverError
from ..nlp.certificate import Certificate, Diagnostics, jsonable
from ..nlp.certify import negative_curvature_direction
from ..nlp.ipopt import IpoptSolver
from ..nlp.nlp import NLP, Point, Rows
from ..nlp.options import SolveOptions
from ..nlp.status import Status
from ..nlp.threads import single_blas_thread
from ..progress import bar, get_logger, verbose_call
from .paths import Path, PathPoint, check_data, distance, margin_path, safe_normalized_margin
from .pipeline import Solved, assemble_solved, check, ipopt_options, no_separating_point_if_infeasible, solve
from .schedule import check_schedule

log = get_logger(__name__)

ESCAPES = 3           # restarts along negative curvature from a stage point proved not a local minimum ...
ESCAPE_STEP = 0.1     # ... each a step of this fraction of ||z||_inf

__all__ = ["DepthResult", "DepthStage", "DepthStageDiagnostics", "GammaDiagnostics", "block_groups",
           "depth_gamma_path", "depth_sensitive", "feasible_start", "svm_with_bias"]


@dataclass(frozen=True)
class DepthStageDiagnostics(Diagnostics):
    kind = "depth_stage"

    blocks: tuple[str, ...]
    free_parameters: int
    fixed_blocks: tuple[str, ...]


@dataclass(frozen=True)
class GammaDiagnostics(Diagnostics):
    kind = "depth_gamma"

    gamma: float
    objective_scale: float
    u: tuple[float, ...]
    block_squared_norms: tuple[tuple[str, float], ...]    # (block, ||w_block||^2) pairs

    def to_dict(self) -> dict:
        return {**super().to_dict(), "block_squared_norms": dict(self.block_squared_norms)}

    @classmethod
    def _from_fields(cls, d: dict) -> GammaDiagnostics:
        norms = d.get("block_squared_norms", {})
        return cls(float(d["gamma"]), float(d["objective_scale"]), tuple(float(v) for v in d["u"]),
                   tuple((str(k), float(v)) for k, v in dict(norms).items()))


@dataclass(frozen=True, eq=False)
class DepthStage:
    """One refinement stage: min of sum ||w_b||^2 over ``blocks`` (common ``degree``)."""

    blocks: tuple[str, ...]
    degree: float
    value: float
    discarded: bool
    certificate: Certificate

    @property
    def not_a_minimum(self) -> bool:
        """The stage's own second-order check proves its point is not a local minimum (a KKT point at a saddle)."""
        return self.certificate.second_order.strict is False

    @property
    def success(self) -> bool:
        """The certificate is ``optimal`` and the point is not proved a saddle of the stage's minimization."""
        return self.certificate.success and not self.not_a_minimum

    def to_dict(self) -> dict:
        return {"blocks": list(self.blocks), "degree": self.degree, "value": self.value,
                "discarded": self.discarded, "success": self.success, "not_a_minimum": self.not_a_minimum,
                "certificate": self.certificate.to_dict()}


@dataclass(frozen=True, eq=False)
class DepthResult:
    stages: tuple[DepthStage, ...]
    block_names: tuple[str, ...]
    block_squared_norms: tuple[float, ...]

    @property
    def theta(self) -> np.ndarray:
        return self.stages[-1].certificate.theta

    @property
    def discarded(self) -> tuple[str, ...]:
        return tuple(b for s in self.stages if s.discarded for b in s.blocks)

    @property
    def success(self) -> bool:
        """Every stage's ``success`` (certified ``optimal`` and not proved a saddle)."""
        return all(s.success for s in self.stages)

    def to_dict(self) -> dict:
        return {"theta": jsonable(self.theta), "discarded": list(self.discarded), "success": self.success,
                "block_squared_norms": dict(zip(self.block_names, self.block_squared_norms)),
                "stages": [s.to_dict() for s in self.stages]}


def block_groups(model) -> list[tuple[float, tuple[str, ...]]]:
    """Blocks grouped by degree, shallowest (smallest degree) first."""
    if not model.is_sum_of_blocks:
        raise ModelError(f"model {model.name!r} is not declared as a sum of blocks (summands=)")
    degrees = {b.name: b.degree for b in model.blocks}
    missing = [n for n, d in degrees.items() if d is None]
    if missing:
        raise ModelError(f"blocks {missing} of model {model.name!r} have no homogeneity degree")
    return [(d, tuple(n for n in degrees if degrees[n] == d)) for d in sorted(set(degrees.values()))]


def _indices(model, names) -> np.ndarray:
    return np.concatenate([np.arange(model.block_slice(n).start, model.block_slice(n).stop) for n in names])


def feasible_start(model, data, init=None, seed: int = 0, jitter: float = 0.1,
                   time_limit: float | None = None) -> np.ndarray:
    """A start with f_n >= 1 when possible: the best-margin point of the unit ball plus a small random
    jitter (zero blocks of degree >= 2 are saddle points IPOPT cannot leave), each block then rescaled
    by c^(1/alpha_k) so that min_n f_n = 1.  ``time_limit``: the IPOPT solve's wall-clock limit (seconds; None:
    none), like every other solve of the caller's (``SolveOptions.time_limit``)."""
    # a start needs no certificate (on data no direction separates the best point is theta ~ 0, uncertifiable)
    theta = margin_path(model, data, [1.0], init=init, seed=seed, time_limit=time_limit,
                        raise_on_failure=False).points[0].theta
    theta = theta + jitter * np.random.default_rng(seed).standard_normal(model.n_params) / np.sqrt(model.n_params)
    gamma = float(np.min(model.margins(theta, data)))
    if gamma <= 0:
        return theta
    for block in model.blocks:
        theta = model.scale_block(theta, block.name, (1.0 / gamma) ** (1.0 / block.degree))
    return theta


def stage_nlp(model, data, free, objective_idx, base) -> NLP:
    """min ||theta[objective_idx]||^2  s.t.  f_n(theta) - 1 >= 0 over theta[free]; other entries = base."""
    free, objective_idx = np.asarray(free, dtype=int), np.asarray(objective_idx, dtype=int)
    base = np.asarray(base, dtype=float).copy()
    N, P = data.n_samples, model.n_params
    weight = np.zeros(P)
    weight[objective_idx] = 1.0

    def full(z):
        theta = base.copy()
        theta[free] = z
        return theta

    def expressions(z, p):
        import casadi as ca
        theta = ca.SX(ca.DM(base))
        for i, j in enumerate(free.tolist()):
            theta[j] = z[i]
        return ca.sumsqr(theta[objective_idx.tolist()]), model.margin_expressions(theta, data) - 1

    every = np.array_equal(free, np.arange(P))         # all parameters free: the Jacobian as it is (no column copy)
    objective_columns = np.nonzero(weight[free])[0]

    def evaluate(z, p) -> Point:
        theta = full(z)
        J = model.margin_jacobian(theta, data) if every else _jacobian_columns(model, theta, data, free)
        size = float(np.max(np.abs(theta), initial=0.0))
        return Point(float(np.sum((weight * theta) ** 2)), (2.0 * weight * theta)[free],
                     model.margins(theta, data) - 1.0, J, np.ones(N),
                     stage_gradient_scale(theta[free], J, objective_columns, size))

    def hessian(z, p, lam):
        H = 2.0 * np.diag(weight) - model.weighted_hessian(full(z), data, lam[:N])
        return H[np.ix_(free, free)]

    return NLP("depth_stage", free.size, (Rows("margin", N, samples=np.arange(N)),), np.full(free.size, -np.inf),
               np.full(free.size, np.inf), expressions, evaluate, theta=full, hessian=hessian)


def stage_gradient_scale(z, jacobian, objective_columns, size: float) -> np.ndarray:
    """g~ of a stage objective ||z_B||^2 (B = ``objective_columns``): on B

        2 max(|z_j|, ||z_B||_inf, min(size, u_j)),     u_j = 1 / max_n |J_nj|,

    0 elsewhere; ``size`` = ||theta||_inf over every parameter (the fixed blocks' too), u_j the size of z_j that
    moves a margin (level 1) by 1 (inf for a zero column).

    The terms of the gradient 2 z_j are |2 z_j|.  They are raised to the objective block's own size (a component
    the optimum leaves at 0 beside others of size 1e3 is judged against those) and, where the whole block is at
    rounding level (the stage optimum may be z_B = 0, and nothing balances a solver's noise there), to the size of
    the parameters, but not beyond the size at which z_j matters to the margins: a block driven to 1e20 by
    diverging iterates (u = 1.4e20, v = 2e-22 in a product u v) would otherwise make a gradient 2 w of 1e5 read as
    1e-15 of its terms (a stage certified ``optimal`` at ||w||^2 = 3.6e9 where 3.8e5 is attainable).  Never larger
    than 2 ``size``."""
    z = np.asarray(z, dtype=float)
    scale = np.zeros(z.size)
    if objective_columns.size == 0:
        return scale
    own = np.abs(z[objective_columns])
    J = np.asarray(jacobian, dtype=float).reshape(-1, z.size)
    if J.shape[0]:
        # max_n |J_nj| (its abs: a zero column may read -0.0, whose unit would be -inf)
        reach = np.abs(np.maximum(J.max(axis=0), -J.min(axis=0))[objective_columns])
        with np.errstate(divide="ignore", over="ignore"):       # a zero or subnormal column: unit inf
            size = np.minimum(size, 1.0 / reach)
    scale[objective_columns] = 2.0 * np.maximum(np.maximum(own, np.max(own)), size)
    return scale


def _jacobian_columns(model, theta, data, columns) -> np.ndarray:
    """The margin Jacobian's ``columns``: the model's ``margin_jacobian_columns`` where it has one (it forms only
    those columns), else the whole Jacobian's."""
    own = getattr(model, "margin_jacobian_columns", None)
    return own(theta, data, columns) if own is not None else model.margin_jacobian(theta, data)[:, columns]


@verbose_call
def depth_sensitive(model, data, *, zero_tol: float = 1e-10, options: SolveOptions | None = None,
                    **overrides) -> DepthResult:
    """Block-lexicographic max-margin solution (eq. 13), one certified stage per block degree.

    Args:
        model: the model (blocks of several degrees).
        data: the Dataset.
        zero_tol: a block whose squared norm is <= zero_tol is discarded (set to zero).
        options: SolveOptions (``verbose``: log each stage at INFO, ``lexmargin.progress``).
        **overrides: SolveOptions fields.

    Returns:
        The DepthResult: the stages, the discarded blocks and each block's squared norm.
    """
    opts = SolveOptions.resolve(options, **overrides)
    data = check_data(model, data)
    if zero_tol < 0:
        raise LexmarginError(f"zero_tol must be >= 0; got {zero_tol}")
    with single_blas_thread():
        return _depth_stages(model, data, zero_tol, opts)


def _depth_stages(model, data, zero_tol: float, opts: SolveOptions) -> DepthResult:
    """depth_sensitive's stages on checked inputs (undecorated, so that mutation testing reaches it)."""
    groups = block_groups(model)
    theta = feasible_start(model, data, opts.init, opts.seed, time_limit=opts.time_limit)
    free, fixed_names, stages = np.arange(model.n_params), [], []
    for degree, names in groups:
        idx = _indices(model, names)
        nlp = stage_nlp(model, data, free, idx, theta)
        solver = IpoptSolver(nlp, ipopt_options(opts))
        solved = escape_saddles(solver, no_separating_point_if_infeasible(solve(solver, theta[free], opts)), opts)
        theta = nlp.theta(solved.z)
        value = float(theta[idx] @ theta[idx])
        discarded = value <= zero_tol
        if discarded:
            theta[idx] = 0.0
        cert = check(assemble_solved(
            f"depth_sensitive_{'+'.join(names)}", solved, theta=theta, objective=value, norm_label="l2",
            margins=model.margins(theta, data), normalized_margin=safe_normalized_margin(model, theta, data),
            n_samples=data.n_samples,
            constraints=f"f_n(w) >= 1, shallower blocks fixed at their stage solutions; minimizing ||{'+'.join(names)}||^2",
            diagnostics=DepthStageDiagnostics(tuple(names), int(free.size), tuple(fixed_names))),
            opts, f"depth-sensitive stage for blocks {names}")
        stage = DepthStage(names, float(degree), value, discarded, cert)
        if opts.raise_on_failure and stage.not_a_minimum:
            raise SolverError(f"depth-sensitive stage for blocks {names}: a KKT point that is not a local minimum "
                              f"(negative curvature along the active rows' null space; {ESCAPES} rounds of restarts "
                              f"along it found no better certified point): {cert.summary()}",
                              status=cert.status.value, certificate=cert)
        stages.append(stage)
        log.info("depth-sensitive stage %s: squared norm=%.6g status=%s discarded=%s", "+".join(names), value,
                 cert.status, discarded)
        free, fixed_names = np.setdiff1d(free, idx), fixed_names + list(names)
    norms = tuple(float(np.sum(theta[model.block_slice(b.name)] ** 2)) for b in model.blocks)
    return DepthResult(tuple(stages), tuple(b.name for b in model.blocks), norms)


def escape_saddles(solver: IpoptSolver, solved: Solved, opts: SolveOptions) -> Solved:
    """A stage point proved not a local minimum (its certificate's second order: negative curvature on the active rows'
    null space, LICQ holding) is left along that curvature: up to ESCAPES rounds of restarts from z +- ESCAPE_STEP
    ||z||_inf d (``certify.negative_curvature_direction``), each kept when it is certified ``optimal`` with a smaller
    objective.
    A stage is a minimization: its KKT point at a saddle (e.g. w != 0 where a product block u v = 0 could take over
    the margins) is not the stage's solution.  A stage stopped by the time limit (``max_time``) is not restarted: each
    restart would take the same limit again (seven solves in all)."""
    if solved.status == Status.MAX_TIME:
        return solved
    for _ in range(ESCAPES):
        d = negative_curvature_direction(solver.nlp, solved.z, solved.report, tol=opts.tolerances)
        if d is None:
            return solved
        step = ESCAPE_STEP * (float(np.max(np.abs(solved.z), initial=0.0)) or 1.0)
        better = [s for s in (no_separating_point_if_infeasible(solve(solver, solved.z + sign * step * d, opts))
                              for sign in (1.0, -1.0))
                  if s.status == Status.OPTIMAL and _objective(s) < _objective(solved)]
        if not better:
            return solved
        solved = min(better, key=_objective)
    return solved


def _objective(solved: Solved) -> float:
    return float(solved.report.extended.point.objective)


# ---- finite gamma (eq. 14) ----------------------------------------------------------------------
def gamma_nlp(model, data) -> NLP:
    """Eq. 14 in the coordinates u_k = gamma^(1/alpha_k) w_k, where it reads

        min ||u||^2 / sigma   s.t.   f_n(u) / gamma >= 1      (p = (gamma, sigma)),

    since g_k(gamma^(-1/alpha_k) u_k) = g_k(u_k) / gamma: well conditioned for any gamma (the block
    weights gamma^(2/alpha_k) become a rescaling of the answer, not of the problem)."""
    N, P = data.n_samples, model.n_params

    def expressions(u, p):
        import casadi as ca
        return ca.sumsqr(u) / p[1], model.margin_expressions(u, data) / p[0] - 1

    def evaluate(u, p) -> Point:
        gamma, sigma = float(p[0]), float(p[1])
        return Point(float(u @ u) / sigma, 2 * u / sigma, model.margins(u, data) / gamma - 1.0,
                     model.margin_jacobian(u, data) / gamma, np.ones(N))

    def hessian(u, p, lam):
        gamma, sigma = float(p[0]), float(p[1])
        return 2 * np.eye(P) / sigma - model.weighted_hessian(u, data, lam[:N]) / gamma

    return NLP("depth_gamma", P, (Rows("margin", N, samples=np.arange(N)),), np.full(P, -np.inf),
               np.full(P, np.inf), expressions, evaluate, theta=lambda u: u, hessian=hessian, parameters=2)


@verbose_call
def depth_gamma_path(model, data, gammas, *, reference=None, jitter: float = 1e-3, options: SolveOptions | None = None,
                     **overrides) -> Path:
    """Finite-gamma depth-sensitive problems (eq. 14) along an increasing schedule of gamma > 0.

    Args:
        model: the Model (a sum of blocks with homogeneity degrees).
        data: a Dataset, or (X, y).
        gammas: the schedule: finite, positive, strictly increasing.
        reference: e.g. ``depth_sensitive(...).theta``; each point reports its distance to it and the
            squared norm of every block.
        jitter: each warm start is jittered by this much (seeded) so that coordinates that reached zero can
            grow again.
        options: SolveOptions (``verbose``: log each gamma at INFO, ``lexmargin.progress``).
        **overrides: SolveOptions fields.

    Returns:
        The Path (kind "depth_gamma"), one certified point per gamma.
    """
    opts = SolveOptions.resolve(options, **overrides)
    data, gammas = check_data(model, data), check_schedule(gammas, "gamma")
    degrees = np.zeros(model.n_params)
    for degree, names in block_groups(model):
        degrees[_indices(model, names)] = degree
    solver = IpoptSolver(gamma_nlp(model, data), ipopt_options(opts))
    theta = feasible_start(model, data, None, opts.seed, time_limit=opts.time_limit) if opts.init is None else \
        np.asarray(opts.init, dtype=float)
    rng, points = np.random.default_rng(opts.seed), []
    for gamma in bar(gammas, desc="depth gamma path", unit="gamma"):
        start = (theta + jitter * rng.standard_normal(theta.size)) * gamma ** (1.0 / degrees)
        sigma = max(1.0, float(start @ start))
        solved = no_separating_point_if_infeasible(solve(solver, start, opts, p=[gamma, sigma]))
        u = solved.z
        theta = u * gamma ** (-1.0 / degrees)
        norms = {b.name: float(np.sum(theta[model.block_slice(b.name)] ** 2)) for b in model.blocks}
        cert = check(assemble_solved(
            "depth_gamma", solved, theta=theta, objective=float(u @ u), norm_label="l2",
            margins=model.margins(theta, data), normalized_margin=None, n_samples=data.n_samples,
            constraints="f_n(w) >= 1; objective sum_k gamma^(2/alpha_k) ||w_k||^2 (solved in u_k = "
                        "gamma^(1/alpha_k) w_k: min ||u||^2 s.t. f_n(u) >= gamma)",
            diagnostics=GammaDiagnostics(float(gamma), sigma, tuple(u.tolist()), tuple(norms.items()))),
            opts, f"depth-sensitive finite-gamma problem at gamma={gamma:g}")
        log.info("depth gamma path: gamma=%g status=%s", gamma, cert.status)
        points.append(PathPoint(float(gamma), theta, float(np.min(cert.margins)), float(np.linalg.norm(theta)), cert,
                                distance_to_reference=None if reference is None else distance(theta, reference),
                                block_squared_norms=norms))
    return Path("depth_gamma", "l2", "gamma", tuple(points))


# ---- SVM with an unregularized bias -------------------------------------------------------------
@verbose_call
def svm_with_bias(data, *, sign: str = "both", route: str = "auto", working_set=None,
                  options: SolveOptions | None = None, **overrides) -> tuple[np.ndarray, float, DepthResult]:
    """Hard-margin SVM with unregularized bias as a depth-sensitive solution: returns (w, b, result).

    ``sign="both"``: f_n = y_n (w.x_n + b1^2 - b2^2), any bias; ``sign="positive"``: f_n = y_n (w.x_n + b^2),
    the SVM restricted to b >= 0.  Stage 1 (min ||w||^2, bias free) fixes w exactly; the bias stage then
    picks the smallest bias parametrization with w held.

    ``route``: "auto" (default) solves the convex QP min ||w||^2 s.t. y_n (w.x_n + b) >= 1 (b >= 0 for
    "positive") on the linear max-margin pipeline, maps it to (w, b1, b2) and certifies both stages there
    (``problems.svm_bias``), falling back to the general ``depth_sensitive`` route when a certificate is not
    ``optimal`` (with what is left of ``time_limit``; without one, each of its IPOPT solves at most
    ``svm_bias.fallback_options``' budget); "qp" never falls back; "depth_sensitive" is the general route only.
    The result is an ``SVMBiasResult`` (a ``DepthResult`` with ``route`` and the QP's certificate ``qp``).  Data
    that no hyperplane with a bias separates raises ``NotSeparableError`` with a Farkas certificate.

    Args:
        data: a Dataset (labels +-1).
        sign: "both" (any bias) or "positive" (b >= 0).
        route: "auto", "qp" or "depth_sensitive" (above).
        working_set: the QP's ``WorkingSetOptions`` (default: on above 50 samples, seeded by the hull points).
        options: SolveOptions.
        **overrides: SolveOptions fields.

    Returns:
        ``(w, b, result)``: the weights, the bias and the SVMBiasResult with each stage's certificate.
    """
    from .svm_bias import svm_with_bias_qp

    return svm_with_bias_qp(check_data_only(data), sign=sign, route=route, working_set=working_set,
                            options=options, **overrides)


def check_data_only(data):
    from ..modeling.data import Dataset
    if not isinstance(data, Dataset):
        raise LexmarginError(f"expected a lexmargin Dataset, got {type(data).__name__}")
    return data

