"""The certificate check (lexmargin.nlp.certify) against its definitions: each KKT violation is reported in
its own component and nowhere else, the numbers do not depend on units, LICQ and the second-order check
see rank deficiency and curvature.  Problems are hand-written QPs with known KKT points (verify_helpers)."""

import importlib
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from verify_helpers import PROPERTY, QP, kkt_qp

from lexmargin.nlp.nlp import NLP, Point, Rows
from lexmargin.nlp.options import Tolerances

C = importlib.import_module("lexmargin.nlp.certify")   # the module (lexmargin.nlp re-exports the function)
TOL = Tolerances()
TINY = np.finfo(float).tiny


def components(report):
    r = report.residuals
    return np.array([r.stationarity, r.primal_feasibility, r.dual_feasibility, r.complementarity])


def column_terms(g, J, lam):
    """T_j = max(|g_j|, sum_i |lam_i| |J_ij|), written out (the certificate's own is ``C.column_terms``)."""
    return np.maximum(np.abs(g), np.abs(J).T @ np.abs(lam))


def only(report, index, value, rtol=1e-9, floor=1e-14):
    """The report's residual `index` equals value; every other component is at rounding level."""
    got = components(report)
    assert got[index] == pytest.approx(value, rel=rtol), got
    others = np.delete(got, index)
    assert np.all(others <= floor), got


# ---- an exact KKT point is certified; each perturbation shows up in its own component ----------------
@pytest.mark.parametrize("equalities,bounds", [(0, False), (2, False), (1, True)])
def test_exact_kkt_point_is_certified(equalities, bounds):
    p = kkt_qp(np.random.default_rng(1), n=5, active=2, inactive=3, equalities=equalities, bounds=bounds)
    report = p.report()
    assert components(report).max() < 1e-14
    assert report.kkt_met(TOL) and report.residuals.within(1e-8)
    assert report.licq.holds and report.licq.n_active == 2 + equalities + 2 * bounds
    assert report.second_order.strict is True


def test_gradient_error_is_reported_as_stationarity_only():
    p = kkt_qp(np.random.default_rng(2), n=3, active=1, inactive=1)
    g = p.Q @ p.z + p.q
    J = p.A
    q = p.q.copy()
    q[1] += 1e-4
    report = p.report(q=q)
    # the residual sits in component 1: a fraction of that component's own terms
    terms = column_terms(g + [0, 1e-4, 0], J, p.lam)
    only(report, 0, 1e-4 / terms[1], rtol=1e-6)
    assert terms[1] < terms.max()           # (not of the largest component's terms)
    assert not report.kkt_met(TOL)


def test_violated_inequality_is_reported_as_primal_only_relative_to_its_level():
    p = kkt_qp(np.random.default_rng(3), n=3, active=1, inactive=2)
    b = p.b.copy()
    b[1] = p.A[1] @ p.z + 3e-6          # the inactive row 1 now misses by 3e-6 (multiplier 0)
    levels = np.array([1.0, 2.0, 1.0])
    report = p.report(b=b, levels=levels)
    only(report, 1, 3e-6 / 2.0, rtol=1e-6)
    assert not report.active[1] or True
    assert not report.kkt_met(TOL)


def test_violated_equality_is_reported_as_primal_in_either_direction():
    p = kkt_qp(np.random.default_rng(4), n=4, active=1, inactive=1, equalities=2)
    for sign in (1.0, -1.0):
        e = p.e.copy()
        e[0] += sign * 5e-7
        report = p.report(e=e, eq_levels=np.array([4.0, 1.0]))
        only(report, 1, 5e-7 / 4.0, rtol=1e-6)


def test_negative_multiplier_is_reported_as_dual_infeasibility_only():
    rng = np.random.default_rng(5)
    p = kkt_qp(rng, n=4, active=2, inactive=1)
    lam = p.lam.copy()
    lam[1] = -0.25                          # an active row, so complementarity still holds
    q = p.A.T @ lam - p.Q @ p.z              # and stationarity too
    report = p.report(lam=lam, q=q)
    g = p.Q @ p.z + q
    terms = column_terms(g, p.A, lam)        # each component of row 1's weight relative to that component's terms
    only(report, 2, 0.25 * np.max(np.abs(p.A[1]) / terms))
    assert report.support[1]                # a negative multiplier that matters is in the support


def test_multiplier_on_a_slack_row_is_reported_as_complementarity_only():
    rng = np.random.default_rng(6)
    p = kkt_qp(rng, n=4, active=1, inactive=2)
    lam = p.lam.copy()
    lam[2] = 0.5                             # row 2 has slack c_2 >= 0.5
    q = p.A.T @ lam - p.Q @ p.z
    report = p.report(lam=lam, q=q)
    c = p.A @ p.z - p.b
    g = p.Q @ p.z + q
    scale = max(np.sum(np.abs(lam) * p.levels), np.max(np.abs(g)) * np.max(np.abs(p.z)))
    only(report, 3, 0.5 * c[2] / scale)
    assert not report.active[2] and report.support[2]
    assert not report.kkt_met(TOL)


def test_negative_multiplier_on_a_slack_row_counts_in_both_dual_and_complementarity():
    p = kkt_qp(np.random.default_rng(7), n=3, active=1, inactive=1)
    lam = np.array([p.lam[0], -0.5])
    q = p.A.T @ lam - p.Q @ p.z
    report = p.report(lam=lam, q=q)
    c = p.A @ p.z - p.b
    g = p.Q @ p.z + q
    comp_scale = max(abs(lam[0]) + 0.5, np.max(np.abs(g)) * np.max(np.abs(p.z)))
    assert report.residuals.complementarity == pytest.approx(0.5 * c[1] / comp_scale, rel=1e-12)
    assert report.residuals.dual_feasibility > 0.01


def test_violated_bound_is_primal_and_wrong_bound_multiplier_is_dual():
    p = kkt_qp(np.random.default_rng(8), n=4, active=1, inactive=1, bounds=True)
    lower = p.lower.copy()
    lower[2] = p.z[2] + 1e-3                    # z2 is now below its lower bound
    report = p.report(lower=lower)
    level = max(abs(lower[2]), np.max(np.abs(p.z)))
    assert report.residuals.primal_feasibility == pytest.approx(1e-3 / level, rel=1e-9)
    # a negative upper-bound multiplier, stationarity kept: only dual feasibility fails
    up = p.up.copy()
    up[1] = -0.4
    q = p.A.T @ p.lam + p.lo - up - p.Q @ p.z
    report = p.report(up=up, q=q)
    g = p.Q @ p.z + q
    terms = column_terms(g, np.vstack([p.A, np.eye(4)[[0]], np.eye(4)[[1, 2]]]),
                         np.concatenate([p.lam, [p.lo[0]], [up[1], 0.0]]))
    only(report, 2, 0.4 / terms[1])          # the upper bound of variable 1: its own component


def test_equality_multipliers_may_have_any_sign():
    p = kkt_qp(np.random.default_rng(9), n=4, active=1, inactive=1, equalities=2)
    mu = np.array([-3.0, 2.0])
    q = p.A.T @ p.lam + p.E.T @ mu - p.Q @ p.z
    report = p.report(mu=mu, q=q, e=p.E @ p.z + np.array([0.0, 0.0]))
    assert components(report).max() < 1e-14


def test_equality_rows_do_not_enter_complementarity():
    p = kkt_qp(np.random.default_rng(10), n=3, active=1, inactive=0, equalities=1)
    e = p.e + 1e-3                          # violated equality with a large multiplier: primal only
    mu = np.array([50.0])
    q = p.A.T @ p.lam + p.E.T @ mu - p.Q @ p.z
    report = p.report(e=e, mu=mu, q=q)
    assert report.residuals.complementarity == 0.0
    assert report.residuals.primal_feasibility == pytest.approx(1e-3, rel=1e-9)


def test_multiple_violations_are_each_reported():
    p = kkt_qp(np.random.default_rng(11), n=4, active=2, inactive=2)
    lam = p.lam.copy()
    lam[3] = -1.0
    b = p.b.copy()
    b[0] += 1e-5
    report = p.report(lam=lam, b=b)
    r = components(report)
    assert np.all(r > 1e-9)


# ---- scale invariance ----------------------------------------------------------------------------
def perturbed(seed):
    """A QP whose point has a residual in every component (so every number is compared)."""
    rng = np.random.default_rng(seed)
    p = kkt_qp(rng, n=4, active=2, inactive=2, equalities=1, bounds=True)
    lam = p.lam.copy()
    lam[1], lam[3] = -0.3, 0.2
    b = p.b.copy()
    b[0] += 1e-4
    return QP(**{**p.__dict__, "lam": lam, "b": b, "q": p.q + 1e-3 * rng.standard_normal(p.n),
                 "levels": np.array([1.0, 3.0, 0.5, 2.0]), "gradient_scale": 2.0 * np.abs(p.q)})


def assert_same_residuals(a, b):
    np.testing.assert_allclose(components(a), components(b), rtol=1e-9, atol=1e-15)


@PROPERTY
@given(seed=st.integers(0, 10 ** 6), alpha=st.integers(-12, 12), beta=st.integers(-12, 12),
       kappa=st.integers(-8, 8), row=st.integers(0, 3))
def test_residuals_are_invariant_to_units(seed, alpha, beta, kappa, row):
    p = perturbed(seed)
    base = p.report()
    assert np.all(components(base) > 1e-8)
    for scaled in (p.objective_scaled(10.0 ** alpha), p.row_scaled(row, 10.0 ** beta),
                   p.variables_scaled(10.0 ** kappa),
                   p.objective_scaled(10.0 ** alpha).row_scaled(row, 10.0 ** beta).variables_scaled(10.0 ** kappa)):
        report = scaled.report()
        assert_same_residuals(report, base)
        assert np.array_equal(report.active, base.active)
        assert np.array_equal(report.support, base.support)
        assert report.licq.rank == base.licq.rank


@PROPERTY
@given(seed=st.integers(0, 10 ** 6), kappa=st.integers(-10, 10))
def test_exact_points_stay_certified_in_any_units(seed, kappa):
    p = kkt_qp(np.random.default_rng(seed), n=6, active=2, inactive=1, equalities=1, bounds=True)
    for scaled in (p.objective_scaled(10.0 ** kappa), p.variables_scaled(10.0 ** kappa),
                   p.row_scaled(0, 10.0 ** kappa)):
        report = scaled.report()
        assert report.residuals.max < 1e-12
        assert report.licq.holds and report.second_order.strict is True


