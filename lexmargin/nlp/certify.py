"""The one certificate check: relative KKT residuals, active set, support, LICQ, second order.

For  min phi(z)  s.t.  c_i(z) >= 0,  h_j(z) = 0  (bounds are rows too, see ``nlp.extend``), at a point
z with multipliers lambda (inequalities) and mu (equalities), with g = grad phi, rows' levels s_i > 0:

* stationarity      max_j |(g - J_c^T lambda - J_h^T mu)_j| / T_j,  T_j = max(g~_j, sum_i |lambda_i| |(grad c_i)_j|)
                    (at least eps S, S = max_j T_j: components whose terms all vanish count as empty)
                    where g~ >= |g| is the size of the terms of g (``Point.gradient_scale``): each component of
                    the residual as a fraction of the terms that cancel in it (per component, not against the
                    largest component's terms: features in units 1e-6 beside 1e5 have their balance checked too);
* primal            max( max_i max(0, -c_i) / s_i ,  max_j |h_j| / s_j );
* dual              max_i max_j max(0, -lambda_i) |(grad c_i)_j| / T_j;
* complementarity   max_i |lambda_i| |c_i| / max(sum_i |lambda_i| s_i, ||g~||_inf ||z||_inf);
* decrement         sum_j e_j^2 / (2 h_j) / max(sum_i |lambda_i| s_i, ||g~||_inf ||z||_inf) where the Hessian of the
                    Lagrangian is diagonal (h_j > 0; 0 elsewhere, not computed), e_j = |(g - J^T lambda)_j| beyond its
                    rounding bound: what a Newton step on the Lagrangian would gain, in objective units.  For a convex
                    problem it bounds the objective's error (with complementarity), which stationarity relative to the
                    terms T_j bounds only to kappa times the residual where the terms exceed the objective by kappa.

Stationarity is measured with ``representative_multipliers``: lambda without its components along exact linear
dependencies among its rows, where the terms cancel by more than CANCELLATION (along a dependency terms cancel
exactly whatever their size, and hide any residual in their rounding).

All five are invariant to rescaling the data, theta, the objective and any row; stationarity and dual feasibility
also to rescaling any one variable (they are measured in equilibrated units: component j multiplied by
e_j = S / T_j, S = max_j T_j the stationarity scale); a multiplier is judged by what it contributes to grad phi, so multipliers that are solver
noise (all true multipliers 0) neither fail dual feasibility nor count as support.  Words (textbook):

* active set A: rows with c_i / s_i <= tol.active, whatever their multiplier (equalities always);
* support S: rows whose multiplier matters in the stationarity balance of some component:
  max_j |lambda_i| |(grad c_i)_j| / T_j > tol.support;
* degenerate: active inequality rows outside the support (strict complementarity holds iff none);
* LICQ: the active rows' gradients, each normalized to unit length, have full row rank (singular
  values below tol.rank * largest do not count); ``smallest_singular_value`` is relative.  Active
  bounds are unit rows and are eliminated exactly (rank = #bounds + rank of the other rows on the
  variables not at a bound);
* second order: the Hessian of the Lagrangian reduced to the null space of the support gradients is
  positive definite (a sufficient condition for a strict local minimum), eigenvalues judged relative
  to max(||H||, S / ||z||_inf) (S the stationarity scale: when the terms of H cancel, H ~ 0 is not
  "definite"); negative curvature on the
  null space of all active gradients while LICQ holds means the point is not a local minimum (the
  necessary condition fails); otherwise inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from .lapack import cholesky_lower, solve_lower
from .nlp import NLP, Extended, extend, split_bound_multipliers
from .options import Tolerances

TINY = np.finfo(float).tiny
SECOND_ORDER_MAX_SIZE = 3000
GRAM_MIN_SIZE = 20_000      # LICQ / null spaces of k x n rows (k <= n) from the k x k Gram matrix above this size ...
GRAM_CONDITION = 1e-4       # ... when its eigenvalues are within this ratio (full rank beyond doubt)
EMPTY = np.finfo(float).eps  # components of the stationarity balance with terms below EMPTY S are judged at EMPTY S
MASK_SNAP = 1e-3            # masked second order: diagonal entries below MASK_SNAP tol.curvature (relative) are 0
DECREMENT_SNAP = 1e-12      # the decrement leaves out Hessian entries below this fraction of the largest (h ~ 0)
CANCELLATION = 1e4          # terms cancelling by more than this: measured without the rows' exact dependencies ...
DEPENDENT = 1e3 * np.finfo(float).eps   # ... singular values (relative) of the unit rows up to this: a dependency
UNRESOLVED = 1e-2           # a row whose value's rounding bound exceeds this fraction of tol.kkt (relative to its level)
#                             is re-evaluated exactly or counts it in primal feasibility (``resolved``)


@dataclass(frozen=True)
class Residuals:
    """Relative KKT residuals (see the module docstring); ``max`` is what ``optimal`` is judged by."""

    stationarity: float
    primal_feasibility: float
    dual_feasibility: float
    complementarity: float
    decrement: float = 0.0      # 0 where not computed (a Hessian of the Lagrangian that is not diagonal)

    @property
    def max(self) -> float:
        """The largest residual; NaN when any is NaN (Python's max alone would drop a NaN after the first argument;
        np.max of the five floats costs ~5 us, read several times per solve)."""
        values = (self.stationarity, self.primal_feasibility, self.dual_feasibility, self.complementarity,
                  self.decrement)
        return float("nan") if any(math.isnan(v) for v in values) else float(max(values))

    def within(self, tol: float) -> bool:
        return bool(np.isfinite(self.max) and self.max <= tol)

    def to_dict(self) -> dict:
        return {**asdict(self), "max": self.max}


@dataclass(frozen=True)
class LICQ:
    """Rank of the active rows' unit-normalized gradients; ``smallest_singular_value`` relative to the
    largest (0 when there are more active rows than variables)."""

    n_active: int
    rank: int
    smallest_singular_value: float
    holds: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SecondOrder:
    """Reduced Hessian of the Lagrangian.  ``strict``: True (positive definite on the null space of the
    support gradients: strict local minimum), False (negative curvature along the active rows' null
    space: not a local minimum), None (inconclusive or not checked, see ``reason``)."""

    checked: bool
    null_space_dimension: int
    min_eigenvalue: float
    strict: bool | None
    reason: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


NOT_CHECKED = SecondOrder(False, -1, float("nan"), None, "no Hessian")


# ---- residuals ------------------------------------------------------------------------------------
def _nonzero_rows(multipliers) -> np.ndarray:
    """Rows with a multiplier other than 0 (NaN included): the only rows a sum over lambda_i grad c_i needs
    (wide problems have many rows with lambda_i = 0)."""
    return np.nonzero(np.asarray(multipliers, dtype=float) != 0)[0]


def column_terms(gradient, jacobian, multipliers, gradient_scale=None, jacobian_scale=None) -> np.ndarray:
    """T_j = max(g~_j, sum_i |lambda_i| J~_ij): the size of the terms that cancel in component j of the stationarity
    balance g - J^T lambda (g~ >= |g|, J~ >= |J|: the terms of grad phi and of the rows' gradients themselves;
    ``jacobian_scale``: J~, |J| when None)."""
    return _row_terms(gradient, jacobian, multipliers, gradient_scale, jacobian_scale)[2]


def _row_terms(gradient, jacobian, multipliers, gradient_scale, jacobian_scale):
    """(rows with a nonzero multiplier, J~ = max(|J|, jacobian_scale) of those rows, ``column_terms``) from one pass
    over those rows (J~ formed once: wide problems have rows of 10^4 entries)."""
    g = np.asarray(gradient, dtype=float)
    J = np.asarray(jacobian, dtype=float).reshape(-1, g.size)
    lam = np.abs(np.asarray(multipliers, dtype=float))
    rows = _nonzero_rows(lam)
    part = np.abs(J if rows.size == J.shape[0] else J[rows])
    if jacobian_scale is not None:
        scale_rows = np.asarray(jacobian_scale, dtype=float).reshape(-1, g.size)
        part = np.maximum(part, scale_rows if rows.size == J.shape[0] else scale_rows[rows])
    size = np.abs(g) if gradient_scale is None else np.maximum(np.abs(g), np.asarray(gradient_scale, dtype=float))
    return rows, part, np.maximum(size, part.T @ lam[rows])


def representative_multipliers(jacobian, multipliers, balance: float, terms=None) -> np.ndarray:
    """The multipliers stationarity is measured with: lambda itself (the same object), unless the rows with a nonzero
    multiplier are linearly dependent to rounding (singular values of their unit rows below DEPENDENT of the largest)
    and their terms cancel by more than CANCELLATION (max_j sum_i |lambda_i J_ij| against max_j of |J^T lambda| and
    g~): then lambda without its components along those dependencies, the minimum-norm lambda' (rows at unit length)
    with J^T lambda' = J^T lambda (``_without_dependencies``).  Along an exact dependency the terms cancel exactly
    whatever their size, and so does their rounding: IPOPT left multipliers of +-1e17 on a lexicographic stage's
    three dependent fixed-margin rows, whose terms (and the rounding of g - J^T lambda, ~300) hid a residual of 0.9
    of the objective's gradient, and its worst point was certified ``optimal``.  Rows independent but nearly
    dependent (a singular value of 7e-12: features in units 1e-6 beside 1e5) keep their multipliers, large as they
    must be (the exact optimum's).  ``balance``: max_j of |J^T lambda| and g~ (``balance_size``); ``terms``: the
    ``column_terms`` of the same arguments when the caller has them (their largest decides as well: where g~ is the
    largest term nothing cancels beyond it).  Below CANCELLATION nothing is factorized (a cost only where terms cancel
    that much)."""
    lam = np.asarray(multipliers, dtype=float)
    rows = _nonzero_rows(lam)
    if rows.size < 2 or not np.isfinite(lam[rows]).all():
        return lam
    J = np.asarray(jacobian, dtype=float)
    J = (J if rows.size == J.shape[0] else J[rows])
    terms = float(np.max(np.abs(J).T @ np.abs(lam[rows]) if terms is None else terms, initial=0.0))
    # the gate first: a pass over J for its finiteness only where the terms cancel that much
    if not terms > CANCELLATION * balance or not np.isfinite(J).all():
        return lam
    independent = _without_dependencies(J, lam[rows])
    if independent is None:
        return lam
    out = lam.copy()
    out[rows] = independent
    return out


def balance_size(gradient, lagrangian, gradient_scale=None) -> float:
    """max_j of |J^T lambda| (= g - the Lagrangian's gradient) and g~ (|g| when None): what the balance produces."""
    produced = float(np.abs(np.asarray(gradient, dtype=float) - np.asarray(lagrangian, dtype=float)).max(initial=0.0))
    return max(gradient_size(gradient, gradient_scale), produced)


def gradient_size(gradient, gradient_scale=None) -> float:
    """max_j g~_j, g~ = max(|g|, ``gradient_scale``) (|g| when None): the size of the objective's gradient terms."""
    g = np.abs(np.asarray(gradient, dtype=float))
    sizes = g if gradient_scale is None else np.maximum(g, np.asarray(gradient_scale, dtype=float))
    return float(sizes.max(initial=0.0))


def _without_dependencies(J, lam) -> np.ndarray | None:
    """The minimum-norm mu' (rows of J at unit length U, mu = lambda ||J_i||) with U^T mu' = U^T mu: mu projected on
    the range of U (singular values up to DEPENDENT of the largest are dependencies; the thin SVD of U, skipped where
    the Gram matrix U U^T shows full row rank beyond doubt, ``unit_gram``'s test), as lambda (rows of J that are 0
    keep theirs: they move nothing); None where the rows are independent.  J is finite."""
    norms = np.linalg.norm(J, axis=1)
    keep = norms > 0
    U, mu = J[keep] / norms[keep, None], lam[keep] * norms[keep]
    if U.shape[0] < 2:
        return None
    if U.shape[0] <= U.shape[1]:           # the Gram matrix decides the clear cases (speed only: the SVD agrees)
        w = np.linalg.eigvalsh(U @ U.T)
        if w[0] > GRAM_CONDITION * w[-1]:
            return None
    P, s, _ = np.linalg.svd(U, full_matrices=False)
    rank = int(np.sum(s > DEPENDENT * s[0]))
    if rank == U.shape[0]:
        return None
    out = np.asarray(lam, dtype=float).copy()
    out[keep] = P[:, :rank] @ (P[:, :rank].T @ mu) / norms[keep]
    return out


def equilibration(terms) -> tuple[float, np.ndarray]:
    """(S, e): S = max(max_j T_j, TINY) the stationarity scale, e_j = S / max(T_j, EMPTY S) the factor that brings
    component j's terms to S (components with terms below EMPTY S, at rounding level of the largest, count as
    empty: e.g. a variable pinned at 0 whose terms all vanish with it)."""
    T = np.asarray(terms, dtype=float)
    scale = max(float(T.max(initial=0.0)), TINY)
    return scale, scale / np.maximum(T, EMPTY * scale)


def multiplier_weights(jacobian, multipliers, factors=None) -> np.ndarray:
    """|lambda_i| max_j |J_ij| e_j: what row i contributes to the stationarity balance, each component brought to the
    scale S by its factor e_j (``equilibration``; 1 when not given: ||grad c_i||_inf)."""
    J = np.atleast_2d(np.asarray(jacobian, dtype=float))
    lam = np.abs(np.asarray(multipliers, dtype=float))
    if lam.size == 0:
        return np.zeros(0)
    weights = np.zeros(lam.size)
    rows = _nonzero_rows(lam)
    if rows.size and J.shape[1]:
        part = np.abs(J if rows.size == J.shape[0] else J[rows])
        if factors is not None:
            part = part * np.asarray(factors, dtype=float)
        weights[rows] = lam[rows] * part.max(axis=1)
    return weights


def terms_and_weights(gradient, jacobian, multipliers, gradient_scale=None,
                      jacobian_scale=None) -> tuple[np.ndarray, np.ndarray]:
    """(``column_terms``, ``multiplier_weights`` of the term sizes J~ at their equilibration): ``equilibrated_terms``
    without the equilibration."""
    terms, _, weights = equilibrated_terms(gradient, jacobian, multipliers, gradient_scale, jacobian_scale)
    return terms, weights


def equilibrated_terms(gradient, jacobian, multipliers, gradient_scale=None, jacobian_scale=None
                       ) -> tuple[np.ndarray, tuple[float, np.ndarray], np.ndarray]:
    """(``column_terms``, their ``equilibration`` (S, e), ``multiplier_weights`` of the term sizes J~ at e) from one
    pass over the rows with a nonzero multiplier (``_row_terms``); the equilibration is kept for the residuals (each
    P-vector pass once)."""
    rows, part, terms = _row_terms(gradient, jacobian, multipliers, gradient_scale, jacobian_scale)
    lam = np.abs(np.asarray(multipliers, dtype=float))
    weights = np.zeros(lam.size)
    equilibrated = equilibration(terms)
    if rows.size and part.shape[1]:
        part *= equilibrated[1]
        weights[rows] = lam[rows] * part.max(axis=1)
    return terms, equilibrated, weights


def balance(gradient, jacobian, multipliers, gradient_scale=None, jacobian_scale=None) -> tuple[float, np.ndarray]:
    """(``stationarity_scale``, equilibrated ``multiplier_weights``) of the same arguments (``equilibrated_terms``)."""
    _, (scale, _), weights = equilibrated_terms(gradient, jacobian, multipliers, gradient_scale, jacobian_scale)
    return scale, weights


def stationarity_scale(gradient, jacobian, multipliers, gradient_scale=None, jacobian_scale=None) -> float:
    """S = max_j T_j (``column_terms``): the size of the largest terms that cancel in the stationarity balance."""
    return equilibration(column_terms(gradient, jacobian, multipliers, gradient_scale, jacobian_scale))[0]


def lagrangian_gradient(gradient, jacobian, multipliers) -> np.ndarray:
    """g - J^T lambda, summed over the rows with a nonzero multiplier."""
    g = np.asarray(gradient, dtype=float)
    J = np.asarray(jacobian, dtype=float).reshape(-1, g.size)
    lam = np.asarray(multipliers, dtype=float)
    rows = _nonzero_rows(lam)
    return g - (J if rows.size == J.shape[0] else J[rows]).T @ lam[rows]


def stationarity_residual(gradient, jacobian, multipliers, gradient_scale=None, terms=None,
                          jacobian_scale=None, lagrangian=None, equilibrated=None) -> float:
    """max_j |(g - J^T lambda)_j| / max(T_j, EMPTY S): each component of the residual as a fraction of its own terms
    (``equilibration``; ``terms``: ``column_terms`` of the same arguments, ``lagrangian``: their
    ``lagrangian_gradient``, ``equilibrated``: ``equilibration(terms)``, when the caller has them)."""
    residual = np.abs(lagrangian_gradient(gradient, jacobian, multipliers) if lagrangian is None else lagrangian)
    if terms is None:
        terms = column_terms(gradient, jacobian, multipliers, gradient_scale, jacobian_scale)
    scale, factors = equilibration(terms) if equilibrated is None else equilibrated
    return float((residual * factors).max(initial=0.0)) / scale


def decrement_residual(gradient, jacobian, multipliers, terms, diagonal, reference: float,
                       lagrangian=None) -> float:
    """What a Newton step on the Lagrangian at fixed multipliers would gain, in objective units: for a diagonal
    Hessian of the Lagrangian h,

        sum over j with h_j > 0 of  e_j^2 / (2 h_j)   /   reference,     e_j = max(0, |(g - J^T lambda)_j| - rho_j)

    with rho_j = (k + 4) (eps / 2) T_j the rounding bound of the computed residual (k rows with a nonzero multiplier:
    the sum's terms, the point's and the multipliers' own rounding), so an exactly rounded solution reads 0.  For a
    convex problem (quadratic Lagrangian, h >= 0, lambda >= 0 on the inequalities) it is the gap
    L(z, lambda) - min_z L(z, lambda) of the coordinates with h_j > 0, so f(z) - f* <= it + sum_i lambda_i c_i at a
    feasible z (weak duality): it bounds the objective's error, which the per-component stationarity bounds only to
    kappa times the residual where the terms T_j exceed the objective by kappa (features in units 1e-6 beside 1e6:
    an IPOPT point stationary to 2.6e-9 of its terms was 1e-5 off in objective).  Entries h_j up to DECREMENT_SNAP of
    the largest (e.g. an unregularized bias, h = 0) are left out, with the coordinates of negative curvature.
    ``reference``: the complementarity's objective scale; ``lagrangian``: the ``lagrangian_gradient`` of the same
    arguments when the caller has it."""
    h = np.asarray(diagonal, dtype=float)
    top = float(h.max(initial=0.0))
    curved = h > DECREMENT_SNAP * top
    if not curved.any():
        return 0.0
    residual = np.abs(lagrangian_gradient(gradient, jacobian, multipliers) if lagrangian is None else lagrangian)
    excess = np.maximum(residual - rounding_bound(multipliers, terms), 0.0)[curved]
    return float((excess * excess / (2.0 * h[curved])).sum()) / max(float(reference), TINY)


def primal_residual(values, levels, equality, uncertainty=None) -> float:
    """Largest relative violation a row may have at the point in exact arithmetic: max(0, u_i - c_i) / s_i for an
    inequality, (|h_j| + u_j) / s_j for an equality, with u the rows' rounding bounds (``value_rounding``; 0 when
    not given): a row computed feasible by less than its own rounding is not known to be feasible."""
    c, s, eq = _rows(values, levels, equality)
    return float((row_violations(c, eq, uncertainty) / s).max(initial=0.0))


def row_violations(values, equality, uncertainty=None) -> np.ndarray:
    """Each row's possible violation: max(0, u_i - c_i) for an inequality c_i >= 0, |h_j| + u_j for an equality, u the
    rows' rounding bounds (0 when not given)."""
    c, eq = np.asarray(values, dtype=float), np.asarray(equality, dtype=bool)
    u = np.zeros(c.size) if uncertainty is None else np.asarray(uncertainty, dtype=float)
    return np.where(eq, np.abs(c) + u, np.maximum(0.0, u - c))


def resolved(nlp: NLP, ext: Extended, tol: Tolerances) -> tuple[Extended, np.ndarray]:
    """(ext, uncertainty): rows whose values' rounding bound (``value_rounding``) exceeds UNRESOLVED tol.kkt of their
    level are unresolved: the NLP's ``exact_values`` re-evaluates those it can (exactly rounded: the margins of
    models linear in theta), and the others keep their bound as an uncertainty that primal feasibility counts
    (``primal_residual``).  A well-conditioned row's rounding cannot move a residual judged at tol.kkt (0 there)."""
    u = value_rounding(ext)
    unresolved = u / np.maximum(np.asarray(ext.levels, dtype=float), TINY) > UNRESOLVED * tol.kkt
    rows = np.nonzero(unresolved[:nlp.m])[0]
    if rows.size and nlp.exact_values is not None:
        exact, done = nlp.exact_values(ext.z, rows)
        if np.any(done):
            values = np.array(ext.point.values, dtype=float)
            values[rows[done]] = exact[done]
            ext = extend(nlp, replace(ext.point, values=values), ext.z)
            unresolved[rows[done]] = False
    return ext, np.where(unresolved, u, 0.0)


def value_rounding(ext: Extended) -> np.ndarray:
    """u_i = (k + 4) (eps / 2) (sum_j |J_ij z_j| + |c_i| + s_i): a bound on the rounding of each computed row value
    c_i, from its first-order terms (exact for rows linear in z, A_i z + b_i: at most k = the nonzero entries of z
    products, the sum and the offset) and its level; rows whose terms cancel to a value far below them (theta ~ 1e9
    on nearly inseparable data, where the double nearest the optimum violates a margin row by 1e-7 in exact
    arithmetic) cannot be resolved at the tolerance."""
    J = ext.jacobian if ext.jacobian_scale is None else ext.jacobian_scale
    z = np.abs(np.asarray(ext.z, dtype=float))
    terms = np.abs(J) @ z
    k = np.count_nonzero(z)             # at least each row's nonzero products (a product with z_j = 0 is exact)
    with np.errstate(invalid="ignore", over="ignore"):
        return (k + 4) * 0.5 * np.finfo(float).eps * (terms + np.abs(ext.values) + np.maximum(ext.levels, 0.0))


def dual_residual(jacobian, multipliers, equality, terms, equilibrated=None) -> float:
    """Largest negative inequality multiplier, weighted by its row's gradient in each component relative to that
    component's terms: max_i max_j max(0, -lambda_i) |J_ij| / T_j (``terms``: ``column_terms``; ``equilibrated``:
    ``equilibration(terms)`` when the caller has it); a negative multiplier that moves nothing in the balance does
    not count."""
    lam = np.asarray(multipliers, dtype=float)
    eq = np.asarray(equality, dtype=bool)
    scale, factors = equilibration(terms) if equilibrated is None else equilibrated
    negative = multiplier_weights(jacobian, np.minimum(lam, 0.0), factors)
    return float(negative[~eq].max(initial=0.0)) / scale


def complementarity_residual(values, levels, multipliers, equality, objective_scale: float = 0.0) -> float:
    """max_i |lambda_i| |c_i| / max(sum_i |lambda_i| s_i, objective_scale): lambda_i c_i is in objective
    units; ``objective_scale`` (||g~|| ||z||) is the reference when every multiplier is negligible."""
    c, s, eq = _rows(values, levels, equality)
    lam = np.abs(np.asarray(multipliers, dtype=float))[~eq]
    scale = complementarity_scale(s, multipliers, eq, objective_scale)
    return float((lam * np.abs(c[~eq])).max(initial=0.0)) / scale


def complementarity_scale(levels, multipliers, equality, objective_scale: float = 0.0) -> float:
    """max(sum_i |lambda_i| s_i over the inequality rows, objective_scale): objective units (see
    ``complementarity_residual``; levels at least TINY, as ``_rows`` reads them)."""
    eq = np.asarray(equality, dtype=bool)
    s = np.maximum(np.asarray(levels, dtype=float), TINY)[~eq]
    lam = np.abs(np.asarray(multipliers, dtype=float))[~eq]
    return max(float((lam * s).sum()), float(objective_scale), TINY)


def objective_scale(ext: Extended) -> float:
    """||g~||_inf ||z||_inf: objective units at the size of the variables."""
    return gradient_size(ext.point.gradient, ext.point.gradient_scale) * float(np.abs(ext.z).max(initial=0.0))


def residuals(ext: Extended, multipliers, terms=None, diagonal=None, lagrangian=None, representative=None,
              uncertainty=None, equilibrated=None) -> Residuals:
    """``terms``: the ``column_terms`` of (ext, multipliers) when the caller has them; ``diagonal``: the Hessian of the
    Lagrangian as its diagonal (``hessian_diagonal_of``) for the decrement, 0 without it (not computed);
    ``lagrangian``: ``lagrangian_gradient`` of (ext, multipliers); ``representative``: the multipliers without their
    rows' exact dependencies (``representative_multipliers``) where they differ: stationarity is measured with them
    (the same J^T lambda, computed without the huge cancelling terms and judged against their own terms);
    ``equilibrated``: ``equilibration(terms)`` (computed once here otherwise, for stationarity and dual feasibility)."""
    p = ext.point
    if terms is None:
        terms = column_terms(p.gradient, ext.jacobian, multipliers, p.gradient_scale, ext.jacobian_scale)
    equilibrated = equilibration(terms) if equilibrated is None else equilibrated
    objective = objective_scale(ext)
    lagrangian = lagrangian_gradient(p.gradient, ext.jacobian, multipliers) if lagrangian is None else lagrangian
    if representative is None:
        stationarity = stationarity_residual(p.gradient, ext.jacobian, multipliers, p.gradient_scale, terms,
                                             lagrangian=lagrangian, equilibrated=equilibrated)
    else:
        stationarity = stationarity_residual(p.gradient, ext.jacobian, representative, p.gradient_scale,
                                             jacobian_scale=ext.jacobian_scale)
    return Residuals(
        stationarity=stationarity,
        primal_feasibility=primal_residual(ext.values, ext.levels, ext.equality, uncertainty),
        dual_feasibility=dual_residual(ext.jacobian if ext.jacobian_scale is None else ext.jacobian_scale,
                                       multipliers, ext.equality, terms, equilibrated),
        complementarity=complementarity_residual(ext.values, ext.levels, multipliers, ext.equality, objective),
        decrement=0.0 if diagonal is None else
        decrement_residual(p.gradient, ext.jacobian, multipliers, terms, diagonal,
                           complementarity_scale(ext.levels, multipliers, ext.equality, objective), lagrangian))


def rounding_bound(multipliers, terms) -> np.ndarray:
    """(k + 4) (eps / 2) T_j: the rounding of the computed g - J^T lambda in component j (k rows with a nonzero
    multiplier: the sum's terms, the point's and the multipliers' own rounding; ``terms``: ``column_terms``)."""
    k = _nonzero_rows(multipliers).size
    return (k + 4) * 0.5 * np.finfo(float).eps * np.asarray(terms, dtype=float)


def _rows(values, levels, equality):
    c = np.asarray(values, dtype=float)
    s = np.maximum(np.asarray(levels, dtype=float), TINY)
    return c, s, np.asarray(equality, dtype=bool)


# ---- active set, support --------------------------------------------------------------------------
def active_rows(values, levels, equality, tol: float) -> np.ndarray:
    """Rows with relative slack <= tol (equalities always), whatever their multiplier."""
    c, s, eq = _rows(values, levels, equality)
    return eq | (c / s <= tol)


def support_rows(jacobian, multipliers, scale: float, tol: float, weights=None) -> np.ndarray:
    """Rows whose multiplier is nonzero at the scale of the stationarity balance: weight_i > tol * scale
    (``weights``: the equilibrated ``multiplier_weights`` of ``equilibrated_terms``; without them |lambda_i|
    ||grad c_i||_inf, the weights before equilibration)."""
    weights = multiplier_weights(jacobian, multipliers) if weights is None else weights
    return weights > tol * max(scale, TINY)


# ---- LICQ ---------------------------------------------------------------------------------------------
def unit_rows(jacobian) -> np.ndarray:
    J = np.atleast_2d(np.asarray(jacobian, dtype=float))
    norms = np.linalg.norm(J, axis=1)
    return J / np.where(norms > 0, norms, 1.0)[:, None]


def licq(active_jacobian, rank_tol: float = 1e-9, fixed=(), gram: UnitGram | None = None,
         svd: UnitSVD | None = None) -> LICQ:
    """LICQ of the active rows ``active_jacobian`` plus one unit row per variable in ``fixed`` (active
    bounds).  Bound rows are eliminated exactly: rank = #fixed + rank of the other rows restricted to
    the variables not at a bound (unit-normalized; singular values below rank_tol * largest do not
    count).  A variable at two bounds at once counts once: LICQ fails.  ``gram``, ``svd``: ``unit_gram``,
    ``unit_svd`` of these rows (no bounds) when the caller has them."""
    J = np.atleast_2d(np.asarray(active_jacobian, dtype=float))
    fixed = np.asarray(fixed, dtype=int).reshape(-1)
    others = J.shape[0] if J.size else 0
    m = others + fixed.size
    if m == 0:
        return LICQ(0, 0, 1.0, True)
    distinct = np.unique(fixed) if fixed.size else fixed
    if not np.isfinite(J).all():          # a point outside the model's domain (overflow): no rank to speak of
        return LICQ(m, 0, float("nan"), False)
    if others == 0:
        return LICQ(m, int(distinct.size), 1.0 if distinct.size == m else 0.0, distinct.size == m)
    free = _free(J.shape[1], distinct)
    J = J if free.size == J.shape[1] else J[:, free]
    if gram is None or distinct.size:
        gram = unit_gram(J, rank_tol) if free.size else None
    spectrum = None if gram is None else gram.spectrum
    if spectrum is not None:        # full row rank beyond doubt: the singular values are sqrt(spectrum)
        rank = int(distinct.size) + others
        return LICQ(m, rank, float(np.sqrt(spectrum[0] / spectrum[-1])), rank == m)
    if svd is not None and not distinct.size:
        s = svd.values
    else:
        rows = unit_rows(J) if free.size else np.zeros((others, 0))
        s = np.linalg.svd(rows, compute_uv=False) if free.size else np.zeros(0)
    top = float(s[0]) if s.size else 0.0
    rank_other = int(np.count_nonzero(s > rank_tol * top)) if top > 0 else 0
    smallest = float(s[others - 1]) / top if others <= s.size and top > 0 else 0.0
    rank = int(distinct.size) + rank_other
    return LICQ(m, rank, smallest, rank == m)


def gram_spectrum(rows, rank_tol: float, normalize: bool = False):
    """The eigenvalues (ascending) of the Gram matrix U U^T of unit rows U (k x n), when that is the cheaper way
    to their singular values and it leaves no doubt about the rank; else None (use the SVD).

    Used for large U with k <= n (wide problems: an SVD of k x n costs ~15 times the product U U^T).  The
    eigenvalues are the squared singular values up to an absolute error ~ k eps ||U||^2, so they decide the
    rank only when the smallest is at least GRAM_CONDITION (>> k eps) of the largest and its square root is
    well above ``rank_tol``: then U has full row rank by the SVD's own rule, and the relative smallest singular
    value sqrt(w_min / w_max) is accurate to ~ k eps / GRAM_CONDITION relative.  ``normalize``: the rows are not
    unit yet; the Gram matrix of the unit rows is D^-1 (U U^T) D^-1 with D^2 its diagonal (no copy of U)."""
    gram = unit_gram(rows, rank_tol, normalize)
    return None if gram is None else gram.spectrum


@dataclass(frozen=True, eq=False)
class UnitGram:
    """The Gram matrix of unit rows (``matrix``), its eigenvalues (``spectrum``, ascending) and the rows' lengths
    (``norms``): computed once per certificate for the rows both LICQ and the second-order check use."""

    matrix: np.ndarray
    spectrum: np.ndarray
    norms: np.ndarray


def unit_gram(rows, rank_tol: float, normalize: bool = True, product=None) -> UnitGram | None:
    """``gram_spectrum``'s computation, kept (see there); None where the SVD decides.  ``product``: U U^T when the
    caller has it (``RowGram``)."""
    U = np.asarray(rows, dtype=float)
    k, n = U.shape
    if k == 0 or k > n or U.size < GRAM_MIN_SIZE:
        return None
    G = U @ U.T if product is None else product
    norms = np.ones(k)
    if normalize:
        norms = np.sqrt(np.diag(G))
        if not (norms > 0).all():
            return None
        G = G / norms[:, None] / norms[None, :]
    w = np.linalg.eigvalsh(G)
    return UnitGram(G, w, norms) if w[0] > max(GRAM_CONDITION, 100.0 * rank_tol ** 2) * w[-1] else None


@dataclass(frozen=True, eq=False)
class UnitSVD:
    """The thin SVD of unit rows (singular values ``values``, descending; right singular vectors ``vt``): computed
    once per certificate where LICQ and the masked second-order check look at the same rows and ``unit_gram`` does
    not apply (small problems)."""

    values: np.ndarray
    vt: np.ndarray


def unit_svd(rows) -> UnitSVD:
    """``UnitSVD`` of the rows normalized to unit length (``unit_rows``)."""
    _, s, vt = np.linalg.svd(unit_rows(rows), full_matrices=False)
    return UnitSVD(s, vt)


@dataclass(frozen=True, eq=False)
class RowGram:
    """``matrix`` = rows rows^T of an array of constraint gradients, formed by a caller that had it anyway (the dual
    route's A A^T): the Gram matrix of the active rows is its block when the Jacobian the certificate evaluates is
    that very array (same memory, shape and strides: the same numbers), else it is formed again.  It is a function
    of the data only (no solver iterate), so LICQ stays the textbook rank of the Jacobian's rows."""

    rows: np.ndarray
    matrix: np.ndarray

    def block(self, jacobian, mask) -> np.ndarray | None:
        """The Gram matrix of ``jacobian[mask]`` when ``jacobian`` is ``rows`` itself, else None."""
        J, R = np.asarray(jacobian), self.rows
        same = J.shape == R.shape and J.strides == R.strides and J.dtype == R.dtype and \
            J.__array_interface__["data"][0] == R.__array_interface__["data"][0]
        if not same:
            return None
        index = np.flatnonzero(mask)
        return self.matrix if index.size == R.shape[0] else self.matrix[np.ix_(index, index)]


# ---- second order ---------------------------------------------------------------------------------
def null_space(jacobian, n: int, rank_tol: float) -> np.ndarray:
    """Orthonormal basis (n x k) of the null space of the unit-normalized rows."""
    if n == 0:
        return np.zeros((0, 0))
    J = np.asarray(jacobian, dtype=float).reshape(-1, n)
    if J.shape[0] == 0:
        return np.eye(n)
    # vt must be n x n: the reduced SVD gives that when there are at least n rows (and skips the m x m U: 10^4 active
    # rows made the full one take 2.6 s per call), the full one otherwise
    _, s, vt = np.linalg.svd(unit_rows(J), full_matrices=J.shape[0] < n)
    rank = int(np.sum(s > rank_tol * s[0])) if s.size and s[0] > 0 else 0
    return vt[rank:].T


def reduced_min_eigenvalue(hessian, basis) -> float:
    if basis.shape[1] == 0:
        return float("inf")
    reduced = basis.T @ hessian @ basis
    return float(np.linalg.eigvalsh(0.5 * (reduced + reduced.T))[0])


def take_rows(matrix, mask) -> np.ndarray:
    """``matrix[mask]`` for a boolean row mask, the matrix itself (no copy) when every row is selected."""
    return matrix if mask.size == matrix.shape[0] and mask.all() else matrix[mask]


def _free(n: int, fixed) -> np.ndarray:
    fixed = np.asarray(fixed, dtype=int).reshape(-1)
    return np.setdiff1d(np.arange(n), fixed) if fixed.size else np.arange(n)


def second_order(hessian, support_jacobian, active_jacobian, tol: Tolerances, licq_holds: bool = True,
                 support_fixed=(), active_fixed=(), curvature_scale: float = 0.0) -> SecondOrder:
    """The reduced Hessian on the null space of the support rows (and of the active rows), with the
    variables at a supported (active) bound eliminated: d_j = 0 there.  Eigenvalues are relative to
    max(||H||_2, curvature_scale): when the terms of H cancel (H ~ 0), noise must not look definite."""
    H = np.asarray(hessian, dtype=float)
    n = H.shape[0]
    if not np.all(np.isfinite(H)) or not np.all(np.isfinite(np.asarray(support_jacobian, dtype=float))):
        return SecondOrder(False, -1, float("nan"), None, "the Hessian or the rows' gradients are not finite")
    scale = max(float(np.linalg.norm(H, 2)) if H.size else 0.0, float(curvature_scale), TINY)
    fs = _free(n, support_fixed)
    Z = null_space(np.asarray(support_jacobian, dtype=float).reshape(-1, n)[:, fs], fs.size, tol.rank)
    if Z.shape[1] == 0:
        return SecondOrder(True, 0, float("inf"), True, "the support gradients span the space")
    low = reduced_min_eigenvalue(H[np.ix_(fs, fs)], Z) / scale
    if low > tol.curvature:
        return SecondOrder(True, Z.shape[1], low, True, "positive definite on the null space of the support")
    fa = _free(n, active_fixed)
    ZA = null_space(np.asarray(active_jacobian, dtype=float).reshape(-1, n)[:, fa], fa.size, tol.rank)
    # the necessary condition needs unique multipliers (LICQ); without them negative curvature proves nothing
    if licq_holds and ZA.shape[1] and reduced_min_eigenvalue(H[np.ix_(fa, fa)], ZA) / scale < -tol.curvature:
        return SecondOrder(True, Z.shape[1], low, False,
                           "negative curvature along the active rows' null space: not a local minimum")
    return SecondOrder(True, Z.shape[1], low, None, "reduced Hessian only positive semidefinite: inconclusive")


def negative_curvature_direction(nlp: NLP, z, report: KKTReport, p=None, tol: Tolerances | None = None
                                 ) -> np.ndarray | None:
    """A unit direction d (in z) along which the point is proved not a local minimum: the eigenvector of the smallest
    eigenvalue of the Hessian of the Lagrangian reduced to the null space of the active rows (active bounds
    eliminated, d_j = 0 there), when that eigenvalue is below -tol.curvature (relative, as ``second_order``) and LICQ
    holds (unique multipliers); else None.  A step along +-d decreases the Lagrangian at second order while keeping
    the active rows at first order: where a solver stopped at such a saddle, a restart from z + t d leaves it."""
    tol = tol or Tolerances()
    if nlp.hessian is None or report.second_order.strict is not False or not report.licq.holds:
        return None
    ext, lam = report.extended, report.multipliers
    H = _hessian_matrix(nlp, z, p, lam[:nlp.m])
    n = H.shape[0]
    bound = ext.variables >= 0
    free = _free(n, ext.variables[report.active & bound])
    Z = null_space(np.asarray(ext.jacobian[report.active & ~bound], dtype=float).reshape(-1, n)[:, free], free.size,
                   tol.rank)
    if not np.all(np.isfinite(H)) or Z.shape[1] == 0:
        return None
    reduced = Z.T @ H[np.ix_(free, free)] @ Z
    values, vectors = np.linalg.eigh(0.5 * (reduced + reduced.T))
    scale = max(float(np.linalg.norm(H, 2)), curvature_scale(ext, lam, report.stationarity_scale), TINY)
    if not values[0] / scale < -tol.curvature:
        return None
    d = np.zeros(n)
    d[free] = Z @ vectors[:, 0]
    return d / np.linalg.norm(d)


def _hessian_matrix(nlp: NLP, z, p, row_multipliers):
    H = nlp.hessian(z, p, row_multipliers)
    H = np.asarray(H, dtype=float)
    return np.diag(H) if H.ndim == 1 else H


def masked_second_order(diagonal, support_jacobian, tol: Tolerances, support_fixed=(),
                        curvature_scale: float = 0.0, gram: UnitGram | None = None,
                        svd: UnitSVD | None = None) -> SecondOrder | None:
    """``second_order`` for a diagonal Hessian H = c diag(mask) (c >= 0, mask 0/1: l2 with unregularized
    coordinates, c = 0 for LPs), without the n x n null-space basis: with Z an orthonormal basis of the null
    space of the support rows U (unit rows) and P = U^T (U U^T)^+ U the projector on their row space,
    Z^T H Z = c (I - Z_0^T Z_0) has smallest eigenvalue c lambda_min(P_00) (Z_0, P_00: the rows / block of the
    coordinates with mask 0), a |mask 0| x |mask 0| eigenproblem.  The row space comes from a thin SVD (the
    rank rule of ``null_space``) or, for large U with k <= n and a well-conditioned Gram matrix, from the
    Cholesky factor of U U^T.  The necessary-condition branch of ``second_order`` cannot apply (H is positive
    semidefinite; entries snapped to 0 are below tol.curvature / 1000).  None when H is not of this form, or
    when the snapped entries could change the decision."""
    h = np.asarray(diagonal, dtype=float).reshape(-1)
    n = h.size
    c = float(h.max(initial=0.0))
    # entries within MASK_SNAP tol.curvature of 0 relative to c (e.g. a bias's curvature sum_n lambda_n y_n, 0 at a
    # KKT point up to rounding) count as 0; they move every eigenvalue by at most ``snapped`` (relative, Weyl)
    small = np.abs(h) <= MASK_SNAP * tol.curvature * c
    if n == 0 or not (small | (h == c)).all():
        return None
    snapped = float(np.abs(h[small]).max(initial=0.0)) / c if c > 0 else 0.0
    h = np.where(small, 0.0, h)
    fs = _free(n, support_fixed)
    scale = max(c, float(curvature_scale), TINY)
    zero = np.nonzero(h[fs] == 0)[0] if c > 0 else np.zeros(0, dtype=int)   # c = 0: Z^T H Z = 0, no block needed
    J = np.asarray(support_jacobian, dtype=float).reshape(-1, n)
    J = J if fs.size == n else J[:, fs]
    rank, projector = _row_space_block(J, zero, tol.rank, gram if fs.size == n else None,
                                       svd if fs.size == n else None)
    dimension = fs.size - rank
    if dimension == 0:
        return SecondOrder(True, 0, float("inf"), True, "the support gradients span the space")
    block = np.linalg.eigvalsh(projector)[0] if zero.size else 1.0
    low = c * float(block) / scale if c > 0 else 0.0
    if snapped and abs(low - tol.curvature) <= snapped:
        return None                 # the snapped entries could decide: the general computation
    if low > tol.curvature:
        return SecondOrder(True, dimension, low, True, "positive definite on the null space of the support")
    return SecondOrder(True, dimension, low, None, "reduced Hessian only positive semidefinite: inconclusive")


def _row_space_block(J, columns, rank_tol: float, gram: UnitGram | None = None, svd: UnitSVD | None = None):
    """(rank of the unit rows of J by the rule of ``null_space``, P[columns][:, columns]) with P the projector on
    their row space; ``gram``, ``svd``: their ``unit_gram``, ``unit_svd`` when the caller has them."""
    k = J.shape[0]
    if k == 0:
        return 0, np.zeros((columns.size, columns.size))
    gram = gram if gram is not None else unit_gram(J, rank_tol)
    if gram is not None:
        W = solve_lower(cholesky_lower(gram.matrix), J[:, columns] / gram.norms[:, None])
        return k, W.T @ W
    s, vt = (svd.values, svd.vt) if svd is not None else np.linalg.svd(unit_rows(J), full_matrices=False)[1:]
    rank = int(np.sum(s > rank_tol * s[0])) if s.size and s[0] > 0 else 0
    V = vt[:rank, columns]
    return rank, V.T @ V


def second_order_of(nlp: NLP, z, p, ext: Extended, lam, active, support, tol: Tolerances,
                    licq_holds: bool = True, gram: UnitGram | None = None, scale: float | None = None,
                    svd: UnitSVD | None = None, diagonal=None) -> SecondOrder:
    """``second_order`` of an NLP at a point; ``gram``, ``svd``: ``unit_gram``, ``unit_svd`` of the support rows (no
    bounds); ``scale``: the stationarity scale of (ext, lam); ``diagonal``: ``hessian_diagonal_of`` (each when the
    caller has it)."""
    if nlp.hessian is None:
        return NOT_CHECKED
    if nlp.hessian_diagonal:
        diagonal = hessian_diagonal_of(nlp, z, p, lam) if diagonal is None else diagonal
        if _definite(diagonal, tol):
            return SecondOrder(True, -1, float(np.min(diagonal) / np.max(diagonal)), True,
                               "the Hessian of the Lagrangian is positive definite")
        bound = ext.variables >= 0
        keep = (support | ext.equality) & ~bound
        masked = masked_second_order(diagonal, take_rows(ext.jacobian, keep), tol, ext.variables[support & bound],
                                     curvature_scale(ext, lam, scale), gram, svd)
        if masked is not None:
            return masked
    if nlp.n > SECOND_ORDER_MAX_SIZE:
        return SecondOrder(False, -1, float("nan"), None, f"not computed for more than {SECOND_ORDER_MAX_SIZE} "
                                                         "variables")
    bound = ext.variables >= 0
    keep = (support | ext.equality) & ~bound
    H = _hessian_matrix(nlp, z, p, lam[:nlp.m])
    return second_order(H, ext.jacobian[keep], ext.jacobian[active & ~bound], tol, licq_holds,
                        ext.variables[support & bound], ext.variables[active & bound],
                        curvature_scale(ext, lam, scale))


def hessian_diagonal_of(nlp: NLP, z, p, lam) -> np.ndarray:
    """The Hessian of the Lagrangian of a ``hessian_diagonal`` NLP, as its diagonal."""
    hessian = nlp.hessian
    if hessian is None:
        raise ValueError(f"NLP {nlp.name!r} has no Hessian")
    return np.asarray(hessian(z, p, lam[:nlp.m]), dtype=float).reshape(-1)


def _definite(diagonal, tol: Tolerances) -> bool:
    """A diagonal Hessian positive definite beyond tol.curvature (relative to its largest entry)."""
    return bool((diagonal > tol.curvature * max(float(np.abs(diagonal).max(initial=0.0)), TINY)).all())


def curvature_scale(ext: Extended, multipliers, scale: float | None = None) -> float:
    """The natural size of the Hessian of the Lagrangian: the stationarity scale per unit of the variables
    (a gradient of that size over a region of the variables' size), S / ||z||_inf (``scale``: S when the caller
    has it)."""
    size = float(np.abs(ext.z).max(initial=0.0))
    if size == 0:
        return 0.0
    p = ext.point
    if scale is None:
        scale = stationarity_scale(p.gradient, ext.jacobian, multipliers, p.gradient_scale, ext.jacobian_scale)
    return scale / size


# ---- the report -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class KKTReport:
    """Everything ``certify`` found at one point, on the NLP's rows with the bounds appended."""

    residuals: Residuals
    licq: LICQ
    second_order: SecondOrder
    multipliers: np.ndarray
    active: np.ndarray
    support: np.ndarray
    extended: Extended
    stationarity_scale: float | None = None     # S of the residuals (computed once, reused by the finish's checks)
    weights: np.ndarray | None = None           # multiplier_weights of (extended.jacobian, multipliers)

    @property
    def degenerate(self) -> np.ndarray:
        return self.active & ~self.support & ~self.extended.equality

    def kkt_met(self, tol: Tolerances) -> bool:
        return self.residuals.within(tol.kkt)

    def balance(self) -> tuple[float, np.ndarray]:
        """(stationarity scale, multiplier weights) of this report's point and multipliers: the kept pair, or
        ``balance`` recomputed when a report was built without it."""
        if self.stationarity_scale is not None and self.weights is not None:
            return self.stationarity_scale, self.weights
        p = self.extended.point
        return balance(p.gradient, self.extended.jacobian, self.multipliers, p.gradient_scale,
                       self.extended.jacobian_scale)


def certify(nlp: NLP, z, multipliers, lower_multipliers=None, upper_multipliers=None, p=None,
            tolerances: Tolerances | None = None, point=None, row_gram: RowGram | None = None) -> KKTReport:
    """Recompute the KKT evidence at z from the NLP's numpy evaluation (never from the solver).

    Args:
        nlp: the problem.
        z: the point (decision vector).
        multipliers: one per NLP row, in lexmargin's convention (lambda >= 0 for c(z) >= 0).
        lower_multipliers, upper_multipliers: one per variable (0 where the bound is infinite).
        p: parameter values of a parametric NLP.
        tolerances: the certificate's tolerances (default Tolerances()).
        point: ``nlp.evaluate(z, p)`` when the caller has it already.
        row_gram: a ``RowGram`` of the NLP's Jacobian (used only when it is that very array; see there).
    Returns:
        A KKTReport (residuals, LICQ on the active set, second order, masks over the extended rows).
    """
    tol = tolerances or Tolerances()
    z = np.asarray(z, dtype=float)
    point = point if point is not None else nlp.evaluate(z, p)
    ext = extend(nlp, point, z)
    ext, uncertainty = resolved(nlp, ext, tol)
    zeros = np.zeros(nlp.n)
    lam = np.concatenate([np.asarray(multipliers, dtype=float).reshape(-1),
                          split_bound_multipliers(nlp, zeros if lower_multipliers is None else lower_multipliers,
                                                  zeros if upper_multipliers is None else upper_multipliers)])
    active = active_rows(ext.values, ext.levels, ext.equality, tol.active)
    terms, equilibrated, weights = equilibrated_terms(point.gradient, ext.jacobian, lam, point.gradient_scale,
                                                      ext.jacobian_scale)
    scale = equilibrated[0]
    support = support_rows(ext.jacobian, lam, scale, tol.support, weights)
    lagrangian = lagrangian_gradient(point.gradient, ext.jacobian, lam)
    measured = representative_multipliers(ext.jacobian, lam,
                                          balance_size(point.gradient, lagrangian, point.gradient_scale), terms)
    bound = ext.variables >= 0
    rows = active & ~bound
    # LICQ and the second-order check share one factorization when they look at the same rows (no bounds)
    shared = svd = diagonal = None
    active_jacobian = take_rows(ext.jacobian, rows)
    if nlp.hessian is not None and nlp.hessian_diagonal:
        diagonal = hessian_diagonal_of(nlp, z, p, lam)
    if not (active & bound).any() and not (support & bound).any() and \
            np.array_equal(rows, (support | ext.equality) & ~bound):
        product = None if row_gram is None or active_jacobian.size < GRAM_MIN_SIZE else \
            row_gram.block(ext.jacobian, rows)
        shared = unit_gram(active_jacobian, tol.rank, product=product)
        # the masked second-order check will need the rows' singular vectors: one SVD for it and LICQ
        if shared is None and diagonal is not None and not _definite(diagonal, tol) and rows.any() and \
                ext.jacobian.shape[1]:
            svd = unit_svd(active_jacobian)
    independence = licq(active_jacobian, tol.rank, ext.variables[active & bound], shared, svd)
    return KKTReport(residuals(ext, lam, terms, diagonal, lagrangian, None if measured is lam else measured,
                               uncertainty, equilibrated),
                     independence,
                     second_order_of(nlp, z, p, ext, lam, active, support, tol, independence.holds, shared, scale,
                                     svd, diagonal),
                     lam, active, support, ext, scale, weights)

