"""The hard-margin SVM with an unregularized bias as a convex QP: the fast path of ``svm_with_bias``.

    min ||w||^2   s.t.   y_n (w.x_n + b) >= 1,     b free (sign="both")  or  b >= 0 (sign="positive")

is the max-margin problem of the linear model on the features (x, 1) with the bias's coefficient left out
of the objective (``nlp.norms.PartialL2``).  ``SVMBiasQP`` solves it on the linear max-margin pipeline
(``MaxMarginProblem``): A = y (x, 1) divided by a power of two and power-of-two column scaling (any data
scale), Mehrotra's QP algorithm, a working set above 50 samples (seeded by the nearest points of the
two classes' convex hulls, the QP's dual), the exact finish and a certificate on all N rows.  Data of one
class only is solved in closed form (w = 0, b = y) and certified the same way.  Its
stationarity has a w part, 2 w = sum_n lambda_n y_n x_n, and a b part, sum_n lambda_n y_n = 0 (with the
row b >= 0 of sign="positive": sum_n lambda_n y_n + mu = 0, mu >= 0).  When IPOPT fails, a Farkas
certificate (rows y_n (x_n, 1), plus the row b >= 0 for "positive") proves that no such hyperplane
exists (``not_separable``).

``svm_with_bias_qp`` then maps (w, b) to the ``svm_bias`` model, f = y (w.x + b1^2 - b2^2) (or b^2), with
the smallest bias parametrization b1 = sqrt(max(b, 0)), b2 = sqrt(max(-b, 0)), and certifies the two
depth-sensitive stages of that model at the mapped point, with the same stage NLPs as
``depth.depth_sensitive`` (``depth.stage_nlp``), evaluated by ``BiasModelFunctions`` (the model's formula in
numpy; the tests compare it with the model's CasADi functions):

* stage 1 (min ||w||^2, bias free): the QP's multipliers at (w, b1, b2); the QP's optimum is the stage's
  global optimum since b1^2 - b2^2 takes every real value;
* stage 2 (w fixed, min ||b||^2): with w fixed the feasible biases are an interval [lo, hi], and the
  parametrization of smallest b1^2 + b2^2 = |b| is b = clip(0, lo, hi) (b >= 0 for "positive"); its
  multipliers are fitted by NNLS on the active rows.  A bias with |b| <= zero_tol is discarded (fixed
  at 0), as in ``depth_sensitive``.

Each certificate's status comes from its own residuals.  ``svm_with_bias`` uses this path first and falls
back to the general ``depth_sensitive`` route when the QP or a stage is not ``optimal`` (never when the
data is proved not separable).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ..errors import LexmarginError, ModelError, NotSeparableError, SolverError
from ..modeling.data import Dataset
from ..nlp.certificate import Certificate, SolverInfo, assemble, jsonable
from ..nlp.certify import certify
from ..nlp.finish import FinishInfo, fit_multipliers
from ..nlp.nnls import nnls
from ..nlp.norms import OBJECTIVE, PartialL2
from ..nlp.options import SolveOptions
from ..nlp.status import Status, decide
from ..nlp.threads import single_blas_thread
from .depth import DepthResult, DepthStage, DepthStageDiagnostics, depth_sensitive, stage_nlp
from .margins import LinearMargins, prescale
from .maxmargin import NO_TIME_LEFT, MaxMarginProblem, WorkingSetOptions, _Attempt

__all__ = ["BiasMargins", "BiasModelFunctions", "SVMBiasQP", "SVMBiasResult", "closed_form_bias", "hull_seed",
           "svm_with_bias_qp"]

SIGNS = ("positive", "both")
ROUTES = ("auto", "qp", "depth_sensitive")
BIAS_ROW = "bias_sign"
WORKING_SET_THRESHOLD = 50   # the QP's working set is on above this many samples (measured: N = 100..400
#                              d = 10: 22-32 ms on all rows, 9-11 ms on the seeded working set)
SEED_TOL = 1e-3     # hull seed: a sample short of its hull's supporting level by more (relative) joins the NNLS
FALLBACK_SECONDS = 30.0   # the general route after an uncertified QP route, without a time limit given: each IPOPT
#                           solve at most max(FALLBACK_SECONDS, the QP route's own seconds)


# ---- the QP on the linear pipeline ---------------------------------------------------------------
class BiasMargins(LinearMargins):
    """f_n(w, b) = y_n (w.x_n + b) = A_n (w, b) with A = y (X, 1), prescaled as ``LinearMargins``
    (A' = A / 2^e, theta' = 2^e theta, power-of-two column scales); ``positive``: one extra row b >= 0."""

    def __init__(self, data: Dataset, positive: bool = False):
        # LinearMargins' prescaling, from the matrix instead of a model's Jacobian (one N x (d + 1) array, scaled in
        # place)
        N, d = data.X.shape
        A = np.empty((N, d + 1))
        np.multiply(data.y[:, None], data.X, out=A[:, :d])
        A[:, d] = data.y
        self.c = np.zeros(N)
        self.A, self.scale_exponent, self.column_scale = prescale(A, in_place=True)
        self.n_samples = N
        self.positive = bool(positive)
        self.bias = A.shape[1] - 1

    # the row b >= 0 (sign="positive").  Its level is the bias that moves a margin by 1, 1 / max_n |A_nb|
    # (= 2^e: the bias column of A' is y_n 2^-e): its relative slack is b in margin units, whatever the
    # data's scale (w scales with 1 / |x|, b does not)
    extra_kind = BIAS_ROW

    @property
    def n_extra(self) -> int:
        return 1 if self.positive else 0

    def extra_expression(self, theta):
        return theta[self.bias]

    def extra_values(self, theta) -> np.ndarray:
        return np.asarray(theta, dtype=float)[self.bias:self.bias + 1].copy() if self.positive else np.zeros(0)

    def extra_jacobian(self, theta) -> np.ndarray:
        J = np.zeros((self.n_extra, np.asarray(theta).size))
        if self.positive:
            J[0, self.bias] = 1.0
        return J

    def extra_levels(self, theta) -> np.ndarray:
        return np.full(self.n_extra, 1.0 / float(np.max(np.abs(self.A[:, self.bias]))))

    def farkas_rows(self):
        """(A, c) of every row A theta + c >= 1 of the QP: the margins, and b + 1 >= 1 for "positive"."""
        if not self.positive:
            return self.A, self.c
        return np.vstack([self.A, np.eye(1, self.A.shape[1], self.bias)]), np.append(self.c, 1.0)


@dataclass(frozen=True)
class _QPParameters:
    """What the max-margin pipeline reads of its model: theta = (w, b), linear, degree 1."""

    name: str
    n_params: int
    degree: float = 1.0


def hull_seed(A, labels, size: int, extra: int, weight: float = 1e3, rounds: int = 3) -> np.ndarray:
    """Working-set seed of the SVM with bias from its dual: the nearest points of the two classes' convex
    hulls, u = sum_n alpha_n y_n x_n = p+ - p- with alpha >= 0 summing to 1 on each class (w* is
    proportional to u).  Lawson-Hanson NNLS (the sums enforced by heavy rows) on candidates, starting from
    the ``size`` lowest margins of each class along the difference of the class means; samples that
    violate the nearest-point conditions (x.u < p+.u on the positive class, x.u > p-.u on the negative
    one) join the candidates for up to ``rounds`` NNLS solves.  The seed is the NNLS support and the lowest
    margins along u.  Only a seed: IPOPT then solves and certifies on the working set, adding violated rows."""
    W, labels = A[:, :-1], np.asarray(labels)
    pos, neg = labels > 0, labels < 0
    proj = labels * (W @ W.mean(axis=0))               # x_n . u (in A's scale)
    candidates = np.concatenate([np.nonzero(pos)[0][np.argsort(proj[pos])[:size]],
                                 np.nonzero(neg)[0][np.argsort(-proj[neg])[:size]]])
    target = np.append(np.zeros(W.shape[1]), [weight, weight])
    for round_ in range(rounds):
        system = np.vstack([W[candidates].T, weight * pos[candidates], weight * neg[candidates]])
        alpha = nnls(system, target, maxiter=50 * candidates.size)[0]
        u = W[candidates].T @ alpha
        proj = labels * (W @ u)
        upper = float(alpha @ (proj[candidates] * pos[candidates]))     # p+ . u
        lower = float(alpha @ (proj[candidates] * neg[candidates]))     # p- . u
        tol = SEED_TOL * max(upper - lower, np.finfo(float).tiny)
        shortfall = np.where(pos, upper - proj, proj - lower)
        shortfall[candidates] = -np.inf
        violators = np.nonzero(shortfall > tol)[0]
        if violators.size == 0 or not np.any(u) or round_ == rounds - 1:
            break
        candidates = np.union1d(candidates, violators[np.argsort(-shortfall[violators])[:size]])
    support = candidates[alpha > 0]
    if not np.any(u):
        return np.sort(support)
    margins = labels * (proj - 0.5 * (upper + lower))
    lowest = np.argsort(margins)[:support.size + extra]
    return np.union1d(support, lowest)


class SVMBiasQP(MaxMarginProblem):
    """``SVMBiasQP(data, positive=False).solve(options)`` -> the Certificate of the QP in theta = (w, b)."""

    default_working_set = WorkingSetOptions(threshold=WORKING_SET_THRESHOLD)

    def __init__(self, data: Dataset, positive: bool = False):
        if not isinstance(data, Dataset):
            raise LexmarginError(f"expected a lexmargin Dataset, got {type(data).__name__}")
        d = data.n_features
        self.positive = bool(positive)
        self.model = _QPParameters("svm_with_bias_qp", d + 1)
        self.data = data
        self.norm = PartialL2(free=(d,))
        self.source = BiasMargins(data, positive)
        self.lift = self.norm.lift(OBJECTIVE, d + 1)
        self._solvers = {}

    def solve(self, options: SolveOptions | None = None, *, working_set: WorkingSetOptions | None = None,
              **overrides) -> Certificate:
        """Solve and certify (``MaxMarginProblem.solve``); the working set is on above ``WORKING_SET_THRESHOLD``
        samples by default (IPOPT's cost grows with its rows; the hull seed usually needs one round)."""
        labels = self.data.y
        if np.all(labels > 0) or (np.all(labels < 0) and not self.positive):
            overrides.pop("route", None)
            return self._single_class(SolveOptions.resolve(options, **overrides))
        return super().solve(options, working_set=working_set, activation_region=False, **overrides)

    def _single_class(self, opts: SolveOptions) -> Certificate:
        """One class c only: w = 0, b = c (the smallest |b| with c b >= 1; any b with c b >= 1 is optimal), every
        multiplier 0.  An interior point leaves w at rounding level with nothing to measure its gradient against
        (relative stationarity 1), so the exact point is certified instead."""
        started = time.perf_counter()
        c = float(self.data.y[0])
        theta = self.source.to_scaled(np.append(np.zeros(self.data.n_features), c))
        nlp_rows = self.data.n_samples + self.source.n_extra
        attempt = _Attempt(self.lift.start(theta), np.zeros(nlp_rows), np.zeros(self.lift.n), np.zeros(self.lift.n),
                           Status.OPTIMAL, "closed form", 0, 0.0, 0, np.arange(self.data.n_samples),
                           FinishInfo(False, "closed form: nothing to finish"))
        report = self._certify(self.source, attempt, opts)
        status = decide(report.kkt_met(opts.tolerances), Status.OPTIMAL)
        cert = self._certificate(self.source, attempt, report, status, opts, started)
        cert = replace(cert, solver=SolverInfo("closed_form", Status.OPTIMAL, "closed form", 0,
                                               time.perf_counter() - started,
                                               f"one class only (y = {c:+g}): w = 0, b = {c:+g}"))
        if opts.raise_on_failure and not cert.success:
            self._raise(cert)
        return cert

    def _initial_index(self, source, theta0, ws: WorkingSetOptions):
        n = self.data.n_samples
        use_ws = ws.enabled if ws.enabled is not None else n > ws.threshold
        labels = self.data.y
        both_classes = bool(np.any(labels > 0) and np.any(labels < 0))
        if not use_ws or ws.seeding not in ("auto", "nnls") or np.any(theta0) or not both_classes:
            return super()._initial_index(source, theta0, replace(ws, seeding="margins"))
        size = min(n, ws.initial or max(100, 2 * self.model.n_params))
        return hull_seed(source.A, labels, size, extra=max(10, size // 5)), True

    def _farkas_rows(self):
        """The QP's rows: the margins, and b >= 0 for "positive" (``BiasMargins.farkas_rows``)."""
        return self.source.farkas_rows()

    def _certificate(self, source, attempt, report, status, opts, started, starts=(), region=None, farkas=None):
        cert = super()._certificate(source, attempt, report, status, opts, started, starts, region, farkas)
        bias = "b >= 0" if self.positive else "b free"
        return replace(cert, problem="svm_with_bias_qp",
                       constraints=f"y_n (w.x_n + b) >= 1, {bias}; theta = (w, b), minimizing ||w||^2 (the bias "
                                   "is unregularized)")

    def _raise(self, cert: Certificate):
        if cert.status == Status.NOT_SEPARABLE:
            raise NotSeparableError(not_separable_message(cert, self.positive), certificate=cert)
        raise SolverError(f"svm_with_bias (QP in (w, b)) ended {cert.status.value}: {cert.summary()}",
                          status=cert.status.value, certificate=cert)


def not_separable_message(cert: Certificate, positive: bool) -> str:
    proof = cert.diagnostics.farkas
    what = "a hyperplane with a bias b >= 0" if positive else "any hyperplane with a bias"
    return (f"svm_with_bias: the data is not separable by {what} (Farkas certificate: weights y >= 0 on the rows "
            f"y_n (x_n, 1){' and b >= 0' if positive else ''} with A^T y = 0 to relative "
            f"{proof.relative_residual:.1e}; see certificate.diagnostics.farkas)")


# ---- the svm_bias model's stages at the mapped point -----------------------------------------------
class BiasModelFunctions:
    """The bundled ``svm_bias`` model (f = y (w.x + b1^2 - b2^2), or y (w.x + b^2) for "positive") in numpy:
    what ``depth.stage_nlp`` evaluates (margins, Jacobian, weighted Hessian) for one dataset.  The stages share
    w, so the products y_n w.x_n of the last w are kept (``projection``): one pass over the data for every
    margin the stages evaluate."""

    def __init__(self, data: Dataset, sign: str):
        self.data, self.sign = data, sign
        self.d = data.n_features
        self.n_params = self.d + (2 if sign == "both" else 1)
        self.yX = data.y[:, None] * data.X
        self._projected: tuple[bytes, np.ndarray] | None = None

    def _check(self, data):
        if data is not self.data:
            raise ValueError("BiasModelFunctions evaluates the dataset it was built for")

    def projection(self, w) -> np.ndarray:
        """y_n w.x_n (a read-only array, computed once per w)."""
        w = np.ascontiguousarray(w, dtype=float)
        key = w.tobytes()
        if self._projected is None or self._projected[0] != key:
            values = self.yX @ w
            values.setflags(write=False)
            self._projected = (key, values)
        return self._projected[1]

    def bias(self, theta) -> float:
        d = self.d
        return theta[d] ** 2 - theta[d + 1] ** 2 if self.sign == "both" else theta[d] ** 2

    def margins(self, theta, data) -> np.ndarray:
        self._check(data)
        theta = np.asarray(theta, dtype=float)
        return self.projection(theta[:self.d]) + self.data.y * self.bias(theta)

    def margin_jacobian(self, theta, data) -> np.ndarray:
        self._check(data)
        theta, d = np.asarray(theta, dtype=float), self.d
        J = np.empty((self.data.n_samples, self.n_params))
        J[:, :d] = self.yX
        J[:, d:] = self._bias_jacobian(theta)
        return J

    def margin_jacobian_columns(self, theta, data, columns) -> np.ndarray:
        """``margin_jacobian(theta, data)[:, columns]``; columns of the bias parameters only are formed alone (the
        bias stage: no copy of y X)."""
        self._check(data)
        columns = np.asarray(columns, dtype=int)
        if columns.size and int(columns.min()) >= self.d:
            return self._bias_jacobian(np.asarray(theta, dtype=float))[:, columns - self.d]
        return self.margin_jacobian(theta, data)[:, columns]

    def _bias_jacobian(self, theta) -> np.ndarray:
        """The columns of b1 (and b2): 2 b1 y (and -2 b2 y)."""
        d, y = self.d, self.data.y
        J = np.empty((self.data.n_samples, self.n_params - d))
        J[:, 0] = 2.0 * theta[d] * y
        if self.sign == "both":
            J[:, 1] = -2.0 * theta[d + 1] * y
        return J

    def weighted_hessian(self, theta, data, weights) -> np.ndarray:
        return np.diag(self.weighted_hessian_diagonal(theta, data, weights))

    def weighted_hessian_diagonal(self, theta, data, weights) -> np.ndarray:
        """sum_n w_n Hess f_n is diagonal: 2 sum_n w_n y_n at b1 (and -2 sum_n w_n y_n at b2), 0 elsewhere."""
        self._check(data)
        d, s = self.d, float(np.asarray(weights, dtype=float) @ self.data.y)
        h = np.zeros(self.n_params)
        h[d] = 2.0 * s
        if self.sign == "both":
            h[d + 1] = -2.0 * s
        return h


def bias_parameters(b: float, sign: str) -> np.ndarray:
    """The smallest parametrization of a bias: (sqrt(max(b, 0)), sqrt(max(-b, 0))), or sqrt(b) (b >= 0)."""
    if sign == "both":
        return np.array([np.sqrt(max(b, 0.0)), np.sqrt(max(-b, 0.0))])
    return np.array([np.sqrt(max(b, 0.0))])


def closed_form_bias(yX, y, w, positive: bool) -> float:
    """With w fixed, y_n (w.x_n + b) >= 1 holds for b in [lo, hi] (lo from the positive samples, hi from the
    negative ones); the bias of smallest |b| there (b >= 0 for ``positive``).  An interval empty by rounding
    (lo > hi at the QP's optimum, where lo = hi = b) gives its midpoint; the certificate judges it."""
    return smallest_feasible_bias(yX @ w, y, positive)


def smallest_feasible_bias(projection, y, positive: bool) -> float:
    """``closed_form_bias`` from the products y_n w.x_n (``projection``)."""
    proj = y * projection                                 # w.x_n
    lo = float(np.max(1.0 - proj[y > 0], initial=-np.inf))
    hi = float(np.min(-1.0 - proj[y < 0], initial=np.inf))
    if positive:
        lo = max(lo, 0.0)
    if lo > hi:
        return 0.5 * (lo + hi)
    return float(min(max(0.0, lo), hi))


@dataclass(frozen=True, eq=False)
class SVMBiasResult(DepthResult):
    """A ``DepthResult`` (stages in the ``svm_bias`` model's parameters) that says how it was computed.

    route: "qp" (the convex QP in (w, b), mapped and certified stage by stage) or "depth_sensitive" (the
    general route).  qp: the QP's own certificate (theta = (w, b); None when the QP was not run).
    """

    route: str = "depth_sensitive"
    qp: Certificate | None = None

    def to_dict(self) -> dict:
        return {**super().to_dict(), "route": self.route, "qp": None if self.qp is None else jsonable(self.qp)}


def _diagonal_stage(nlp, fns, data, free, objective_idx):
    """``depth.stage_nlp`` of the svm_bias model with its Hessian of the Lagrangian as the diagonal it is
    (2 on the objective's block, -sum_n lambda_n Hess f_n on the bias parameters): no P x P matrix for the
    certificate's second-order check (``hessian_diagonal``; tests compare it with the stage NLP's own)."""
    free = np.asarray(free, dtype=int)
    weight = np.zeros(fns.n_params)
    weight[np.asarray(objective_idx, dtype=int)] = 1.0
    N = data.n_samples

    def hessian(z, p, lam):
        return (2.0 * weight - fns.weighted_hessian_diagonal(nlp.theta(z), data, lam[:N]))[free]

    return replace(nlp, hessian=hessian, hessian_diagonal=True)


def _stage(fns, data, free, objective_idx, theta):
    """The depth-sensitive stage NLP of the svm_bias model (free parameters ``free``, objective ||theta[idx]||^2,
    the other entries at theta) with its diagonal Hessian (``_diagonal_stage``)."""
    return _diagonal_stage(stage_nlp(fns, data, free, objective_idx, theta), fns, data, free, objective_idx)


def _stage_certificate(nlp, fns, data, free, objective_idx, theta, multipliers, opts, *, name, solver, finish,
                       constraints, diagnostics, status=None, point=None) -> tuple[Certificate, float]:
    """Certify ``theta`` on the stage NLP ``nlp`` (``_stage(fns, data, free, objective_idx, theta)``); ``point``: that
    NLP's evaluation at theta[free] when the caller has it."""
    report = certify(nlp, theta[free], multipliers, tolerances=opts.tolerances, point=point)
    value = float(theta[objective_idx] @ theta[objective_idx])
    status = status or decide(report.kkt_met(opts.tolerances), solver.status)
    cert = assemble(name, report, status=status, theta=theta, objective=value, norm="l2",
                    margins=fns.margins(theta, data), normalized_margin=None, n_samples=data.n_samples,
                    solver=solver, finish=finish, tolerances=opts.tolerances, constraints=constraints,
                    diagnostics=diagnostics)
    return cert, value


def _qp_stages(data, sign: str, qp: Certificate, opts: SolveOptions, zero_tol: float):
    """The two depth-sensitive stages of the svm_bias model at the QP's solution (see the module docstring)."""
    d, fns = data.n_features, BiasModelFunctions(data, sign)
    w_idx, b_idx = np.arange(d), np.arange(d, fns.n_params)
    w, b = np.array(qp.theta[:d]), float(qp.theta[d])
    if any(r.kind == BIAS_ROW and r.active for r in qp.rows):
        # at the bound (the QP's row b >= 0 active) b = 0 exactly: the b^2 parametrization is stationary in
        # b only there (sum_n lambda_n y_n = -mu != 0), and the QP leaves b at rounding level
        b = 0.0
    theta = np.concatenate([w, bias_parameters(b, sign)])
    # a block is discarded when its largest contribution to a margin is <= zero_tol (margins are
    # normalized to 1, so the test does not depend on the data's scale)
    discard_w = bool(np.max(np.abs(fns.projection(w)), initial=0.0) <= zero_tol)
    if discard_w:
        theta[w_idx] = 0.0
    solver = SolverInfo("ipopt", qp.solver.status, qp.solver.return_status, qp.solver.iterations, qp.solver.seconds,
                        "solved as the convex QP in (w, b) (its certificate: result.qp), mapped to the smallest bias "
                        "parametrization b1 = sqrt(max(b, 0)), b2 = sqrt(max(-b, 0)); certified with the QP's "
                        "multipliers")
    every = np.arange(fns.n_params)
    first, value = _stage_certificate(
        _stage(fns, data, every, w_idx, theta), fns, data, every, w_idx, theta, qp.multipliers, opts,
        name="depth_sensitive_w",
        solver=solver, finish=qp.finish, status=None if qp.success else qp.status,
        constraints="f_n(w) >= 1, shallower blocks fixed at their stage solutions; minimizing ||w||^2 (solved as "
                    "the convex QP in (w, b))",
        diagnostics=DepthStageDiagnostics(("w",), int(fns.n_params), ()))
    stages = [DepthStage(("w",), 1.0, value, discard_w, first)]
    if not qp.success:
        return stages
    start = time.perf_counter()
    bias = smallest_feasible_bias(fns.projection(theta[w_idx]), data.y, sign == "positive")
    discard_b = abs(bias) <= zero_tol
    theta[b_idx] = 0.0 if discard_b else bias_parameters(bias, sign)
    nlp = _stage(fns, data, b_idx, b_idx, theta)
    point = nlp.evaluate(theta[b_idx], None)
    lam = fit_multipliers(nlp, theta[b_idx], tolerances=opts.tolerances, point=point)[:data.n_samples]
    solver = SolverInfo("closed_form", Status.OPTIMAL, "closed form", 0, time.perf_counter() - start,
                        "w fixed: the feasible biases form an interval [lo, hi]; b1^2 + b2^2 = |b| is smallest at "
                        "b = clip(0, lo, hi)" + (" with b >= 0" if sign == "positive" else ""))
    second, value = _stage_certificate(
        nlp, fns, data, b_idx, b_idx, theta, lam, opts, name="depth_sensitive_b", solver=solver, point=point,
        finish=FinishInfo(False, "closed form: nothing to finish"),
        constraints="f_n(w) >= 1, shallower blocks fixed at their stage solutions; minimizing ||b||^2 (closed form)",
        diagnostics=DepthStageDiagnostics(("b",), int(b_idx.size), ("w",)))
    stages.append(DepthStage(("b",), 2.0, value, discard_b, second))
    return stages


def _result(stages, sign: str, route: str, qp) -> SVMBiasResult:
    theta = stages[-1].certificate.theta
    d = theta.size - (2 if sign == "both" else 1)
    norms = (float(theta[:d] @ theta[:d]), float(theta[d:] @ theta[d:]))
    return SVMBiasResult(tuple(stages), ("w", "b"), norms, route=route, qp=qp)


def _unpack(result: DepthResult, d: int, sign: str):
    theta = result.theta
    bias = theta[d] ** 2 - theta[d + 1] ** 2 if sign == "both" else theta[d] ** 2
    return np.array(theta[:d]), float(bias)


def _raise(result: SVMBiasResult, sign: str):
    qp = result.qp
    if qp.status == Status.NOT_SEPARABLE:
        raise NotSeparableError(not_separable_message(qp, sign == "positive"), certificate=qp)
    failed = qp if not qp.success else next(s.certificate for s in result.stages if not s.success)
    raise SolverError(f"svm_with_bias (QP route) ended {failed.status.value}: {failed.summary()}",
                      status=failed.status.value, certificate=failed)


def svm_with_bias_qp(data, *, sign: str = "both", route: str = "auto", zero_tol: float = 1e-10,
                     working_set: WorkingSetOptions | None = None, options: SolveOptions | None = None,
                     **overrides) -> tuple[np.ndarray, float, SVMBiasResult]:
    """``svm_with_bias`` (see ``depth.svm_with_bias``): the QP first, the general route when it is not certified."""
    if sign not in SIGNS:
        raise ModelError(f"svm_bias: sign must be one of {SIGNS}; got {sign!r}")
    if route not in ROUTES:
        raise LexmarginError(f"route must be one of {ROUTES}; got {route!r}")
    if not isinstance(data, Dataset):
        raise LexmarginError(f"expected a lexmargin Dataset, got {type(data).__name__}")
    if not zero_tol >= 0:
        raise LexmarginError(f"zero_tol must be >= 0; got {zero_tol}")
    opts = SolveOptions.resolve(options, **overrides)
    with single_blas_thread():
        return _svm_with_bias(data, sign, route, zero_tol, working_set, opts)


def fallback_options(opts: SolveOptions, started: float) -> SolveOptions:
    """The general route's options after a QP route that was not certified: what the QP route left of the caller's
    time limit (none left: it stops at once, max_time), or, without one, a limit per IPOPT solve of
    max(FALLBACK_SECONDS, the QP route's own seconds).  The general route solves the same convex
    problem through the nonconvex b1^2 - b2^2 model on every row: where the QP route fails on the data itself
    (nearly inseparable with features in mixed units, docs/paths.md) it fails as well, only slower; it is there
    for a QP route that fails where the general one need not."""
    if opts.time_limit is not None:
        return MaxMarginProblem._remaining(opts, started, least=NO_TIME_LEFT)
    spent = time.perf_counter() - started
    return replace(opts, time_limit=max(FALLBACK_SECONDS, spent))


def _svm_with_bias(data, sign: str, route: str, zero_tol: float, working_set, opts: SolveOptions):
    """``svm_with_bias_qp`` on checked inputs."""
    d = data.n_features
    qp, started = None, time.perf_counter()
    if route != "depth_sensitive":
        # convex: one start from 0 (init and starts only matter to the general route)
        qp_opts = replace(opts, init=None, starts=None, raise_on_failure=False)
        qp = SVMBiasQP(data, positive=sign == "positive").solve(qp_opts, working_set=working_set)
        result = _result(_qp_stages(data, sign, qp, opts, zero_tol), sign, "qp", qp)
        if result.success or route == "qp" or qp.status == Status.NOT_SEPARABLE:
            if opts.raise_on_failure and not result.success:
                _raise(result, sign)
            return (*_unpack(result, d, sign), result)
    from ..modeling.loading import load_model
    model = load_model("svm_bias", input_dim=d, sign=sign)
    left = fallback_options(opts, started) if qp is not None else opts     # route="depth_sensitive": as asked
    general = depth_sensitive(model, data, zero_tol=zero_tol, options=left)
    result = SVMBiasResult(general.stages, general.block_names, general.block_squared_norms,
                           route="depth_sensitive", qp=qp)
    return (*_unpack(result, d, sign), result)