# ---- the residual functions against their definitions -----------------------------------------------
def test_stationarity_scale_is_the_largest_term():
    g = np.array([-3.0, 0.5])
    J = np.array([[1.0, -4.0], [-2.0, 1.0]])
    lam = np.array([-1.0, 2.0])
    terms = np.array([1 * 1 + 2 * 2, 4 * 1 + 1 * 2])          # |J|^T |lam| = (5, 6)
    assert C.stationarity_scale(g, J, lam) == 6.0
    assert C.stationarity_scale(g, J, lam, gradient_scale=[7.0, 0.0]) == 7.0
    assert C.stationarity_scale(g, J, lam, gradient_scale=[0.0, 0.0]) == terms.max()
    assert C.stationarity_scale([-9.0, 1.0], J, lam, gradient_scale=[0.0, 0.0]) == 9.0
    assert C.stationarity_scale(1e-3 * g, 1e-3 * J, lam) == pytest.approx(6e-3)
    assert C.stationarity_scale(1e-3 * g, np.zeros((0, 2)), []) == pytest.approx(3e-3)
    assert C.stationarity_scale(np.zeros(2), np.zeros((0, 2)), []) == TINY


def test_stationarity_residual_definition():
    g = np.array([1.0, -2.0])
    J = np.array([[1.0, 0.0], [0.0, -1.0]])
    assert C.stationarity_residual(g, J, [1.0, 2.0]) == 0.0
    # residual g - J^T lam = (0.5, 0); component 0's terms max(|g_0|, |J_00| lam_0) = max(1, 0.5): 0.5 / 1, not the
    # largest component's terms (2)
    assert C.stationarity_residual(g, J, [0.5, 2.0]) == 0.5
    assert C.stationarity_residual(g, J, [0.5, 2.0], gradient_scale=[8.0, 0.0]) == 0.0625
    assert C.stationarity_residual(g, J.reshape(-1), [0.5, 2.0]) == 0.5    # a flat Jacobian is rows of n
    assert C.stationarity_residual(np.zeros(2), np.zeros((0, 2)), []) == 0.0
    # a component's terms may be sums that cancel: its term sizes (jacobian_scale) count, not |J|
    assert C.stationarity_residual(g, J, [0.5, 2.0], jacobian_scale=[[4.0, 0.0], [0.0, 1.0]]) == 0.5 / 2.0
    # the terms of the residual's component, at any size: units 1e-12 beside 1 are judged on their own
    tiny = np.array([[1e-12, 0.0], [0.0, -1.0]])
    assert C.stationarity_residual(g * [1e-12, 1.0], tiny, [0.5, 2.0]) == pytest.approx(0.5, rel=1e-12)
    # components whose terms are below eps of the largest count at eps of it (a variable pinned at 0)
    empty = np.array([[1e-30, 0.0], [0.0, -1.0]])
    assert C.stationarity_residual(g * [1e-30, 1.0], empty, [0.5, 2.0]) == pytest.approx(
        0.5e-30 / (C.EMPTY * 2.0), rel=1e-12)


def test_primal_residual_definition():
    c = np.array([0.5, -0.2, 0.3, -0.4])
    s = np.array([1.0, 0.1, 1.0, 2.0])
    eq = np.array([False, False, True, True])
    # inequalities: max(0, -c) -> (0, 0.2); equalities |c| -> (0.3, 0.4); divided by s
    assert C.primal_residual(c, s, eq) == pytest.approx(2.0)
    assert C.primal_residual(c[[0, 2, 3]], s[[0, 2, 3]], eq[[0, 2, 3]]) == pytest.approx(0.3)
    assert C.primal_residual([0.5, 2.0], [1.0, 1.0], [False, False]) == 0.0
    assert C.primal_residual([], [], []) == 0.0


def test_dual_residual_definition():
    J = np.array([[2.0, -3.0], [1.0, 0.0], [0.0, 5.0]])
    lam = np.array([-0.5, 4.0, -1.0])
    eq = np.array([False, False, True])     # the equality's negative multiplier is allowed
    even = np.array([2.0, 2.0])              # both components' terms 2
    assert C.dual_residual(J, lam, eq, even) == pytest.approx(0.5 * 3.0 / 2.0)
    assert C.dual_residual(J, np.abs(lam), eq, even) == 0.0
    assert C.dual_residual(J, lam, [False, False, False], even) == pytest.approx(5.0 / 2.0)
    # each entry relative to its own component's terms: row 0 in component 1 (terms 0.5) is 0.5 * 3 / 0.5
    assert C.dual_residual(J, lam, eq, np.array([4.0, 0.5])) == pytest.approx(3.0)
    assert C.dual_residual(J, lam, eq, np.array([0.5, 4.0])) == pytest.approx(max(0.5 * 2.0 / 0.5, 0.5 * 3.0 / 4.0))
    assert C.dual_residual(J, np.zeros(3), eq, np.zeros(2)) == 0.0
    assert C.dual_residual(np.zeros((0, 2)), [], [], np.zeros(2)) == 0.0


def test_complementarity_residual_definition():
    c = np.array([0.0, 0.5, -0.25, 3.0])
    s = np.array([1.0, 2.0, 1.0, 1.0])
    lam = np.array([2.0, -0.1, 0.4, 7.0])
    eq = np.array([False, False, False, True])
    # |lam| |c| over inequalities: (0, 0.05, 0.1); scale sum |lam| s = 2 + 0.2 + 0.4
    assert C.complementarity_residual(c, s, lam, eq) == pytest.approx(0.1 / 2.6)
    assert C.complementarity_residual(c, s, lam, eq, objective_scale=10.0) == pytest.approx(0.01)
    assert C.complementarity_residual(c, s, lam, eq, objective_scale=1.0) == pytest.approx(0.1 / 2.6)
    assert C.complementarity_residual(c, s, np.zeros(4), eq) == 0.0
    assert C.complementarity_residual([], [], [], []) == 0.0


def test_objective_scale_uses_the_term_sizes_and_the_point_size():
    p = kkt_qp(np.random.default_rng(12), n=3, active=1, inactive=0)
    q = np.array([3.0, -5.0, 1.0]) - p.Q @ p.z
    for gs, size in ((None, 5.0), (np.array([0.0, 0.0, 9.0]), 9.0), (np.array([1.0, 1.0, 1.0]), 5.0)):
        report = p.report(q=q, gradient_scale=gs)
        assert C.objective_scale(report.extended) == pytest.approx(size * np.max(np.abs(p.z)), rel=1e-12)


def test_residuals_of_an_extended_point_match_the_functions():
    p = perturbed(3)
    report = p.report()
    ext, lam = report.extended, report.multipliers
    g = ext.point.gradient
    terms = C.column_terms(g, ext.jacobian, lam, ext.point.gradient_scale)
    assert report.residuals == C.Residuals(
        C.stationarity_residual(g, ext.jacobian, lam, ext.point.gradient_scale),
        C.primal_residual(ext.values, ext.levels, ext.equality),
        C.dual_residual(ext.jacobian, lam, ext.equality, terms),
        C.complementarity_residual(ext.values, ext.levels, lam, ext.equality, C.objective_scale(ext)))


def test_residuals_record():
    r = C.Residuals(1e-9, 3e-9, 0.0, 2e-9)
    assert r.max == 3e-9
    assert r.within(3e-9) and not r.within(2.9e-9)
    assert r.to_dict() == {"stationarity": 1e-9, "primal_feasibility": 3e-9, "dual_feasibility": 0.0,
                           "complementarity": 2e-9, "decrement": 0.0, "max": 3e-9}
    with_decrement = C.Residuals(1e-9, 3e-9, 0.0, 2e-9, 4e-9)
    assert with_decrement.max == 4e-9 and not with_decrement.within(3.9e-9) and with_decrement.within(4e-9)
    for field in range(5):          # a NaN anywhere: never within (Python's max would drop it after the first)
        values = [0.0] * 5
        values[field] = float("nan")
        assert np.isnan(C.Residuals(*values).max) and not C.Residuals(*values).within(1.0)
    assert not C.Residuals(float("nan"), 0.0, 0.0, 0.0).within(1.0)
    assert not C.Residuals(float("inf"), 0.0, 0.0, 0.0).within(1.0)
    assert C.LICQ(2, 1, 0.0, False).to_dict() == {"n_active": 2, "rank": 1, "smallest_singular_value": 0.0,
                                                  "holds": False}
    assert C.NOT_CHECKED.to_dict()["reason"] == "no Hessian"


# ---- active set and support ------------------------------------------------------------------------
def test_active_rows_by_relative_slack():
    tol = 1e-8
    c = np.array([tol, np.nextafter(tol, 1.0), -5.0, 7.0, 2e-8, 0.0])
    s = np.array([1.0, 1.0, 1.0, 1.0, 4.0, 0.0])
    eq = np.array([False, False, False, True, False, False])
    assert C.active_rows(c, s, eq, tol).tolist() == [True, False, True, True, True, True]


def test_support_rows_by_weight_relative_to_scale():
    J = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 0.0]])
    lam = np.array([1e-9, -3e-9, 5.0])
    # weights |lam| ||grad||_inf = (2e-9, 1.5e-9, 0): support iff > tol * scale
    assert C.support_rows(J, lam, 2.0, 1e-9).tolist() == [False, False, False]
    assert C.support_rows(J, lam, 1.0, 1e-9).tolist() == [True, True, False]
    assert C.support_rows(J, lam, 1.5, 1e-9).tolist() == [True, False, False]
    assert C.support_rows(np.zeros((0, 2)), [], 0.0, 1e-9).shape == (0,)
    assert C.multiplier_weights(J, lam) == pytest.approx([2e-9, 1.5e-9, 0.0])


def test_noise_multipliers_are_neither_support_nor_dual_infeasible():
    """A problem whose true multipliers are all 0 (unconstrained optimum) with solver noise on them."""
    p = kkt_qp(np.random.default_rng(13), n=3, active=0, inactive=2)
    p = QP(**{**p.__dict__, "gradient_scale": np.abs(p.q) + 1.0})
    report = p.report(lam=np.array([-1e-14, 1e-14]))
    assert not report.support.any()
    assert report.residuals.max < 1e-12


def test_degenerate_rows_are_active_outside_the_support():
    p = kkt_qp(np.random.default_rng(14), n=4, active=3, inactive=1)
    lam = p.lam.copy()
    lam[2] = 0.0                            # active with multiplier 0
    q = p.A.T @ lam - p.Q @ p.z
    report = p.report(lam=lam, q=q)
    assert report.active.tolist() == [True, True, True, False]
    assert report.support.tolist() == [True, True, False, False]
    assert report.degenerate.tolist() == [False, False, True, False]
    assert report.residuals.max < 1e-14


