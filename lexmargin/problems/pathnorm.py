"""Path-norm max-margin: min sum_j a_j^2 ||v_j||^2 s.t. f_n(theta) >= 1 for two-layer nets, gauge fixed.

The squared l2 path norm of f(x) = sum_j a_j sigma(v_j . x) is phi(theta) = sum_j a_j^2 ||v_j||^2 = sum_j ||w_j||^2
with the path products w_j = a_j v_j (Neyshabur, Salakhutdinov & Srebro 2015; ``nlp.norms.PathNorm``).  It is
solved on the max-margin pipeline (``max_margin(model, data, norm="path")``: IPOPT, the exact finish, the
recomputed KKT residuals; for relu / leaky_relu nets the activation-region walk and the Clarke check).

The gauge.  phi and every margin are invariant under the node rescalings D_c: a_j -> c_j a_j, v_j -> v_j / c_j
(c_j > 0; for a linear activation any c_j != 0).  So grad phi(D_c theta) = D_c^{-1} grad phi(theta), likewise
for each grad f_n, and a KKT point maps to a KKT point with the same multipliers: the minimizers form a set of
dimension >= H (one orbit per live unit) and the reduced Hessian has a zero eigenvalue along each orbit
(``second_order.strict`` is None, "inconclusive", never True).  Worse, the relative residuals are not
invariant under D_c: IPOPT on the plain NLP drifts along the orbits (measured: |a_j| ~ 1e-5, ||v_j|| ~ 1e5 on
20 points, width 4), where the stationarity scale is dominated by the a-coordinates and a point that is not
stationary in the v-coordinates (residual 0.013 once balanced) passes as ``optimal`` (3e-12).  So
``path_max_margin`` solves the gauge-fixed NLP (``nlp.norms.BalancedPathNorm``, a penalty whose KKT points are
exactly the balanced KKT points of this problem) and then fixes the gauge exactly: units with
|a_j| ||v_j|| <= ``dead_tol`` max_k |a_k| ||v_k|| are set to a_j = 0, v_j = 0 (dead: they carry no path), the
others balanced to |a_j| = ||v_j|| (the l2-smallest point of the orbit, where ||theta||^2 = 2 sum_j ||w_j||),
and the certificate is recomputed there from scratch (``certify_point``: multipliers fitted by NNLS on the
margin rows, residuals, LICQ, Clarke check), so the balanced point's ``optimal`` rests on its own residuals.

Linear-activation nets reduce to a convex problem: f_n = y_n (sum_j w_j) . x_n, and for beta = sum_j w_j the
smallest sum_j ||w_j||^2 is ||beta||^2 / H (w_j = beta / H), so the path-norm solution has w_j = beta* / H with
beta* the SVM through the origin and phi* = ||beta*||^2 / H (tested against cvxpy on W = (w_j)).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ModelError
from ..modeling.multiclass import with_margin_rows
from ..modeling.regions import RegionMargins
from ..nlp.certificate import Certificate
from ..nlp.norms import BalancedPathNorm, PathNorm
from ..nlp.options import SolveOptions
from ..nlp.status import Status, decide
from .maxmargin import MaxMarginDiagnostics, MaxMarginProblem


@dataclass(frozen=True)
class PathMarginResult:
    """A path-norm max-margin certificate and its gauge.

    Attributes:
        certificate: the Certificate (norm "path"; objective phi = sum_j a_j^2 ||v_j||^2; ``normalized_margin`` =
            min_n f_n / sqrt(phi), the path-norm margin, for nets of degree 2); at the balanced point when
            ``balanced``.
        balanced: the gauge is fixed (dead units zeroed, live ones |a_j| = ||v_j||) and certified there.
        reason: why the gauge was not fixed (empty when ``balanced``).
        imbalance: ``PathNorm.imbalance`` of the certificate's theta over its live units.
        dead_units: units with no path (a_j v_j = 0 after the gauge).
        gauge_dimension: the number of live units, each a one-parameter rescaling orbit of minimizers.
        paths: w_j = a_j v_j (H, D), gauge-invariant.
        path_norm: sqrt(phi).
        unbalanced: the solver's own certificate (of the gauge-fixed NLP when ``balance``).
    """

    certificate: Certificate
    balanced: bool
    reason: str
    imbalance: float
    dead_units: tuple
    gauge_dimension: int
    paths: np.ndarray
    path_norm: float
    unbalanced: Certificate


def gauge_fix(norm: PathNorm, theta, dead_tol: float = 1e-10) -> tuple[np.ndarray, tuple]:
    """theta in the balanced gauge: dead units (|a_j| ||v_j|| <= dead_tol max_k |a_k| ||v_k||) zeroed, the others
    rescaled to |a_j| = ||v_j||.

    Args:
        norm: a bound PathNorm.
        theta: flat parameters.
        dead_tol: relative path size below which a unit is dead.

    Returns:
        (theta in the gauge, the dead units).
    """
    V, a = norm.split(theta)
    size = np.abs(a) * np.linalg.norm(V, axis=1)
    dead = size <= dead_tol * float(np.max(size, initial=0.0))
    V, a = V.copy(), a.copy()
    V[dead], a[dead] = 0.0, 0.0
    return norm.balance(norm.join(V, a)), tuple(int(j) for j in np.nonzero(dead)[0])


def certify_point(model, data, theta, norm="path", options: SolveOptions | None = None, **overrides) -> Certificate:
    """The max-margin certificate of ``theta`` as it is (no solve): multipliers fitted by NNLS on the margin rows
    (``fit_multipliers``), then the pipeline's own judgement: relative KKT residuals, LICQ, second order, and for
    relu / leaky_relu nets the Clarke check in theta's activation region.  ``optimal`` only when they hold.

    Args:
        model: the Model.
        data: a Dataset or (X, y).
        theta: flat parameters (feasible: min f_n >= 1, else the residuals say it).
        norm: "path" (default: the plain ``PathNorm``, not the gauge-fixed NLP that ``max_margin(norm="path")``
            solves, so any point of a minimizer's rescaling orbit is certified) or any norm ``max_margin`` takes.
        options: SolveOptions (tolerances); keyword overrides of its fields.

    Returns:
        The Certificate at theta (never raises for a non-optimal status).
    """
    opts = SolveOptions.resolve(options, **overrides)
    problem = MaxMarginProblem(model, data, PathNorm() if isinstance(norm, str) and norm == "path" else norm)
    theta = np.asarray(theta, dtype=float).reshape(-1)
    started = time.perf_counter()
    if problem._use_regions(None):
        region = RegionMargins(model, problem.data, theta, family=problem._region_family)
        attempt = problem._attempt_at(region, theta)
        outcome = problem._judge_region(region, attempt, opts, ())
        cert = problem._certificate(region, attempt, outcome.report, outcome.status, opts, started,
                                    region=outcome.diagnostics)
    else:
        attempt = problem._attempt_at(problem.source, problem.source.to_scaled(theta))
        report = problem._certify(problem.source, attempt, opts)
        cert = problem._certificate(problem.source, attempt, report, decide(report.kkt_met(opts.tolerances),
                                    Status.OPTIMAL), opts, started)
    return with_margin_rows(cert, problem.data)


def path_max_margin(model, data, *, balance: bool = True, dead_tol: float = 1e-10, rho: float = 0.25,
                    options: SolveOptions | None = None, **overrides) -> PathMarginResult:
    """min sum_j a_j^2 ||v_j||^2 s.t. f_n(theta) >= 1 on a two-layer net, certified in the balanced gauge.

    Args:
        model: a two-layer net of degree 2 (``two_layer`` with relu / leaky_relu, ``deep_linear`` of depth 2, or any
            degree-2 model with one (H, D) and one (H,) array: ``PathNorm.bind``); ModelError otherwise (square /
            squared_relu nets rescale as a_j -> c^2 a_j, v_j -> v_j / c, which changes sum_j a_j^2 ||v_j||^2).
        data: a Dataset or (X, y).
        balance: solve the gauge-fixed NLP (``BalancedPathNorm``: phi + rho sum_j (a_j^2 - ||v_j||^2)^2, whose KKT
            points are the path-norm problem's in the balanced gauge), balance its point exactly (``gauge_fix``) and
            certify the plain path-norm problem there (``certify_point``); the solver's certificate is kept when
            that one is not ``optimal`` at the same objective (``reason`` says so).  False: the plain path-norm NLP,
            certified where the solver stops (IPOPT drifts along the rescalings, to |a_j| / ||v_j|| ~ 1e-10 on
            small ReLU nets, where the relative residuals no longer weigh the v-coordinates: see the module doc).
        rho: the gauge penalty's weight.
        dead_tol: relative path size of a dead unit.
        options: SolveOptions; keyword overrides of its fields (starts, seed, time_limit, raise_on_failure, ...).

    Returns:
        PathMarginResult (raises like ``max_margin`` on a non-optimal status unless ``raise_on_failure=False``).
    """
    if model.degree != 2:
        raise ModelError(f"path_max_margin needs a net of degree 2 (relu, leaky_relu or linear activation, where the "
                         f"node rescalings a_j -> c a_j, v_j -> v_j / c leave f and the path norm unchanged); "
                         f"{model.name!r} has degree {model.degree}")
    opts = SolveOptions.resolve(options, **overrides)
    norm = PathNorm().bind(model)
    problem = MaxMarginProblem(model, data, BalancedPathNorm(rho=rho).bind(model) if balance else norm)
    solved = problem.solve(SolveOptions.resolve(opts, raise_on_failure=False))
    cert, balanced, reason = solved, False, "balance=False"
    dead: tuple = ()
    if balance:
        theta, dead = gauge_fix(norm, solved.theta, dead_tol)
        fixed = certify_point(model, data, theta, norm, opts)
        same = abs(fixed.objective - solved.objective) <= 1e-8 * abs(solved.objective)
        if fixed.success and same:
            diagnostics = fixed.diagnostics
            if isinstance(diagnostics, MaxMarginDiagnostics) and isinstance(solved.diagnostics, MaxMarginDiagnostics):
                diagnostics = replace(diagnostics, starts=solved.diagnostics.starts)    # the solve's starts
            cert, balanced, reason = replace(fixed, solver=solved.solver, finish=solved.finish,
                                             diagnostics=diagnostics), True, ""
        else:
            reason = (f"the balanced point's certificate is {fixed.status.value} (residual "
                      f"{fixed.kkt.max:.2g}, objective {fixed.objective:.17g} vs {solved.objective:.17g})")
    if opts.raise_on_failure and not cert.success:
        problem._raise(cert)
    V, a = norm.split(cert.theta)
    live = np.abs(a) * np.linalg.norm(V, axis=1) > 0
    return PathMarginResult(cert, balanced, reason, _imbalance(norm, cert.theta, live), dead,
                            int(np.sum(live)), norm.paths(cert.theta), norm.path_norm(cert.theta), solved)


def _imbalance(norm: PathNorm, theta, live) -> float:
    V, a = norm.split(theta)
    V, a = V[live], a[live]
    if not a.size:
        return 0.0
    r = np.linalg.norm(V, axis=1)
    return float(np.max(np.abs(np.abs(a) - r)) / np.max(np.abs(a) + r))


__all__ = ["PathMarginResult", "certify_point", "gauge_fix", "path_max_margin"]
