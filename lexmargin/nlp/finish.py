"""Exact finish: turn IPOPT's interior point into a vertex-accurate KKT point.

An interior-point method stops at a point whose error is about sqrt(complementarity) where the active
set is degenerate (more active rows than the solution needs).  After IPOPT:

1. candidates: equality rows, and inequality rows with relative slack <= IDENTIFY_TOL or a multiplier
   in IPOPT's support (where the finished point is not certified, steps 2-4 are tried once more from the
   rows with relative slack <= 1e-7: ``IDENTIFY_TOLS``);
2. multipliers by NNLS: min ||grad phi - J_C^T lambda||, lambda >= 0 (equalities free).  Lawson-Hanson
   returns a vertex: the rows with lambda > 0 have linearly independent gradients;
3. the working set W (equalities and the rows with lambda > 0) is held active, and the KKT system
   grad phi(z) = J_W(z)^T lambda_W,  c_W(z) = 0  is solved by Newton's method with the Hessian of the
   Lagrangian (one step for a QP; a Schur complement when the Hessian is diagonal);
4. a row that ends up violated joins W (in exchange for a row of W when its gradient depends on W's: the ratio
   test of a dual active-set step, so W stays independent), a negative multiplier leaves it, and step 3 repeats.

The finished point is kept only when its recomputed residuals meet the tolerance and its objective is
not worse than IPOPT's (when IPOPT's point was certified too): the certificate, not the finish, decides.

``finish_or_keep`` first sets IPOPT's multipliers of clearly inactive rows (relative slack >
IDENTIFY_TOL) to 0: at a KKT point they are 0 by complementarity, and an interior point leaves mu/slack
noise there.  It runs the finish where it is one linear solve (``hessian_diagonal`` NLPs: constraints
linear, objective Hessian diagonal -- max-margin of linear models, exact to rounding) or Newton on an LP or a
QCQP (``linear_margins``: the margin path and lexicographic stages of a model linear in its parameters; a point
certified at IPOPT's own accuracy is not enough there: the residuals are relative to each component's terms, and
where those cancel by a factor kappa -- features in units 1e5 beside 1, margins ~1 -- the objective is only good to
kappa times them) -- these even where IPOPT stopped short of convergence (not at its time limit) -- and elsewhere
only where it can change the answer: IPOPT's point is not yet certified, LICQ fails (multipliers not
unique), or some row is near-active (relative slack <= IDENTIFY_TOL) without clearly belonging to the
support (degenerate, or barely inactive) -- the cases where an interior point's error is
sqrt(complementarity).  Elsewhere IPOPT's certified point stands.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from .certify import TINY, KKTReport, balance, certify, residuals, row_violations, stationarity_residual, unit_rows
from .nlp import NLP, extend, split_bound_multipliers
from .nnls import nnls
from .options import SolveOptions, Tolerances
from .status import Status

IDENTIFY_TOL = 1e-4
# the identifications tried in turn: a row barely inactive at the optimum (relative slack 1e-5, say) can take an
# active row's place in the first one's NNLS vertex when its gradient is nearly dependent on the active rows',
# and the repairs then cycle between the two (adding one makes the other's multiplier negative)
IDENTIFY_TOLS = (IDENTIFY_TOL, 1e-7)
CLEAR_SUPPORT = 1e-6     # a near-active row whose weight is below this (relative) is ambiguous ...
CLEAR_ACTIVE = 1e-3      # ... and so is one whose relative slack exceeds this fraction of its relative weight
MAX_ROUNDS = 12
DEPENDENT = 1e-10     # a row joining the working set whose gradient the working rows' span to this (relative)
#                       takes a working row's place (``_enter``)
MAX_NEWTON = 30
NEWTON_TOL = 64 * np.finfo(float).eps   # a scaled KKT residual at rounding level: converged
OBJECTIVE_SLACK = 1e-9
VERTEX_EXACT = 1e-13     # an active-set solver's certified vertex with residuals above this is finished too


@dataclass(frozen=True)
class FinishInfo:
    """What the finish did.  ``applied``: the certificate is computed at the finished point."""

    applied: bool
    reason: str
    rounds: int = 0
    newton_steps: int = 0
    working_set: int = 0
    residual_before: float = float("nan")
    residual_after: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


NOT_RUN = FinishInfo(False, "not requested")


@dataclass(frozen=True, eq=False)
class Finished:
    z: np.ndarray
    multipliers: np.ndarray
    lower_multipliers: np.ndarray
    upper_multipliers: np.ndarray
    info: FinishInfo
    point: object = None          # nlp.evaluate at z when the finish has it (saves a re-evaluation)


class _State:
    """Working set over the extended rows (NLP rows, then finite lower and upper bounds)."""

    def __init__(self, nlp: NLP, z, p, point=None):
        self.nlp, self.p = nlp, p
        self.z = np.asarray(z, dtype=float).copy()
        lo, up = nlp.bound_rows()
        self.m = nlp.m
        self.bound_var = np.concatenate([lo, up]).astype(int)
        self.bound_sign = np.concatenate([np.ones(lo.size), -np.ones(up.size)])
        self.bound_value = np.concatenate([nlp.lower[lo], nlp.upper[up]])
        self._cached = None if point is None else (self.z.copy(), point, extend(nlp, point, self.z))

    def evaluate(self):
        """(Point, Extended) at the current z, evaluated once per distinct z."""
        if self._cached is None or not np.array_equal(self._cached[0], self.z):
            point = self.nlp.evaluate(self.z, self.p)
            self._cached = (self.z.copy(), point, extend(self.nlp, point, self.z))
        return self._cached[1], self._cached[2]

    def fixed_variables(self, working):
        rows = np.nonzero(working[self.m:])[0]
        return self.bound_var[rows], self.bound_value[rows]


def _nnls_multipliers(ext, candidates):
    """lambda >= 0 (equalities split into +/-) minimizing ||g - J_C^T lambda|| on unit-normalized rows."""
    if candidates.size == 0:
        return np.zeros(0)
    J = ext.jacobian[candidates]
    norms = np.linalg.norm(J, axis=1)
    norms = np.where(norms > 0, norms, 1.0)
    eq = ext.equality[candidates]
    cols = np.hstack([unit_rows(J).T, -unit_rows(J[eq]).T])
    g = ext.point.gradient
    scale = max(float(np.max(np.abs(g), initial=0.0)), TINY)
    coef, _ = nnls(cols, g / scale, maxiter=50 * max(cols.shape[1], 10))
    lam = coef[:candidates.size].copy()
    lam[np.nonzero(eq)[0]] -= coef[candidates.size:]
    return lam * scale / norms


def _kkt_step(H, J, F1, F2, diagonal: bool):
    """Solve [[H, -J^T], [J, 0]] [dz; dlam] = -[F1; F2].

    Symmetries (deep nets, rescalings) make this matrix singular: it is regularized by +-delta on the
    diagonal (delta = 1e-12 of its largest entry), which leaves steps along the symmetries ~0.
    """
    n, k = (H.size if diagonal else H.shape[0]), J.shape[0]
    if diagonal and np.all(H > 0):
        Hinv = 1.0 / H
        S = (J * Hinv) @ J.T
        try:
            dlam = cho_solve(cho_factor(S), -F2 + J @ (Hinv * F1)) if k else np.zeros(0)
            return Hinv * (-F1 + J.T @ dlam), dlam
        except (LinAlgError, ValueError):
            pass
    if diagonal and np.all(H >= 0) and np.any(H > 0) and np.any(H == 0):
        step = _bordered_step(H, J, F1, F2)
        if step is not None:
            return step
    Hm = np.diag(H) if diagonal else H
    K = np.block([[Hm, -J.T], [J, np.zeros((k, k))]])
    delta = 1e-12 * max(float(np.max(np.abs(K), initial=0.0)), TINY)
    K[np.diag_indices(n)] += delta
    K[n + np.arange(k), n + np.arange(k)] -= delta
    rhs = -np.concatenate([F1, F2])
    try:
        step = np.linalg.solve(K, rhs)
    except LinAlgError:
        step = np.full(n + k, np.nan)
    if not np.all(np.isfinite(step)):
        step = np.linalg.lstsq(K, rhs, rcond=None)[0]
    return step[:n], step[n:]


def _bordered_step(H, J, F1, F2):
    """The KKT step for a diagonal H >= 0 with zeros (coordinates F left out of the objective, e.g. an SVM's bias):
    the coordinates R with H > 0 are eliminated (dz_R = H_R^-1 (J_R^T dlam - F1_R)), leaving the bordered system
    [[J_R H_R^-1 J_R^T, J_F], [J_F^T, 0]] [dlam; dz_F] = [-F2 + J_R H_R^-1 F1_R; F1_F] of size k + |F| instead of
    n + k.  None when it is singular (the general, regularized system is solved instead)."""
    positive = H > 0
    k, f = J.shape[0], int(np.sum(~positive))
    Hinv = 1.0 / H[positive]
    JR, JF = J[:, positive], J[:, ~positive]
    M = np.zeros((k + f, k + f))
    M[:k, :k] = (JR * Hinv) @ JR.T
    M[:k, k:] = JF
    M[k:, :k] = JF.T
    rhs = np.concatenate([-F2 + JR @ (Hinv * F1[positive]), F1[~positive]])
    try:
        solution = np.linalg.solve(M, rhs)
    except LinAlgError:
        return None
    if not np.all(np.isfinite(solution)):
        return None
    dlam = solution[:k]
    dz = np.empty(H.size)
    dz[positive] = Hinv * (-F1[positive] + JR.T @ dlam)
    dz[~positive] = solution[k:]
    return dz, dlam


def _newton(state: _State, working, lam):
    """Newton on grad phi = J_W^T lambda_W, c_W = 0 over the free variables; returns steps taken.
    The best iterate (smallest scaled residual) is kept."""
    nlp = state.nlp
    rows = np.nonzero(working[:state.m])[0]
    fixed, values = state.fixed_variables(working)
    state.z[fixed] = values
    free = np.setdiff1d(np.arange(nlp.n), fixed)
    best, best_z, best_lam = np.inf, state.z.copy(), lam.copy()
    for step in range(MAX_NEWTON + 1):
        point, _ = state.evaluate()
        J = point.jacobian[rows][:, free]
        F1 = point.gradient[free] - J.T @ lam[rows]
        F2 = point.values[rows]
        Js = None if point.jacobian_scale is None else point.jacobian_scale[rows][:, free]
        gs = None if point.gradient_scale is None else point.gradient_scale[free]
        size = max(stationarity_residual(point.gradient[free], J, lam[rows], gs, jacobian_scale=Js) if free.size else 0.0,
                   float(np.max(np.abs(F2) / np.maximum(point.levels[rows], TINY), initial=0.0)))
        improving = np.isfinite(size) and size < 0.5 * best
        if np.isfinite(size) and size < best:
            best, best_z, best_lam = size, state.z.copy(), lam.copy()
        if size < NEWTON_TOL or (not improving and step > 2) or step == MAX_NEWTON:
            break
        row_lam = np.zeros(state.m)
        row_lam[rows] = lam[rows]
        with np.errstate(all="ignore"):     # outside a model's domain (log predictors): stop, keep the best
            H = np.asarray(nlp.hessian(state.z, state.p, row_lam), dtype=float)
        Hf = H[free] if nlp.hessian_diagonal else H[np.ix_(free, free)]
        if not np.all(np.isfinite(Hf)):
            break
        dz, dlam = _kkt_step(Hf, J, F1, F2, nlp.hessian_diagonal)
        state.z[free] += dz
        lam[rows] += dlam
    state.z[:], lam[:] = best_z, best_lam
    return step


def _bound_multipliers(state: _State, working, lam):
    """Multipliers of the held bounds from stationarity in the fixed variables."""
    point, _ = state.evaluate()
    rows = np.nonzero(working[:state.m])[0]
    reduced = point.gradient - point.jacobian[rows].T @ lam[rows]
    held = np.nonzero(working[state.m:])[0]
    lam[state.m + held] = state.bound_sign[held] * reduced[state.bound_var[held]]
    lam[state.m:][~working[state.m:]] = 0.0


def _repair(ext, working, lam, tol: Tolerances) -> bool:
    """Drop the most negative multiplier or add the most violated row; False when nothing to do."""
    ineq_working = working & ~ext.equality
    negative = np.where(ineq_working, lam, np.inf)
    top = max(float(np.max(np.abs(lam), initial=0.0)), TINY)
    if negative.size and np.min(negative) < -tol.support * top:
        i = int(np.argmin(negative))
        working[i], lam[i] = False, 0.0
        return True
    slack = np.where(working | ext.equality, np.inf, ext.values / np.maximum(ext.levels, TINY))
    if slack.size and np.min(slack) < -tol.active * 1e-2:
        _enter(ext, working, lam, int(np.argmin(slack)))
        return True
    return False


def _enter(ext, working, lam, row: int) -> None:
    """Row ``row`` joins the working set.  When its gradient a is a combination of the working rows' (a = J_W^T alpha
    to relative DEPENDENT: at a vertex, say, where n rows already hold the n variables), the working set would be
    dependent and Newton's KKT system singular (multipliers ~1e16, and the repairs cycle between the two sets), so
    one row leaves by the textbook ratio test of a dual active-set step: with the new row's multiplier t,
    grad phi = sum_j (lambda_j - t alpha_j) a_j + t a holds for every t; t grows until the first inequality row with
    alpha_j > 0 reaches lambda_j - t alpha_j = 0, and that row leaves.  No such row: the row joins as before."""
    rows = np.nonzero(working)[0]
    J, a = ext.jacobian[rows], ext.jacobian[row]
    if rows.size and np.all(np.isfinite(J)) and np.all(np.isfinite(a)):    # (LAPACK's SVD fails on NaN / inf)
        alpha = np.linalg.lstsq(J.T, a, rcond=None)[0]
        blocking = ~ext.equality[rows] & (alpha > 0)
        if np.linalg.norm(J.T @ alpha - a) <= DEPENDENT * np.linalg.norm(a) and blocking.any():
            ratios = lam[rows][blocking] / alpha[blocking]
            k = int(np.argmin(ratios))
            t = max(float(ratios[k]), 0.0)
            lam[rows] -= t * alpha
            leaving = rows[blocking][k]
            working[leaving], lam[leaving], lam[row] = False, 0.0, t
    working[row] = True


def infeasibility_gain(ext, multipliers) -> float:
    """sum_i |lambda_i| v_i, v_i the violation of row i at the point of ``ext`` (max(0, -c_i), |h_j| for equalities):
    how much lower than the optimum an infeasible point's objective may be (for a convex problem, weak duality:
    f* = L(z*, lambda*) <= L(z, lambda*) <= f(z) + sum_i lambda*_i v_i).  The finish compares objectives with it:
    the exact vertex of an LDP whose kept point violated rows by 7e-9 was "worse" by more than 1e-9 and refused."""
    return float(np.sum(np.abs(np.asarray(multipliers, dtype=float)) * row_violations(ext.values, ext.equality)))


def finish(nlp: NLP, z, multipliers, lower_multipliers, upper_multipliers, p=None,
           tolerances: Tolerances | None = None, point=None, vertex: bool = False) -> Finished:
    """Exact active-set finish of an IPOPT point (see the module docstring); ``point``: nlp.evaluate at z.

    ``vertex``: the multipliers come from an active-set solver (their support is linearly independent), so the
    working set starts from the candidate rows with a positive multiplier, with those multipliers, instead of
    from NNLS multipliers (which would find the same vertex at a higher cost)."""
    tol = tolerances or Tolerances()
    z = np.asarray(z, dtype=float)
    state = _State(nlp, z, p, point)
    point0, ext0 = state.evaluate()
    lam0 = np.concatenate([np.asarray(multipliers, dtype=float),
                           split_bound_multipliers(nlp, lower_multipliers, upper_multipliers)])
    before = residuals(ext0, lam0).max
    keep = Finished(z, np.asarray(multipliers, dtype=float), np.asarray(lower_multipliers, dtype=float),
                    np.asarray(upper_multipliers, dtype=float), FinishInfo(False, "", residual_before=before))
    if nlp.hessian is None:
        return _kept(keep, "no Hessian of the Lagrangian")
    if not np.all(np.isfinite(z)) or not np.isfinite(point0.objective):
        return _kept(keep, "IPOPT's point is not finite")
    scale, weights = balance(point0.gradient, ext0.jacobian, lam0, point0.gradient_scale, ext0.jacobian_scale)
    for identify in IDENTIFY_TOLS:             # a tighter identification where the first one was not the answer
        candidates = _candidates(ext0, weights, scale, identify)
        state = _State(nlp, z, p, point0)        # from IPOPT's point each time
        lam, working, rounds, steps = _active_set(state, ext0, lam0, candidates, vertex, tol)
        point, ext = state.evaluate()
        after = residuals(ext, lam).max
        certified = bool(np.isfinite(after) and after <= tol.kkt)
        if certified:
            break
    worse = point.objective > point0.objective + infeasibility_gain(ext0, lam) + \
        OBJECTIVE_SLACK * max(1.0, abs(point0.objective))
    info = FinishInfo(True, "", rounds, steps, int(working.sum()), before, after)
    if not certified or (worse and before <= tol.kkt):
        reason = "objective increased" if certified else "the finished point is not certified"
        return _kept(keep, reason, rounds=rounds, newton_steps=steps, residual_after=after)
    m, lo_hi = nlp.m, nlp.bound_rows()
    lower, upper = np.zeros(nlp.n), np.zeros(nlp.n)
    lower[lo_hi[0]] = lam[m:m + lo_hi[0].size]
    upper[lo_hi[1]] = lam[m + lo_hi[0].size:]
    return Finished(state.z.copy(), lam[:m].copy(), lower, upper, info, point)


def _candidates(ext0, weights, scale: float, identify: float) -> np.ndarray:
    """Rows that may be active: equalities, inequalities with relative slack <= ``identify``, and rows whose
    multiplier weight (``certify.multiplier_weights``) is above 1e-6 of the stationarity scale."""
    return np.nonzero(ext0.equality | (ext0.values / np.maximum(ext0.levels, TINY) <= identify)
                      | (weights > 1e-6 * scale))[0]


def _active_set(state: _State, ext0, lam0, candidates, vertex: bool, tol: Tolerances):
    """Steps 2-4 of the module docstring from ``candidates``: (multipliers, working set, rounds, Newton steps)."""
    lam = np.zeros(lam0.size)
    if vertex:
        lam[candidates] = np.where(ext0.equality[candidates] | (lam0[candidates] > 0), lam0[candidates], 0.0)
    else:
        lam[candidates] = _nnls_multipliers(ext0, candidates)
    working = np.zeros(lam.size, dtype=bool)
    working[candidates] = ext0.equality[candidates] | (lam[candidates] > 0)
    lam[~working] = 0.0
    steps, rounds = 0, 0
    for rounds in range(1, MAX_ROUNDS + 1):
        steps += _newton(state, working, lam)
        _bound_multipliers(state, working, lam)
        _, ext = state.evaluate()
        if not _repair(ext, working, lam, tol):
            break
    return lam, working, rounds, steps


def _kept(keep: Finished, reason: str, **numbers) -> Finished:
    info = FinishInfo(False, reason, residual_before=keep.info.residual_before,
                      **{k: v for k, v in numbers.items()})
    return Finished(keep.z, keep.multipliers, keep.lower_multipliers, keep.upper_multipliers, info)


def fit_multipliers(nlp: NLP, z, p=None, tolerances: Tolerances | None = None, point=None) -> np.ndarray:
    """NNLS multipliers (over the extended rows: NLP rows, then bounds) on the active rows at z.

    Used to test whether a point is a KKT point of an NLP whose multipliers were not computed for it
    (e.g. the original problem at a point solved within an activation region).  ``point``: ``nlp.evaluate(z, p)``
    when the caller has it.
    """
    tol = tolerances or Tolerances()
    point = nlp.evaluate(np.asarray(z, dtype=float), p) if point is None else point
    ext = extend(nlp, point, z)
    candidates = np.nonzero(ext.equality | (ext.values / np.maximum(ext.levels, TINY) <= tol.active))[0]
    lam = np.zeros(ext.values.size)
    lam[candidates] = _nnls_multipliers(ext, candidates)
    return lam


NOT_NEEDED = ("not needed: the solver's point is certified, LICQ holds and every near-active row is clearly in the "
              "support")


def well_identified(report: KKTReport, tol: Tolerances) -> bool:
    """IPOPT's point needs no finish: certified, LICQ holds, and every near-active inequality row (relative slack
    s <= IDENTIFY_TOL) is clearly active and in the support: relative weight w (of the stationarity scale) above
    CLEAR_SUPPORT and s <= CLEAR_ACTIVE w.  On an interior point's path s w ~ mu: a strictly complementary row has
    w ~ 1 and s ~ mu, a degenerate one (multiplier 0 at the optimum, slack 0) both ~ sqrt(mu), and there the point is
    off by ~ sqrt(mu) although every residual is ~ mu (an SVM with a weakly active sample: slack 1.1e-5, weight
    2.5e-5, residuals 4.5e-11, w off by 8e-6)."""
    if not report.kkt_met(tol) or not report.licq.holds:
        return False
    ext = report.extended
    slack = ext.values / np.maximum(ext.levels, TINY)
    near = ~ext.equality & (slack <= IDENTIFY_TOL)
    if not near.any():
        return True
    scale, weights = report.balance()
    relative = weights / max(scale, TINY)
    clear = (relative > CLEAR_SUPPORT) & (slack <= CLEAR_ACTIVE * relative)
    return bool(np.all(clear[near]))


def complementary_multipliers(nlp: NLP, z, multipliers, lower, upper, p=None):
    """Multipliers with those of clearly inactive rows (relative slack > IDENTIFY_TOL) set to 0."""
    point = nlp.evaluate(np.asarray(z, dtype=float), p)
    ext = extend(nlp, point, z)
    lam = np.concatenate([np.asarray(multipliers, dtype=float), split_bound_multipliers(nlp, lower, upper)])
    inactive = ~ext.equality & (ext.values / np.maximum(ext.levels, TINY) > IDENTIFY_TOL)
    lam[inactive] = 0.0
    m, (lo, up) = nlp.m, nlp.bound_rows()
    low, high = np.zeros(nlp.n), np.zeros(nlp.n)
    low[lo], high[up] = lam[m:m + lo.size], lam[m + lo.size:]
    return lam[:m], low, high, point


def finish_or_keep(nlp: NLP, result, opts: SolveOptions, p=None, want_report: bool = True, row_gram=None
                   ) -> tuple[Finished, KKTReport | None]:
    """IPOPT's result (an ``ipopt.IpoptResult``), finished where it can matter (see the module docstring),
    with the certificate report of the point kept (None when not ``want_report`` and the decision did not
    need it); ``row_gram``: ``certify``'s (a ``certify.RowGram`` of the NLP's rows)."""
    tol = opts.tolerances
    rows, low, high, point = complementary_multipliers(nlp, result.z, result.multipliers, result.lower_multipliers,
                                                       result.upper_multipliers, p)
    kept = Finished(result.z, rows, low, high, NOT_RUN)

    def report_of_kept():
        return certify(nlp, result.z, rows, low, high, p, tolerances=tol, point=point, row_gram=row_gram)

    if not opts.finish:
        return kept, report_of_kept() if want_report else None
    # an interior point of a linear/diagonal NLP, or of one whose sample rows are linear, is always finished (one
    # linear solve, or Newton on a QCQP: a point certified at IPOPT's 1e-10 is not enough where a component's terms
    # cancel, as features in units 1e5 beside 1 left a margin path's objective 2e-5 off at stationarity 1e-10 per
    # component), even where IPOPT stopped short (at its iteration limit, say; not at its time limit: the time is
    # up); an active-set solver's vertex, like any point of a nonlinear NLP, only where it can matter, and only from
    # a point its solver converged to
    always = nlp.hessian_diagonal or nlp.linear_margins
    vertex = bool(getattr(result, "vertex", False))
    if not result.converged and not (always and not vertex and result.status != Status.MAX_TIME
                                     and np.all(np.isfinite(result.z))):
        solver = "IPOPT" if result.solver == "ipopt" else result.solver
        reason = f"{solver} did not converge ({result.return_status})"
        return _kept(kept, reason), report_of_kept() if want_report else None
    if not always or vertex:
        report = report_of_kept()
        # a vertex is finished unless it is exact already (the finish from its support costs one linear solve)
        if well_identified(report, tol) and (not vertex or report.residuals.max <= VERTEX_EXACT):
            return _kept(kept, NOT_NEEDED, residual_after=report.residuals.max), report
    finished = finish(nlp, result.z, rows, low, high, p, tolerances=tol, point=point, vertex=vertex)
    if vertex and not finished.info.applied:            # the solver's support was not the answer: from NNLS
        finished = finish(nlp, result.z, rows, low, high, p, tolerances=tol, point=point)
    if not want_report:
        return finished, None
    if not finished.info.applied:
        return finished, report_of_kept()
    return finished, certify(nlp, finished.z, finished.multipliers, finished.lower_multipliers,
                             finished.upper_multipliers, p, tolerances=tol, point=finished.point, row_gram=row_gram)