# ---- LICQ ------------------------------------------------------------------------------------------
def test_licq_full_rank_rows_of_any_scale():
    J = np.array([[1e8, 0.0, 0.0], [0.0, 1e-8, 0.0]])
    L = C.licq(J)
    assert (L.n_active, L.rank, L.holds) == (2, 2, True)
    assert L.smallest_singular_value == pytest.approx(1.0)


def test_licq_fails_on_parallel_rows_of_different_length():
    L = C.licq(np.array([[1.0, 2.0, 0.0], [-3.0, -6.0, 0.0], [0.0, 0.0, 1.0]]))
    assert (L.n_active, L.rank, L.holds) == (3, 2, False)
    assert L.smallest_singular_value < 1e-15


def test_licq_rank_uses_a_relative_tolerance():
    """Rows at angle 1e-12: numerically dependent; the smallest singular value is tiny but not zero."""
    J = np.array([[1.0, 0.0], [1.0, 1e-12]])
    L = C.licq(J)
    assert L.smallest_singular_value > 0
    assert (L.rank, L.holds) == (1, False)
    assert C.licq(J, rank_tol=1e-13).holds
    # at the tolerance: singular values equal to rank_tol * largest do not count
    s = np.linalg.svd(C.unit_rows(np.array([[1.0, 0.0], [1.0, 1e-6]])), compute_uv=False)
    assert C.licq(np.array([[1.0, 0.0], [1.0, 1e-6]]), rank_tol=s[1] / s[0]).rank == 1
    assert C.licq(np.array([[1.0, 0.0], [1.0, 1e-6]]), rank_tol=np.nextafter(s[1] / s[0], 0)).rank == 2


def test_licq_more_active_rows_than_variables():
    L = C.licq(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    assert (L.n_active, L.rank, L.smallest_singular_value, L.holds) == (3, 2, 0.0, False)


def test_licq_zero_rows():
    L = C.licq(np.zeros((2, 3)))
    assert (L.n_active, L.rank, L.smallest_singular_value, L.holds) == (2, 0, 0.0, False)
    L = C.licq(np.array([[0.0, 0.0], [0.0, 3.0]]))
    assert (L.rank, L.holds, L.smallest_singular_value) == (1, False, 0.0)
    assert C.licq(np.zeros((0, 3))) == C.LICQ(0, 0, 1.0, True)
    assert C.licq([[2.0, 0.0]]) == C.LICQ(1, 1, 1.0, True)


def test_licq_smallest_singular_value_is_relative():
    J = 5.0 * np.array([[1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    s = np.linalg.svd(J / 5.0, compute_uv=False)
    assert C.licq(J).smallest_singular_value == pytest.approx(s[1] / s[0], rel=1e-12)


@PROPERTY
@given(seed=st.integers(0, 10 ** 6), m=st.integers(1, 4), exponents=st.lists(st.integers(-15, 15), min_size=5,
                                                                            max_size=5))
def test_licq_property_random_rows(seed, m, exponents):
    """Random rows (any scale) have full rank; adding a scaled combination of them never does."""
    rng = np.random.default_rng(seed)
    n = 5
    J = rng.standard_normal((m, n)) * (10.0 ** np.array(exponents[:m]))[:, None]
    assert C.licq(J).holds and C.licq(J).rank == m
    dependent = np.vstack([J, 10.0 ** exponents[-1] * (rng.random(m) + 0.5) @ (J / np.linalg.norm(J, axis=1)[:, None])])
    L = C.licq(dependent)
    assert not L.holds and L.rank == m and L.n_active == m + 1


def test_unit_rows_keeps_zero_rows():
    U = C.unit_rows([[3.0, 4.0], [0.0, 0.0]])
    assert U.tolist() == [[0.6, 0.8], [0.0, 0.0]]
    assert C.unit_rows([3.0, 4.0]).tolist() == [[0.6, 0.8]]


def test_certify_licq_is_over_all_active_rows_bounds_included():
    p = kkt_qp(np.random.default_rng(15), n=3, active=1, inactive=0, bounds=True)
    # row 0 is active, bounds on z0 (lower) and z1 (upper): 3 rows in R^3
    report = p.report()
    assert report.licq.n_active == 3
    A = np.array([[1.0, 0.0, 0.0]])             # the same direction as the lower bound of z0
    b = A @ p.z
    lam = np.array([0.5])
    q = A.T @ lam + p.lo - p.up - p.Q @ p.z
    report = p.report(A=A, b=b, lam=lam, q=q)
    assert report.licq.n_active == 3 and report.licq.rank == 2 and not report.licq.holds
    assert report.residuals.max < 1e-14


# ---- null space and second order ----------------------------------------------------------------------
def test_null_space_is_an_orthonormal_basis():
    J = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 1e-12]])
    Z = C.null_space(J, 3, 1e-9)
    assert Z.shape == (3, 2)
    np.testing.assert_allclose(Z.T @ Z, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(J[:1] @ Z, 0.0, atol=1e-12)
    assert C.null_space(J, 3, 1e-15).shape == (3, 1)
    assert C.null_space(np.zeros((0, 3)), 3, 1e-9).tolist() == np.eye(3).tolist()
    assert C.null_space(np.zeros((2, 3)), 3, 1e-9).shape == (3, 3)
    assert C.null_space(J.reshape(-1), 3, 1e-9).shape == (3, 2)


def test_reduced_min_eigenvalue():
    H = np.array([[2.0, 1.0], [-1.0, -3.0]])          # symmetric part diag(2, -3)
    assert C.reduced_min_eigenvalue(H, np.eye(2)) == pytest.approx(-3.0)
    assert C.reduced_min_eigenvalue(H, np.eye(2)[:, :1]) == pytest.approx(2.0)
    assert C.reduced_min_eigenvalue(H, np.zeros((2, 0))) == float("inf")


def test_second_order_positive_definite_on_the_support_null_space():
    H = np.diag([1.0, -1.0])            # indefinite, but the support fixes the second direction
    so = C.second_order(H, np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]]), TOL)
    assert (so.checked, so.null_space_dimension, so.strict) == (True, 1, True)
    assert so.min_eigenvalue == pytest.approx(1.0)
    assert so.reason == "positive definite on the null space of the support"


def test_second_order_support_spanning_the_space():
    so = C.second_order(-np.eye(2), np.eye(2), np.eye(2), TOL)
    assert so == C.SecondOrder(True, 0, float("inf"), True, "the support gradients span the space")


def test_second_order_negative_curvature_proves_not_a_minimum_only_with_licq():
    H = np.diag([1.0, -1.0, 2.0])
    support = np.zeros((0, 3))
    active = np.array([[1.0, 0.0, 0.0]])
    so = C.second_order(H, support, active, TOL)
    assert so.strict is False and so.null_space_dimension == 3
    assert so.min_eigenvalue == pytest.approx(-0.5)      # relative to ||H||_2 = 2
    assert so.reason == "negative curvature along the active rows' null space: not a local minimum"
    so = C.second_order(H, support, active, TOL, licq_holds=False)
    assert so.strict is None and so.reason == "reduced Hessian only positive semidefinite: inconclusive"
    # negative curvature only along directions the active rows exclude: inconclusive, not "fails"
    so = C.second_order(H, support, np.array([[0.0, 1.0, 0.0]]), TOL)
    assert so.strict is None


def test_second_order_semidefinite_is_inconclusive():
    H = np.diag([1.0, 0.0])
    so = C.second_order(H, np.zeros((0, 2)), np.zeros((0, 2)), TOL)
    assert (so.strict, so.null_space_dimension, so.min_eigenvalue) == (None, 2, 0.0)
    # the curvature tolerance is relative to ||H||: 1e-12 of it does not count as positive
    so = C.second_order(np.diag([1e6, 1e-7]), np.zeros((0, 2)), np.zeros((0, 2)), TOL)
    assert so.strict is None and so.min_eigenvalue == pytest.approx(1e-13)
    so = C.second_order(np.diag([1e6, 1e-2]), np.zeros((0, 2)), np.zeros((0, 2)), TOL)
    assert so.strict is True
    # tiny negative curvature (relative -1e-12) is not evidence either
    so = C.second_order(np.diag([1.0, -1e-12]), np.zeros((0, 2)), np.eye(2)[:1], TOL)
    assert so.strict is None


def test_second_order_curvature_tolerance_boundaries():
    tol = Tolerances(curvature=0.25)
    assert C.second_order(np.diag([1.0, 0.25]), np.zeros((0, 2)), np.zeros((0, 2)), tol).strict is None
    assert C.second_order(np.diag([1.0, 0.5]), np.zeros((0, 2)), np.zeros((0, 2)), tol).strict is True
    assert C.second_order(np.diag([1.0, -0.25]), np.zeros((0, 2)), np.zeros((0, 2)), tol).strict is None
    assert C.second_order(np.diag([1.0, -0.5]), np.zeros((0, 2)), np.zeros((0, 2)), tol).strict is False
    assert C.second_order(np.zeros((2, 2)), np.zeros((0, 2)), np.zeros((0, 2)), tol).strict is None


def test_second_order_eliminates_variables_at_bounds():
    H = np.diag([-1.0, 2.0, -3.0])
    none = np.zeros((0, 3))
    # every variable at a supported bound: nothing left to move
    so = C.second_order(H, none, none, TOL, support_fixed=[0, 1, 2], active_fixed=[0, 1, 2])
    assert (so.null_space_dimension, so.strict) == (0, True)
    # z0, z2 held by supported bounds: positive definite on z1 alone
    so = C.second_order(H, none, none, TOL, support_fixed=[0, 2], active_fixed=[0, 2])
    assert (so.null_space_dimension, so.strict) == (1, True) and so.min_eigenvalue == pytest.approx(2.0 / 3.0)
    # z0 supported, z2 only active (multiplier 0): negative curvature along z2 is excluded by the active
    # bound, so inconclusive; without the active bound it proves the point is not a minimum
    so = C.second_order(H, none, none, TOL, support_fixed=[0], active_fixed=[0, 2])
    assert (so.null_space_dimension, so.strict) == (2, None)
    so = C.second_order(H, none, none, TOL, support_fixed=[0], active_fixed=[0])
    assert so.strict is False
    # a bound row plus an ordinary row on the remaining variables
    so = C.second_order(H, np.array([[5.0, 0.0, 1.0]]), none, TOL, support_fixed=[0])
    assert (so.null_space_dimension, so.strict) == (1, True)


def nonconvex_nlp(diagonal=False, n=3, hess=None, lin=0.0):
    """min sum_i hess_i z_i^2 / 2 + lin z0  s.t.  z0 >= 0 (row "margin"), at z = 0 a KKT point with
    multiplier lin; with hessian_diagonal the NLP returns the diagonal of its Hessian."""
    hess = np.array([-1.0, 2.0, 3.0][:n]) if hess is None else np.asarray(hess, dtype=float)

    def evaluate(z, p=None):
        z = np.asarray(z, dtype=float)
        return Point(float(0.5 * np.sum(hess * z * z) + lin * z[0]), hess * z + lin * np.eye(n)[0], z[:1].copy(),
                     np.eye(n)[:1], np.ones(1))

    def hessian(z, p, lam):
        assert len(lam) == 1          # the NLP's own rows only
        return hess.copy() if diagonal else np.diag(hess)

    return NLP("saddle", n, (Rows("margin", 1, samples=np.array([0])),), -np.inf, np.inf, None, evaluate,
               theta=lambda z: z, hessian=hessian, hessian_diagonal=diagonal)


@pytest.mark.parametrize("diagonal", [False, True])
def test_certify_second_order_depends_on_the_support(diagonal):
    z = np.zeros(3)
    # negative curvature along z0, which the row z0 >= 0 holds at 0 with a positive multiplier: strict
    report = C.certify(nonconvex_nlp(diagonal, lin=0.5), z, [0.5])
    assert report.residuals.max == 0.0 and report.support.tolist() == [True]
    assert report.second_order.strict is True and report.second_order.null_space_dimension == 2
    # the same curvature at a degenerate point (multiplier 0): the row does not fix z0 -> inconclusive
    report = C.certify(nonconvex_nlp(diagonal), z, [0.0])
    assert report.residuals.max == 0.0 and report.support.tolist() == [False]
    assert report.second_order.strict is None and report.second_order.null_space_dimension == 3
    assert C.certify(nonconvex_nlp(diagonal, hess=[1.0, 2.0, 3.0]), z, [0.0]).second_order.strict is True


def test_certify_diagonal_hessian_shortcut():
    report = C.certify(nonconvex_nlp(True, hess=[1.0, 2.0, 4.0]), np.zeros(3), [0.0])
    so = report.second_order
    assert (so.checked, so.null_space_dimension, so.strict) == (True, -1, True)
    assert so.min_eigenvalue == 0.25
    assert so.reason == "the Hessian of the Lagrangian is positive definite"
    # one tiny entry relative to the largest: not positive definite, the general check decides
    so = C.certify(nonconvex_nlp(True, hess=[1e-10, 2.0, 4.0]), np.zeros(3), [0.0]).second_order
    assert so.null_space_dimension == 3 and so.strict is None
    so = C.certify(nonconvex_nlp(True, hess=[0.0, 0.0, 0.0]), np.zeros(3), [0.0]).second_order
    assert so.strict is None and so.null_space_dimension == 3


def test_certify_negative_curvature_at_a_non_minimum():
    nlp = nonconvex_nlp(False, hess=[1.0, -2.0, 3.0])
    report = C.certify(nlp, np.zeros(3), [0.0])
    assert report.second_order.strict is False
    assert report.licq.holds


def test_negative_curvature_direction_keeps_the_active_rows_and_lowers_the_lagrangian():
    """min z0^2/2 - z1^2 - 3/2 z2^2 (and variants) s.t. z0 >= 0 at z = 0, multiplier 0: the direction of the smallest
    reduced eigenvalue, on the active rows' null space (active bounds eliminated), unit length; None otherwise."""
    z = np.zeros(3)
    saddle = nonconvex_nlp(False, hess=[1.0, -2.0, -3.0])
    report = C.certify(saddle, z, [0.0])
    d = C.negative_curvature_direction(saddle, z, report)
    np.testing.assert_allclose(np.abs(d), [0.0, 0.0, 1.0], atol=1e-15)
    # along the active row's own normal (z0) the curvature is negative as well, but z0 >= 0 is active: never there
    steep = nonconvex_nlp(False, hess=[-5.0, -2.0, 3.0])
    d = C.negative_curvature_direction(steep, z, C.certify(steep, z, [0.0]))
    np.testing.assert_allclose(np.abs(d), [0.0, 1.0, 0.0], atol=1e-15)
    # a strict minimum, an inconclusive point (degenerate row: z0 free to move), no Hessian: None
    for hess in ([1.0, 2.0, 3.0], [-1.0, 2.0, 3.0]):
        nlp = nonconvex_nlp(False, hess=hess)
        assert C.negative_curvature_direction(nlp, z, C.certify(nlp, z, [0.0])) is None
    no_hessian = NLP("h", 3, nlp.rows, -np.inf, np.inf, None, nlp.evaluate, theta=lambda z: z)
    assert C.negative_curvature_direction(no_hessian, z, report) is None
    # without LICQ the multipliers are not unique: negative curvature proves nothing
    assert C.negative_curvature_direction(saddle, z, replace(report, licq=replace(report.licq, holds=False))) is None
    # an active bound fixes its variable: z1 at its lower bound 0 leaves only z2, positively curved
    base = nonconvex_nlp(False, hess=[1.0, -2.0, 3.0])
    bounded = NLP("saddle", 3, base.rows, np.array([-np.inf, 0.0, -np.inf]), np.inf, None, base.evaluate,
                  theta=lambda z: z, hessian=base.hessian)
    assert C.certify(base, z, [0.0]).second_order.strict is False
    assert C.negative_curvature_direction(bounded, z, C.certify(bounded, z, [0.0])) is None
    curved = nonconvex_nlp(False, hess=[1.0, -2.0, -3.0])
    bounded = NLP("saddle", 3, curved.rows, np.array([-np.inf, 0.0, -np.inf]), np.inf, None, curved.evaluate,
                  theta=lambda z: z, hessian=curved.hessian)
    d = C.negative_curvature_direction(bounded, z, C.certify(bounded, z, [0.0]))
    np.testing.assert_allclose(np.abs(d), [0.0, 0.0, 1.0], atol=1e-15)



def shifted_saddle(h, c, s=1e-3, lower=-np.inf, inactive_row=False):
    """min k (sum_i h_i d_i^2 / 2 + d_2^3), d = z - c, k = p[0], s.t. d_0 >= 0 (row "margin") and, with
    ``inactive_row``, d_1 + 1 >= 0: at z = c a KKT point with multipliers 0, Hessian k diag(h) (the cubic makes it
    depend on z), gradient terms g~ = s (the curvature scale is s / ||c||_inf)."""
    h, c = np.asarray(h, dtype=float), np.asarray(c, dtype=float)
    J = np.eye(3)[:2] if inactive_row else np.eye(3)[:1]

    def evaluate(z, p):
        d = np.asarray(z, dtype=float) - c
        k = p[0]
        values = np.array([d[0], d[1] + 1.0])[:J.shape[0]]
        return Point(float(k * (0.5 * np.sum(h * d * d) + d[2] ** 3)), k * (h * d + 3 * d[2] ** 2 * np.eye(3)[2]),
                     values, J.copy(), np.ones(J.shape[0]), np.full(3, s))

    def hessian(z, p, lam):
        d = np.asarray(z, dtype=float) - c
        return p[0] * (np.diag(h) + 6 * d[2] * np.diag([0.0, 0.0, 1.0]))

    return NLP("shifted_saddle", 3, (Rows("margin", J.shape[0], samples=np.arange(J.shape[0])),), lower, np.inf,
               None, evaluate, theta=lambda z: z, hessian=hessian, parameters=1)


def test_negative_curvature_direction_at_the_point_and_parameters_of_the_report():
    """The Hessian is evaluated at z and p (here it depends on both); inactive bounds and inactive rows do not restrict
    the direction; a Hessian that is not finite there gives None."""
    c, p = np.array([0.5, 1.0, -2.0]), np.array([2.0])
    for nlp in (shifted_saddle([1.0, -2.0, 3.0], c), shifted_saddle([1.0, -2.0, 3.0], c, inactive_row=True),
                shifted_saddle([1.0, -2.0, 3.0], c, lower=np.array([-np.inf, c[1] - 5.0, -np.inf]))):
        report = C.certify(nlp, c, np.zeros(nlp.m), p=p)
        assert report.residuals.max == 0.0 and report.second_order.strict is False and report.licq.holds
        d = C.negative_curvature_direction(nlp, c, report, p=p)
        np.testing.assert_allclose(np.abs(d), [0.0, 1.0, 0.0], atol=1e-15)
        with np.errstate(invalid="ignore"):         # inf * 0 off the diagonal: nan
            assert C.negative_curvature_direction(nlp, c, report, p=np.array([np.inf])) is None


def test_negative_curvature_direction_relative_to_the_hessian_or_the_curvature_scale():
    """The smallest reduced eigenvalue counts when below -tol.curvature times max(||H||_2, curvature scale) (the scale
    of ``second_order``); the report is certify's at a looser tolerance (there: not a local minimum)."""
    c, p = np.array([0.5, 1.0, -2.0]), np.array([1.0])
    loose, tol = Tolerances(curvature=1e-3), Tolerances(curvature=0.1)

    def direction(h, s=1e-3, tolerances=tol):
        nlp = shifted_saddle(h, c, s)
        report = C.certify(nlp, c, [0.0], p=p, tolerances=loose)
        assert report.second_order.strict is False
        return C.negative_curvature_direction(nlp, c, report, p=p, tol=tolerances)

    # ||H||_2 = 10 (||H||_F = 10.49): -1.01 / 10 is below -0.1, -0.9 / 10 is not
    np.testing.assert_allclose(np.abs(direction([3.0, 10.0, -1.01])), [0.0, 0.0, 1.0], atol=1e-15)
    assert direction([3.0, 10.0, -0.9]) is None
    # the curvature scale S / ||z||_inf = 400 / 2 above ||H||_2: -5 / 200 = -0.025
    report = C.certify(shifted_saddle([3.0, 10.0, -5.0], c, 400.0), c, [0.0], p=p)
    assert C.curvature_scale(report.extended, report.multipliers) == 200.0
    assert direction([3.0, 10.0, -5.0], s=400.0) is None
    np.testing.assert_allclose(np.abs(direction([3.0, 10.0, -5.0], s=400.0, tolerances=Tolerances(curvature=0.02))),
                               [0.0, 0.0, 1.0], atol=1e-15)
def test_second_order_not_checked_without_hessian_or_when_too_large(monkeypatch):
    nlp = nonconvex_nlp()
    no_hessian = NLP("h", 3, nlp.rows, -np.inf, np.inf, None, nlp.evaluate, theta=lambda z: z)
    assert C.certify(no_hessian, np.zeros(3), [0.0]).second_order is C.NOT_CHECKED
    monkeypatch.setattr(C, "SECOND_ORDER_MAX_SIZE", 3)
    assert C.certify(nlp, np.zeros(3), [0.0]).second_order.checked
    monkeypatch.setattr(C, "SECOND_ORDER_MAX_SIZE", 2)
    so = C.certify(nlp, np.zeros(3), [0.0]).second_order
    assert (so.checked, so.null_space_dimension, so.strict) == (False, -1, None)
    assert np.isnan(so.min_eigenvalue)
    assert so.reason == "not computed for more than 2 variables"
    # the diagonal shortcut needs no size limit
    assert C.certify(nonconvex_nlp(True, hess=[1.0, 2.0, 4.0]), np.zeros(3), [0.0]).second_order.strict is True


def test_second_order_keeps_equality_rows_even_with_zero_multiplier():
    """An equality row fixes its direction whatever its multiplier: min -z0^2 + z1^2 s.t. z0 = 0."""
    Q = np.diag([-1.0, 1.0])
    p = QP(Q, np.zeros(2), np.zeros((0, 2)), np.zeros(0), np.array([[1.0, 0.0]]), np.zeros(1), np.full(2, -np.inf),
           np.full(2, np.inf), np.zeros(2), np.zeros(0), np.zeros(1), np.zeros(2), np.zeros(2), np.ones(0), np.ones(1))
    report = p.report()
    assert report.support.tolist() == [False]
    assert report.second_order.strict is True


def test_second_order_uses_the_hessian_of_the_lagrangian():
    """min z1 s.t. 1 - z0^2 - z1^2 >= 0 ... written as a QP cannot carry a curved row; use a custom NLP:
    min -z0 s.t. 1 - z0^2 - z1^2 >= 0 at z = (1, 0), lambda = 1/2: the row's curvature makes it strict."""
    def evaluate(z, p=None):
        return Point(float(-z[0]), np.array([-1.0, 0.0]), np.array([1.0 - z @ z]), -2.0 * z[None, :], np.ones(1))

    def hessian(z, p, lam):
        return 2.0 * lam[0] * np.eye(2)

    nlp = NLP("disk", 2, (Rows("ball", 1),), -np.inf, np.inf, None, evaluate, theta=lambda z: z, hessian=hessian)
    report = C.certify(nlp, np.array([1.0, 0.0]), [0.5])
    assert report.residuals.max < 1e-15
    assert report.second_order.strict is True and report.second_order.min_eigenvalue == pytest.approx(1.0)
    # the same point with the wrong sign convention would see negative curvature: not a minimum
    flipped = NLP("disk", 2, nlp.rows, -np.inf, np.inf, None, evaluate, theta=lambda z: z,
                  hessian=lambda z, p, lam: -hessian(z, p, lam))
    assert C.certify(flipped, np.array([1.0, 0.0]), [0.5]).second_order.strict is False


# ---- certify() plumbing --------------------------------------------------------------------------------
def test_certify_masks_and_multipliers_cover_the_bound_rows():
    p = kkt_qp(np.random.default_rng(16), n=4, active=1, inactive=1, bounds=True)
    report = p.report()
    ext = report.extended
    # rows: 2 margin rows, lower bounds of z0 and z2, upper bounds of z1 and z2
    assert ext.kinds.tolist() == ["margin", "margin", "lower_bound", "lower_bound", "upper_bound", "upper_bound"]
    assert report.multipliers.tolist() == [p.lam[0], 0.0, 0.7, 0.0, 1.3, 0.0]
    assert report.active.tolist() == [True, False, True, False, True, False]
    assert report.support.tolist() == [True, False, True, False, True, False]
    assert report.licq.n_active == 3


def test_certify_without_bound_multipliers_treats_them_as_zero():
    p = kkt_qp(np.random.default_rng(17), n=3, active=1, inactive=0, bounds=True)
    report = C.certify(p.nlp(), p.z, p.multipliers)
    assert report.multipliers[1:].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert report.residuals.stationarity > 0.1
    only_lower = C.certify(p.nlp(), p.z, p.multipliers, lower_multipliers=p.lo)
    only_upper = C.certify(p.nlp(), p.z, p.multipliers, upper_multipliers=p.up)
    assert only_lower.multipliers[1:].tolist() == [0.7, 0.0, 0.0, 0.0]
    assert only_upper.multipliers[1:].tolist() == [0.0, 0.0, 1.3, 0.0]


def test_certify_uses_the_given_point_and_parameters_and_tolerances():
    p = kkt_qp(np.random.default_rng(18), n=3, active=1, inactive=1)
    nlp = p.nlp()
    calls = []

    def evaluate(z, par=None):
        calls.append(par)
        point = nlp.evaluate(z)
        return Point(point.objective, point.gradient + (0.0 if par is None else par), point.values, point.jacobian,
                     point.levels)

    parametric = NLP("par", 3, nlp.rows, -np.inf, np.inf, None, evaluate, theta=lambda z: z, hessian=nlp.hessian,
                     parameters=3)
    assert C.certify(parametric, p.z, p.multipliers, p=np.zeros(3)).residuals.max < 1e-14
    assert C.certify(parametric, p.z, p.multipliers, p=np.ones(3)).residuals.stationarity > 0.1
    assert calls == [pytest.approx(np.zeros(3)), pytest.approx(np.ones(3))]
    given_point = nlp.evaluate(p.z)
    report = C.certify(parametric, p.z, p.multipliers, p=np.ones(3), point=given_point)
    assert report.residuals.max < 1e-14 and len(calls) == 2
    assert report.extended.point is given_point
    # tolerances reach every decision: a loose active tolerance makes the slack row active
    loose = C.certify(nlp, p.z, p.multipliers, tolerances=Tolerances(active=0.99))
    assert loose.active.tolist() == [True, True]
    assert C.certify(nlp, list(p.z), list(p.multipliers)).residuals.max < 1e-14


def test_certify_support_and_licq_follow_their_tolerances():
    p = kkt_qp(np.random.default_rng(19), n=3, active=2, inactive=0)
    lam = p.lam.copy()
    lam[1] = 1e-6
    q = p.A.T @ lam - p.Q @ p.z
    tight = p.report(lam=lam, q=q)
    assert tight.support.tolist() == [True, True]
    loose = p.report(Tolerances(support=1e-3), lam=lam, q=q)
    assert loose.support.tolist() == [True, False]
    A = np.array([[1.0, 0.0, 0.0], [1.0, 1e-7, 0.0]])
    b = A @ p.z
    q = A.T @ p.lam - p.Q @ p.z
    assert p.report(A=A, b=b, q=q).licq.holds
    assert not p.report(Tolerances(rank=1e-6), A=A, b=b, q=q).licq.holds
    # the curvature tolerance reaches the second-order check
    assert p.report(Tolerances(curvature=0.5), Q=np.diag([1.0, 1.0, 0.4]), q=q - np.diag([0, 0, 0.6]) @ p.z,
                    A=A, b=b).second_order.strict is None


def test_certify_with_no_rows_and_no_bounds():
    Q = np.eye(2)
    p = QP(Q, np.zeros(2), np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)), np.zeros(0), np.full(2, -np.inf),
           np.full(2, np.inf), np.zeros(2), np.zeros(0), np.zeros(0), np.zeros(2), np.zeros(2), np.ones(0), np.ones(0))
    report = p.report()
    assert report.residuals.max == 0.0
    assert report.active.shape == (0,) and report.support.shape == (0,) and report.multipliers.shape == (0,)
    assert report.licq == C.LICQ(0, 0, 1.0, True)
    assert report.second_order.strict is True
    moved = p.report(z=np.array([1e-3, 0.0]))
    assert moved.residuals.stationarity == 1.0


def test_hessian_matrix_accepts_a_diagonal():
    nlp = nonconvex_nlp(True, hess=[1.0, -2.0, 3.0])
    H = C._hessian_matrix(nlp, np.zeros(3), None, np.zeros(1))
    assert H.tolist() == np.diag([1.0, -2.0, 3.0]).tolist()
    assert C._hessian_matrix(nonconvex_nlp(False), np.zeros(3), None, np.zeros(1)).shape == (3, 3)


# ---- more edges: Hessian arguments, shapes, bounds eliminated exactly --------------------------------
def quartic_nlp(diagonal):
    """min p * sum z^4 / 12 s.t. z0 >= -10: the Hessian of the Lagrangian p diag(z^2) depends on z and p."""
    def evaluate(z, p):
        z = np.asarray(z, dtype=float)
        return Point(float(p[0] * np.sum(z ** 4) / 12), p[0] * z ** 3 / 3, z[:1] + 10.0, np.eye(2)[:1], np.ones(1))

    def hessian(z, p, lam):
        d = float(p[0]) * np.asarray(z, dtype=float) ** 2
        return d if diagonal else np.diag(d)

    return NLP("quartic", 2, (Rows("margin", 1),), -np.inf, np.inf, None, evaluate, theta=lambda z: z,
               hessian=hessian, hessian_diagonal=diagonal, parameters=1)


@pytest.mark.parametrize("diagonal", [False, True])
def test_certify_evaluates_the_hessian_at_the_point_and_parameters(diagonal):
    nlp = quartic_nlp(diagonal)
    so = C.certify(nlp, [1.0, 2.0], [0.0], p=[3.0]).second_order
    assert so.strict is True
    assert so.min_eigenvalue == pytest.approx(0.25)
    assert so.null_space_dimension == (-1 if diagonal else 2)      # the diagonal shortcut, or the general check
    assert C.certify(nlp, [1.0, 2.0], [0.0], p=[-3.0]).second_order.strict is False
    assert C.certify(nlp, [0.0, 2.0], [0.0], p=[3.0]).second_order.strict is None


def test_second_order_of_evaluates_a_diagonal_it_is_not_given_at_the_point_and_parameters():
    """second_order_of called without the diagonal (certify passes the one it computed) evaluates the NLP's own
    Hessian at z and p: the same verdict as certify's, and p's sign decides it."""
    nlp = quartic_nlp(True)
    tol = Tolerances()
    for z, p in (([1.0, 2.0], [3.0]), ([1.0, 2.0], [-3.0]), ([0.5, 2.0], [3.0])):
        report = C.certify(nlp, z, [0.0], p=p)
        alone = C.second_order_of(nlp, np.array(z), np.array(p), report.extended, report.multipliers, report.active,
                                  report.support, tol)
        assert alone == report.second_order
    alone = C.second_order_of(nlp, np.array([1.0, 2.0]), np.array([3.0]), report.extended, report.multipliers,
                              report.active, report.support, tol)
    assert alone.strict is True and alone.min_eigenvalue == pytest.approx(0.25)


def test_certify_accepts_column_multipliers():
    """CasADi returns multipliers as (m, 1) columns."""
    p = kkt_qp(np.random.default_rng(20), n=3, active=2, inactive=1)
    report = C.certify(p.nlp(), p.z, p.multipliers[:, None], p.lo, p.up)
    assert report.residuals.max < 1e-14 and report.multipliers.shape == (3,)


def test_violated_equality_rows_are_still_active():
    p = kkt_qp(np.random.default_rng(21), n=4, active=1, inactive=1, equalities=2)
    report = p.report(e=p.e + np.array([0.5, -0.5]))
    assert report.active.tolist() == [True, False, True, True]


def test_licq_with_bound_rows_only():
    assert C.licq(np.zeros((0, 3)), fixed=[0, 2]) == C.LICQ(2, 2, 1.0, True)
    assert C.licq(np.zeros((0, 3)), fixed=[1, 1]) == C.LICQ(2, 1, 0.0, False)   # a variable at two bounds
    assert C.licq([], fixed=[0]) == C.LICQ(1, 1, 1.0, True)
    assert C.licq([]) == C.LICQ(0, 0, 1.0, True)
    # every variable at a bound and one more active row: more rows than variables
    assert C.licq(np.array([[1.0, 1.0]]), fixed=[0, 1]) == C.LICQ(3, 2, 0.0, False)
    # a row on the bounded variables only is dependent on the bound rows
    L = C.licq(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]), fixed=[0])
    assert (L.n_active, L.rank, L.holds) == (3, 2, False)
    L = C.licq(np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 1.0]]), fixed=np.array([0.0]))
    assert (L.n_active, L.rank, L.holds) == (3, 3, True)
    assert L.smallest_singular_value == pytest.approx(np.sqrt((1 - np.sqrt(0.5)) / (1 + np.sqrt(0.5))))


def bounded_saddle(Q, lower, upper, z, A=None, b=None, lam=None, lo=None, up=None):
    """An indefinite QP at a KKT point z: q = J^T multipliers - Q z."""
    Q = np.asarray(Q, dtype=float)
    n = Q.shape[0]
    A = np.zeros((0, n)) if A is None else np.asarray(A, dtype=float)
    lam = np.zeros(A.shape[0]) if lam is None else np.asarray(lam, dtype=float)
    lo = np.zeros(n) if lo is None else np.asarray(lo, dtype=float)
    up = np.zeros(n) if up is None else np.asarray(up, dtype=float)
    z = np.asarray(z, dtype=float)
    q = A.T @ lam + lo - up - Q @ z
    return QP(Q, q, A, A @ z if b is None else np.asarray(b, dtype=float), np.zeros((0, n)), np.zeros(0),
              np.asarray(lower, dtype=float), np.asarray(upper, dtype=float), z, lam, np.zeros(0), lo, up,
              np.ones(A.shape[0]), np.ones(0))


def test_bounds_at_variable_zero_are_eliminated_exactly():
    """A supported bound on z0 and a supported row at angle 1e-12 to it: LICQ holds (the row restricted to
    the free variables is nonzero) and the two fix z0 and z1, leaving the positive curvature along z2."""
    p = bounded_saddle(np.diag([1.0, -1.0, 1.0]), [0.0, -np.inf, -np.inf], [np.inf] * 3, np.zeros(3),
                       A=[[1.0, 1e-12, 0.0]], lam=[0.5], lo=[0.7, 0.0, 0.0])
    report = p.report()
    assert report.residuals.max < 1e-15
    assert report.licq == C.LICQ(2, 2, 1.0, True)
    assert report.second_order.strict is True and report.second_order.null_space_dimension == 1


def test_an_active_bound_without_multiplier_does_not_fix_its_variable():
    """min -z0^2/2 + z1^2/2 + z2^2/2 s.t. z0 >= 0 at 0, multiplier 0: z0 may not move down but the bound
    is not in the support, so positive definiteness fails, and the negative curvature is only along the
    direction the bound excludes: inconclusive, neither strict nor a proof of a saddle."""
    p = bounded_saddle(np.diag([-1.0, 1.0, 1.0]), [0.0, -np.inf, -np.inf], [np.inf] * 3, np.zeros(3))
    report = p.report()
    assert report.active.tolist() == [True] and report.support.tolist() == [False]
    assert report.second_order.strict is None and report.second_order.null_space_dimension == 3
    # the same curvature along an upper-bounded variable with a multiplier: strict
    p = bounded_saddle(np.diag([1.0, -1.0, 1.0]), [-np.inf] * 3, [np.inf, 0.0, np.inf], np.zeros(3),
                       up=[0.0, 0.5, 0.0])
    assert p.report().second_order.strict is True


def test_inactive_bounds_and_rows_do_not_hide_negative_curvature():
    Q = np.diag([-1.0, 1.0])
    inactive_bound = bounded_saddle(Q, [-5.0, -np.inf], [np.inf, 5.0], np.zeros(2))
    report = inactive_bound.report()
    assert not report.active.any()
    assert report.second_order.strict is False and report.second_order.checked is True
    inactive_row = bounded_saddle(Q, [-np.inf] * 2, [np.inf] * 2, np.zeros(2), A=[[1.0, 0.0]], b=[-5.0])
    assert inactive_row.report().second_order.strict is False


def test_negative_curvature_proves_nothing_when_licq_fails():
    """Two copies of the same active row (multipliers 0): LICQ fails, so the saddle is not proved."""
    Q = np.diag([1.0, -1.0, 1.0])
    one = bounded_saddle(Q, [-np.inf] * 3, [np.inf] * 3, np.zeros(3), A=[[1.0, 0.0, 0.0]])
    assert one.report().licq.holds and one.report().second_order.strict is False
    two = bounded_saddle(Q, [-np.inf] * 3, [np.inf] * 3, np.zeros(3), A=[[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    report = two.report()
    assert not report.licq.holds and report.second_order.strict is None
    ext = report.extended
    # second_order_of's own default is "LICQ holds"
    so = C.second_order_of(two.nlp(), two.z, None, ext, report.multipliers, report.active, report.support, TOL)
    assert so.strict is False


def test_relative_curvature_decides_the_saddle():
    """-1e-4 against ||H|| = 1e6 is -1e-10 relative: not evidence of a saddle."""
    so = C.second_order(np.diag([1e6, -1e-4]), np.zeros((0, 2)), np.zeros((0, 2)), TOL)
    assert so.strict is None
    so = C.second_order(np.diag([1e6, -1e-2]), np.zeros((0, 2)), np.zeros((0, 2)), TOL)
    assert so.strict is False and so.checked is True and so.null_space_dimension == 2


def test_null_space_rank_tolerance_boundary():
    J = np.array([[1.0, 0.0, 0.0], [1.0, 1e-3, 0.0]])
    s = np.linalg.svd(C.unit_rows(J), compute_uv=False)
    t = s[1] / s[0]
    while t * s[0] > s[1]:
        t = np.nextafter(t, 0.0)
    while t * s[0] < s[1]:
        t = np.nextafter(t, 1.0)
    assert t * s[0] == s[1]
    assert C.null_space(J, 3, t).shape == (3, 2)                      # s[1] = t s[0] does not count
    assert C.null_space(J, 3, np.nextafter(t, 0.0)).shape == (3, 1)


def test_diagonal_shortcut_boundaries():
    def so(hess):
        return C.certify(nonconvex_nlp(True, hess=hess), np.zeros(3), [0.0]).second_order

    assert so([1e-9, 2.0, 4.0]).null_space_dimension == 3          # 1e-9 <= 1e-9 * 4: the general check
    assert so([4e-9, 1.0, 4.0]).null_space_dimension == 3          # exactly at the tolerance: not positive
    s = so([1e-12, 1e-4, 1e-4])                                      # relative to the largest entry only
    assert (s.null_space_dimension, s.strict) == (-1, True) and s.min_eigenvalue == pytest.approx(1e-8)


def test_complementarity_default_reference_is_the_multipliers_alone():
    c = np.array([0.0, 0.5])
    lam = np.array([1e-3, 1e-3])
    assert C.complementarity_residual(c, [1.0, 1.0], lam, [False, False]) == pytest.approx(0.25)


@PROPERTY
@given(dtype=st.sampled_from([np.int8, np.int16, np.int64, np.uint8, np.float32]), seed=st.integers(0, 1000))
def test_residual_functions_do_not_depend_on_the_input_dtype(dtype, seed):
    """Integer (or single precision) inputs give the double-precision answer: no wraparound of unsigned
    negation, no int8 abs(-128) = -128."""
    rng = np.random.default_rng(seed)
    signed = np.issubdtype(dtype, np.signedinteger) or np.issubdtype(dtype, np.floating)
    low = -128 if signed else 0
    J = rng.integers(low, 128, size=(4, 3)).astype(float)
    J[0, 0] = low
    lam = rng.integers(low, 128, size=4).astype(float)
    lam[1] = low
    c = rng.integers(0, 128, size=4).astype(float)
    g = rng.integers(low, 128, size=3).astype(float)
    g[2] = low
    levels = rng.integers(1, 128, size=4).astype(float)
    eq = np.array([False, False, True, False])

    def cast(a):
        return a.astype(dtype)

    assert np.array_equal(C.multiplier_weights(cast(J), cast(lam)), C.multiplier_weights(J, lam))
    assert C.stationarity_scale(cast(g), cast(J), cast(lam)) == C.stationarity_scale(g, J, lam)
    assert C.stationarity_residual(cast(g), cast(J), cast(lam)) == C.stationarity_residual(g, J, lam)
    assert C.primal_residual(cast(c), cast(levels), eq) == C.primal_residual(c, levels, eq)
    assert C.complementarity_residual(cast(c), cast(levels), cast(lam), eq) == \
        C.complementarity_residual(c, levels, lam, eq)
    assert C.active_rows(cast(c), cast(levels), eq, 1e-8).tolist() == C.active_rows(c, levels, eq, 1e-8).tolist()


# ---- the curvature scale: a Hessian whose terms cancel is not "definite" ---------------------------------
def test_curvature_scale_is_the_stationarity_scale_per_unit_of_z():
    p = kkt_qp(np.random.default_rng(30), n=3, active=1, inactive=1)
    report = p.report()
    ext, lam = report.extended, report.multipliers
    S = C.stationarity_scale(ext.point.gradient, ext.jacobian, lam, ext.point.gradient_scale)
    assert C.curvature_scale(ext, lam) == pytest.approx(S / np.max(np.abs(p.z)), rel=1e-15)
    small = p.variables_scaled(1e-3).report()          # ||z|| < 1: no floor at 1
    assert C.curvature_scale(small.extended, small.multipliers) == pytest.approx(
        C.curvature_scale(ext, lam) * 1e6, rel=1e-9)
    big_gs = QP(**{**p.__dict__, "gradient_scale": np.full(3, 1e3)}).report()
    assert C.curvature_scale(big_gs.extended, big_gs.multipliers) == pytest.approx(1e3 / np.max(np.abs(p.z)))
    at_zero = QP(**{**p.__dict__, "z": np.zeros(3), "b": p.A @ np.zeros(3) - 1.0}).report()
    assert C.curvature_scale(at_zero.extended, at_zero.multipliers) == 0.0


def test_second_order_is_judged_against_the_curvature_scale():
    H = np.diag([1e-13, 2e-13])
    none = np.zeros((0, 2))
    assert C.second_order(H, none, none, TOL).strict is True                       # relative to ||H|| only
    so = C.second_order(H, none, none, TOL, curvature_scale=1.0)
    assert so.strict is None and so.min_eigenvalue == pytest.approx(1e-13)
    assert C.second_order(np.diag([1.0, 2.0]), none, none, TOL, curvature_scale=1e-3).min_eigenvalue == 0.5


def test_certify_tiny_curvature_is_not_strict():
    """A QP whose Hessian 1e-13 I is negligible next to its gradients (an LP in disguise) at a point with one
    free direction: the second-order check cannot call it strict; at z = 0 the scale is ||H|| alone."""
    p = kkt_qp(np.random.default_rng(31), n=3, active=2, inactive=1, Q=1e-13 * np.eye(3))
    report = p.report()
    assert report.residuals.max < 1e-12
    assert report.second_order.strict is None and report.second_order.null_space_dimension == 1
    zero = kkt_qp(np.random.default_rng(31), n=3, active=2, inactive=1, Q=1e-13 * np.eye(3))
    zero = QP(**{**zero.__dict__, "z": np.zeros(3), "b": zero.A @ np.zeros(3) - np.array([0.0, 0.0, 1.0]),
                 "q": zero.A.T @ zero.lam})
    assert zero.report().residuals.max < 1e-12 and zero.report().second_order.strict is True



def test_second_order_of_a_non_finite_hessian_or_rows_is_not_checked():
    """A Hessian or support rows with NaN/inf (an overflowing model) give no curvature verdict, never a LinAlgError:
    checked False, null-space dimension -1, eigenvalue NaN, strict None, and the reason; either one alone suffices."""
    tol = Tolerances()
    H = np.eye(2)
    rows = np.array([[1.0, 0.0]])
    for hessian, support in ((np.array([[1.0, np.nan], [np.nan, 1.0]]), rows),
                             (H, np.array([[np.inf, 0.0]])),
                             (np.array([[np.inf, 0.0], [0.0, 1.0]]), np.array([[np.nan, 1.0]]))):
        so = C.second_order(hessian, support, support, tol)
        assert (so.checked, so.null_space_dimension, so.strict) == (False, -1, None)
        assert isinstance(so.checked, bool) and so.checked is False and np.isnan(so.min_eigenvalue)
        assert so.reason == "the Hessian or the rows' gradients are not finite"
    assert C.second_order(H, rows, rows, tol).checked is True


# ---- the decrement: what a Newton step on the Lagrangian would gain, in objective units --------------------
def diagonal_qp(seed, n=4, h=None):
    """``kkt_qp`` with a diagonal Hessian (the NLP says so: the decrement is computed)."""
    rng = np.random.default_rng(seed)
    h = 0.5 + rng.random(n) if h is None else np.asarray(h, dtype=float)
    p = kkt_qp(rng, n=n, active=2, inactive=2, Q=np.diag(h))
    return p.__class__(**{**p.__dict__, "diagonal": True})


def test_decrement_of_an_exact_kkt_point_is_zero():
    for seed in range(5):
        report = diagonal_qp(seed).report()
        assert report.residuals.decrement == 0.0 and report.kkt_met(TOL)


def test_decrement_is_the_newton_gain_of_the_lagrangian_in_objective_units():
    """A gradient error d: r = d, decrement = sum_j d_j^2 / (2 h_j) / max(sum_i lambda_i s_i, ||g~|| ||z||), each
    component beyond its rounding bound (k + 4) eps / 2 T_j (k rows with a multiplier)."""
    p = diagonal_qp(3)
    d = np.array([1e-3, 0.0, -2e-4, 5e-5])
    report = p.report(q=p.q + d)
    g = np.diag(p.Q) * p.z + p.q + d
    terms = column_terms(g, p.A, p.lam)
    rounding = (2 + 4) * 0.5 * np.finfo(float).eps * terms
    excess = np.maximum(np.abs(d) - rounding, 0.0)
    reference = max(float(np.sum(p.lam * p.levels)), float(np.max(np.abs(g)) * np.max(np.abs(p.z))))
    expected = float(np.sum(excess ** 2 / (2.0 * np.diag(p.Q)))) / reference
    assert report.residuals.decrement == pytest.approx(expected, rel=1e-9)
    assert report.residuals.max == max(components(report).max(), report.residuals.decrement)


def test_decrement_reads_rounding_as_zero_and_counts_only_the_excess():
    """A residual at its rounding bound rho_j = (k + 4) eps / 2 T_j reads 0; at 3 rho_j it counts 2 rho_j."""
    g, J, lam, h = np.array([1.0, 3.0]), np.array([[1.0, 1.0], [0.0, 2.0]]), np.array([0.5, 1.0]), np.ones(2)
    terms = np.array([1.0, 3.0])
    rho = (2 + 4) * 0.5 * np.finfo(float).eps * terms
    base = C.lagrangian_gradient(g, J, lam)                     # (0.5, 0.5)
    at_bound = C.decrement_residual(g - base + rho, J, lam, terms, h, 1.0)
    assert at_bound == 0.0
    beyond = C.decrement_residual(g - base + 3.0 * rho, J, lam, terms, h, 1.0)
    assert beyond == pytest.approx(float(np.sum((2.0 * rho) ** 2 / 2.0)), rel=1e-6)
    assert C.decrement_residual(g - base + 3.0 * rho, J, lam, terms, h, 4.0) == pytest.approx(beyond / 4.0)


def test_decrement_leaves_out_flat_and_negative_curvature():
    """Entries h_j up to DECREMENT_SNAP of the largest (an unregularized bias: 0) and negative ones are left out;
    just above the snap they count; no positive entry at all: 0."""
    g, J, lam, terms = np.array([1.0, 1.0, 1.0]), np.zeros((1, 3)), np.zeros(1), np.ones(3)
    snap = C.DECREMENT_SNAP
    assert C.decrement_residual(g, J, lam, terms, [2.0, 2.0 * snap, -1.0], 1.0) == pytest.approx(
        (1.0 - 2.0 * np.finfo(float).eps) ** 2 / 4.0)
    assert C.decrement_residual(g, J, lam, terms, [2.0, 4.0 * snap, -1.0], 1.0) == pytest.approx(
        (1.0 - 2.0 * np.finfo(float).eps) ** 2 * (1.0 / 4.0 + 1.0 / (8.0 * snap)))
    assert C.decrement_residual(g, J, lam, terms, [0.0, -1.0, 0.0], 1.0) == 0.0
    assert C.decrement_residual(g, J, lam, terms, [0.0, 0.0, 0.0], 1.0) == 0.0


def test_decrement_fails_a_point_the_other_residuals_accept_and_not_without_a_diagonal():
    """Two active rows whose entries M and -M cancel in component 0 (the terms T_0 = 2 M while g_0 = 0: the kappa of
    features in very different units): a gradient error of 1e-9 T_0 there passes stationarity (relative to the
    terms) but moves the objective by (1e-9 2 M)^2 / 2 = 2e-2 against a reference of 2: the decrement alone fails
    it.  The same NLP without ``hessian_diagonal`` does not compute it (0)."""
    M = 1e8
    A = np.array([[M, 1.0, 0.0], [-M, 1.0, 0.0]])
    z, lam = np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0])
    Q = np.eye(3)
    q = A.T @ lam - Q @ z
    free = np.full(3, np.inf)
    p = QP(Q, q, A, A @ z, np.zeros((0, 3)), np.zeros(0), -free, free, z, lam, np.zeros(0), np.zeros(3),
           np.zeros(3), np.ones(2), np.zeros(0), diagonal=True)
    assert p.report().kkt_met(TOL) and p.report().residuals.decrement == 0.0
    error = np.array([1e-9 * 2.0 * M, 0.0, 0.0])
    report = p.report(q=q + error)
    assert components(report).max() <= 1e-8
    rho = (2 + 4) * 0.5 * np.finfo(float).eps * 2.0 * M         # the rounding bound of component 0
    assert report.residuals.decrement == pytest.approx((1e-9 * 2.0 * M - rho) ** 2 / 2.0 / 2.0, rel=1e-9)
    assert not report.kkt_met(TOL)
    plain = p.__class__(**{**p.__dict__, "diagonal": False})
    assert plain.report(q=q + error).residuals.decrement == 0.0 and plain.report(q=q + error).kkt_met(TOL)


@PROPERTY
@given(seed=st.integers(0, 10_000), alpha=st.floats(1e-6, 1e6), kappa=st.floats(1e-6, 1e6),
       beta=st.floats(1e-6, 1e6))
def test_decrement_is_invariant_to_units(seed, alpha, kappa, beta):
    """Objective, variables and any row rescaled: the same decrement (to rounding)."""
    p = diagonal_qp(seed)
    rng = np.random.default_rng(seed)
    perturbed = p.__class__(**{**p.__dict__, "q": p.q + 1e-3 * rng.standard_normal(p.n)})
    base = perturbed.report().residuals.decrement
    assert base > 0
    for other in (perturbed.objective_scaled(alpha), perturbed.variables_scaled(kappa), perturbed.row_scaled(0, beta)):
        assert other.report().residuals.decrement == pytest.approx(base, rel=1e-6)


# ---- multipliers along exact dependencies of their rows --------------------------------------------------------
def test_representative_multipliers_remove_cancelling_components_along_exact_dependencies():
    """Rows a, a, 2a (exactly dependent) with multipliers 1e8, -1e8 - 1, 0: J^T lambda = -a; the representative is
    the minimum-norm lambda' (rows at unit length) with the same J^T lambda' = -a (to the rounding of the projection,
    eps |lambda|), spread evenly over the rows with a multiplier; rows that are independent, or whose terms cancel by less
    than CANCELLATION, keep lambda (the same object)."""
    a = np.array([1.0, 2.0, -2.0])
    J = np.vstack([a, a, 2 * a])
    lam = np.array([1e8, -1e8 - 1.0, 0.0])
    lagrangian = np.zeros(3) - (J.T @ lam)           # g = 0
    rep = C.representative_multipliers(J, lam, float(np.max(np.abs(lagrangian))))
    np.testing.assert_allclose(J.T @ rep, -a, atol=1e-6)
    # minimum norm in unit rows over the rows with a multiplier (the third has none): mu = lambda ||J_i|| = -||a|| / 2
    # on each of the two (J^T lambda = -||a|| u)
    np.testing.assert_allclose(rep * np.linalg.norm(J, axis=1), [-1.5, -1.5, 0.0], atol=1e-6)
    independent = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    lam2 = np.array([1e17, -1e17])
    assert C.representative_multipliers(independent, lam2, float(np.max(np.abs(independent.T @ lam2)))) is lam2
    mild = np.array([1.0, -1.0 + 1e-3, 0.0])              # cancels by 1e3 < CANCELLATION
    assert C.representative_multipliers(J, mild, float(np.max(np.abs(J.T @ mild)))) is mild
    assert C.representative_multipliers(J, np.array([0.0, 2.0, 0.0]), 4.0) is not None


def test_nearly_dependent_rows_keep_their_multipliers():
    """Three rows with a relative singular value ~1e-11 (above DEPENDENT): independent, so their large multipliers
    (the exact optimum's) are kept and measured as they are."""
    J = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1e-11]])
    lam = np.array([-1e11, -1e11, 1e11])
    assert C.representative_multipliers(J, lam, float(np.max(np.abs(J.T @ lam)))) is lam


def test_a_residual_hidden_by_multipliers_cancelling_along_a_dependency_is_found():
    """min 0.5 ||z||^2 + q.z with the equality row a.z = 1 written three times: the multipliers (M, -M, m), M = 2^18,
    are a KKT representation at z, but their terms (~1e6) make a gradient error of 1e-3 (5e-3 of |g|) read 1e-9;
    measured with the representative multipliers (the minimum-norm ones) the residual is the error itself, and the
    exact point stays certified (the projection's rounding, eps M, is far below the tolerance)."""
    a = np.array([1.0, 2.0, -2.0])
    E = np.vstack([a, a, a])
    z = a / (a @ a)
    mu = np.array([2.0 ** 18, -2.0 ** 18, 0.5])
    q = E.T @ mu - z                                  # stationarity: z + q = E^T mu
    free = np.full(3, np.inf)
    p = QP(np.eye(3), q, np.zeros((0, 3)), np.zeros(0), E, E @ z, -free, free, z, np.zeros(0), mu, np.zeros(3),
           np.zeros(3), np.zeros(0), np.ones(3))
    error = np.array([1e-3, 0.0, 0.0])
    report = p.report(q=q + error)
    assert C.residuals(report.extended, report.multipliers).stationarity < 1e-8     # the terms' measure: hidden
    assert not report.kkt_met(TOL) and report.residuals.stationarity > 1e-3
    exact = p.report()
    assert exact.residuals.stationarity < 1e-9 and exact.kkt_met(TOL)


def _twice_written_row(M: float, gradient_scale: float | None = None, jacobian_scale: float | None = None,
                       gradient=(0.0, 0.0, 0.0), row_scale: float = 1.0):
    """(NLP, z, multipliers): phi = g.z (g = 0 by default) and the equality row a.z = 0 written twice, a = (1, 2, -2),
    with the multipliers (M, 1 - M): J^T lambda = a, at g = 0 a residual of |a_j| in every component, hidden in terms
    (2M - 1) |a_j| that cancel along the rows' exact dependency.  ``gradient_scale``: g~ = that constant in every
    component; ``jacobian_scale``: J~ = that multiple of |J|; ``row_scale``: a times that."""
    a = row_scale * np.array([1.0, 2.0, -2.0])
    J = np.vstack([a, a])
    g = np.asarray(gradient, dtype=float)

    def evaluate(z, p=None):
        z = np.asarray(z, dtype=float)
        return Point(float(g @ z), g.copy(), J @ z, J.copy(), np.ones(2),
                     None if gradient_scale is None else np.full(3, gradient_scale),
                     None if jacobian_scale is None else jacobian_scale * np.abs(J))

    nlp = NLP("twice", 3, (Rows("fixed", 2, equality=True),), np.full(3, -np.inf), np.full(3, np.inf), None,
              evaluate, theta=lambda z: z)
    return nlp, np.zeros(3), np.array([M, 1.0 - M])


def test_the_dependency_gate_compares_the_terms_with_what_the_balance_produces():
    """certify measures stationarity with the representative multipliers only where the terms exceed CANCELLATION
    times the balance's size, max(|J^T lambda|, g~) (``balance_size``; here J^T lambda = a, max 2):

    * M = 1000: terms 3998, under 1e4 x 2: lambda itself, the residual |a_j| over its terms (2M - 1) |a_j|;
    * M = 10^5: over it: the representative (0.5, 0.5), whose terms |a_j| read the residual as it is, 1;
    * M = 10^5 with g~ = 1000: the gradient's terms count in the size (1e4 x 1000 > 4e5): lambda itself again;
    * M = 10^6 with g~ = 10 (open): the representative's residual over its own terms and g~, 2 / 10;
    * M = 10^6 with J~ = 5 |J| (open): over the representative's terms in J~, 5 |a_j|;
    * M = 2000 with J~ = 5 |J|: the gate reads the terms in J~ (39990 > 2e4, though 7998 in |J|): open, 0.2;
    * M = 1000 with g = a + 1e-3 e_0 (nearly balanced): the size is what the balance produces (|g|, |J^T lambda|:
      2), not the residual (1e-3): closed, 1e-3 over the first component's terms 1999;
    * M = 10^4 with a = (0.1, 0.2, -0.2): the size is 0.2 itself, not raised to 1 (terms 4e3 > 1e4 x 0.2): open, 1."""
    def stationarity(M, **scales):
        nlp, z, lam = _twice_written_row(M, **scales)
        return C.certify(nlp, z, lam).residuals.stationarity

    assert stationarity(1e3) == pytest.approx(1.0 / 1999.0, rel=1e-9)
    assert stationarity(1e5) == pytest.approx(1.0, rel=1e-9)
    assert stationarity(1e5, gradient_scale=1e3) == pytest.approx(1.0 / (2e5 - 1.0), rel=1e-9)
    assert stationarity(1e6, gradient_scale=10.0) == pytest.approx(0.2, rel=1e-9)
    assert stationarity(1e6, jacobian_scale=5.0) == pytest.approx(0.2, rel=1e-9)
    assert stationarity(2e3, jacobian_scale=5.0) == pytest.approx(0.2, rel=1e-9)
    assert stationarity(1e3, gradient=(1.0 + 1e-3, 2.0, -2.0)) == pytest.approx(1e-3 / 1999.0, rel=1e-6)
    assert stationarity(1e4, row_scale=0.1) == pytest.approx(1.0, rel=1e-9)


def test_complementarity_scale_reads_its_mask_as_booleans_and_defaults_to_no_objective_scale():
    """sum_i |lambda_i| s_i over the inequality rows, at least objective_scale (0 by default: the multipliers' own
    sum decides, however small); the equality mask may come as 0/1 (read as booleans, not as indices)."""
    assert C.complementarity_scale([2.0], [1e-3], [False]) == 2e-3
    assert C.complementarity_scale([2.0, 5.0], [1e-3, 7.0], [0, 1]) == 2e-3
    assert C.complementarity_scale([2.0, 5.0], [1e-3, 7.0], [False, False], objective_scale=1e3) == 1e3


def test_representative_multipliers_edge_cases():
    """Rows of any length (below 1 too) count at unit length; a zero row keeps its multiplier; non-finite rows or
    multipliers, or fewer than two rows, leave lambda as it is; more rows than columns go through the SVD."""
    a = np.array([0.25, 0.5, -0.5])                      # length 0.75
    J = np.vstack([a, 2 * a, np.zeros(3)])
    lam = np.array([4e8, -2e8 - 1.0, 7.0])               # J^T lambda = -2 a (the zero row moves nothing)
    rep = C.representative_multipliers(J, lam, float(np.max(np.abs(J.T @ lam))))
    np.testing.assert_allclose(J.T @ rep, -2 * a, atol=1e-6)
    np.testing.assert_allclose(rep[:2] * np.linalg.norm(J[:2], axis=1), [-0.75, -0.75], atol=1e-6)
    assert rep[2] == 7.0
    for bad_J, bad_lam in ((np.vstack([a, a, [np.inf, 0.0, 0.0]]), lam), (J, np.array([np.nan, 1e8, -1e8])),
                           (J, np.array([np.inf, 1e8, -1e8])), (J, np.array([1e8, -np.inf, 0.0]))):
        assert C.representative_multipliers(bad_J, bad_lam, 0.0) is bad_lam
    one = np.array([1e8, 0.0, 0.0])
    assert C.representative_multipliers(J, one, 0.0) is one
    with_zero = np.array([1e8, 1e8, 0.0])                # one nonzero row and a zero row: nothing to project
    assert C.representative_multipliers(np.vstack([a, np.zeros(3), np.zeros(3)]), with_zero, 1.0) is with_zero
    # balance_size: max of |J^T lambda| = |g - Lagrangian gradient| and g~ (|g| without it)
    assert C.balance_size([1.0, -3.0], [1.0, 2.0]) == 5.0 and C.balance_size([4.0, 0.0], [4.0, 0.0]) == 4.0
    assert C.balance_size([1.0, 0.0], [1.0, 0.0], [7.0, 0.5]) == 7.0
    tall = np.vstack([np.tile([1.0, 0.0], (5, 1)), [[0.0, 1.0]]])     # 6 rows in R^2: rank 2
    lam_tall = np.array([1e9, -1e9, 1e9, -1e9, 1.0, 2.0])
    rep_tall = C.representative_multipliers(tall, lam_tall, float(np.max(np.abs(tall.T @ lam_tall))))
    np.testing.assert_allclose(tall.T @ rep_tall, [1.0, 2.0], atol=1e-6)
    np.testing.assert_allclose(rep_tall, [0.2] * 5 + [2.0], atol=1e-6)


def test_dependency_threshold_is_relative_to_the_largest_singular_value():
    """100 rows e_1 + delta e_(i+1) in R^101 (independent; s_max ~ 10, the others ~ delta): delta = 1e-12 is below
    DEPENDENT s_max = 2.2e-12, a dependency (the multipliers are replaced), though above DEPENDENT alone; delta = 1e-9
    is independent (kept)."""
    for delta, dependent in ((1e-12, True), (1e-9, False)):
        J = np.hstack([np.ones((100, 1)), delta * np.eye(100)])
        lam = np.concatenate([np.full(50, 1e9), np.full(50, -1e9)])
        lam[0] += 1.0
        rep = C.representative_multipliers(J, lam, float(np.max(np.abs(J.T @ lam))))
        assert (rep is not lam) == dependent


def test_decrement_of_no_variables_is_zero():
    assert C.decrement_residual(np.zeros(0), np.zeros((1, 0)), np.ones(1), np.zeros(0), np.zeros(0), 1.0) == 0.0
