"""The structured shortcuts of the certificate and the finish used by the linear fast path: each equals the
textbook computation it replaces (sums over the rows with a multiplier, LICQ from the Gram matrix of wide
active sets, the reduced Hessian of c diag(mask) without an n x n basis, the finish started from an active-set
solver's vertex), and each falls back where it would not."""

import importlib
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from verify_helpers import PROPERTY, kkt_qp

from lexmargin.nlp import finish as F
from lexmargin.nlp.ipopt import IpoptResult
from lexmargin.nlp.options import SolveOptions, Tolerances
from lexmargin.nlp.status import Status

C = importlib.import_module("lexmargin.nlp.certify")
TOL = Tolerances()


# ---- sums over the rows with a multiplier -------------------------------------------------------------
def test_sums_over_rows_with_a_multiplier_equal_the_dense_definitions():
    rng = np.random.default_rng(0)
    J = rng.standard_normal((7, 4))
    lam = rng.standard_normal(7)
    lam[[1, 4]] = 0.0
    g = rng.standard_normal(4)
    np.testing.assert_array_equal(C.multiplier_weights(J, lam), np.abs(lam) * np.max(np.abs(J), axis=1))
    scale = max(np.max(np.abs(g)), np.max(np.abs(J).T @ np.abs(lam)))
    assert C.stationarity_scale(g, J, lam) == pytest.approx(scale, rel=1e-15)
    terms = np.maximum(np.abs(g), np.abs(J).T @ np.abs(lam))
    assert C.stationarity_residual(g, J, lam) == pytest.approx(np.max(np.abs(g - J.T @ lam) / terms), rel=1e-13)
    # a NaN multiplier is not "zero": it poisons the numbers as the dense sums would
    lam[0] = np.nan
    assert np.isnan(C.multiplier_weights(J, lam)[0]) and np.isnan(C.stationarity_residual(g, J, lam))
    # no multiplier at all, or no row
    assert C.multiplier_weights(J, np.zeros(7)).tolist() == [0.0] * 7
    assert C.stationarity_scale(g, J, np.zeros(7)) == np.max(np.abs(g))
    assert C.multiplier_weights(np.zeros((0, 4)), np.zeros(0)).size == 0


# ---- LICQ and null spaces from the Gram matrix -------------------------------------------------------------
def rows_with_singular_values(s, n, seed=0):
    """k x n rows U = diag(s) V^T with orthonormal V: singular values s, U U^T = diag(s^2)."""
    rng = np.random.default_rng(seed)
    V, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return np.asarray(s, dtype=float)[:, None] * V.T


def test_gram_spectrum_only_where_it_decides(monkeypatch):
    U = rows_with_singular_values([1.0, 0.5, 0.25], 8)              # 3 x 8: 24 entries
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 24)
    np.testing.assert_allclose(C.gram_spectrum(U, 1e-9), [0.0625, 0.25, 1.0], rtol=1e-12)
    assert C.gram_spectrum(U[:, :7], 1e-9) is None                     # 21 < 24 entries: the SVD
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 4)
    assert C.gram_spectrum(U[:, :3], 1e-9) is not None                 # square
    assert C.gram_spectrum(U[:, :2], 1e-9) is None                     # more rows than columns
    assert C.gram_spectrum(np.zeros((0, 30)), 1e-9) is None
    # ill-conditioned beyond GRAM_CONDITION: the SVD decides
    cond = C.GRAM_CONDITION
    assert C.gram_spectrum(rows_with_singular_values([1.0, np.sqrt(2 * cond)], 12), 1e-12) is not None
    assert C.gram_spectrum(rows_with_singular_values([1.0, np.sqrt(cond / 2)], 12), 1e-12) is None
    # ... and only when the singular value ratio is well above the rank tolerance (10x)
    assert C.gram_spectrum(rows_with_singular_values([1.0, 0.1], 12), 0.0099) is not None
    assert C.gram_spectrum(rows_with_singular_values([1.0, 0.1], 12), 0.0101) is None


@pytest.mark.parametrize("seed", range(4))
def test_licq_from_the_gram_matrix_equals_the_svd(monkeypatch, seed):
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((5, 12)) * np.exp(rng.uniform(-5, 5, size=(5, 1)))
    fixed = np.array([3, 7])
    svd = [C.licq(J, 1e-9), C.licq(J, 1e-9, fixed)]
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 10)
    gram = [C.licq(J, 1e-9), C.licq(J, 1e-9, fixed)]
    for a, b in zip(svd, gram):
        assert (a.n_active, a.rank, a.holds) == (b.n_active, b.rank, b.holds) == (a.n_active, a.n_active, True)
        assert b.smallest_singular_value == pytest.approx(a.smallest_singular_value, rel=1e-10)
    # a dependent row: the Gram matrix does not decide, the SVD does (same answer as before)
    dependent = np.vstack([J, J[0] + J[1]])
    got = C.licq(dependent, 1e-9)
    assert (got.n_active, got.rank, got.holds) == (6, 5, False) and got.smallest_singular_value < 1e-15


def test_licq_gram_path_is_used_for_wide_active_sets(monkeypatch):
    """The Gram route really runs (and the SVD does not) when it applies."""
    J = np.random.default_rng(1).standard_normal((4, 40))
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 10)

    def no_svd(*args, **kwargs):
        raise AssertionError("SVD used")

    monkeypatch.setattr(C.np.linalg, "svd", no_svd)
    assert C.licq(J, 1e-9).holds


# ---- second order of c diag(mask) -------------------------------------------------------------------------
def general(h, Js, tol=TOL, fixed=(), cs=0.0):
    return C.second_order(np.diag(h), Js, Js, tol, True, fixed, fixed, cs)


def same(a, b):
    assert (a.checked, a.null_space_dimension, a.strict, a.reason) == (b.checked, b.null_space_dimension, b.strict,
                                                                           b.reason)
    if np.isfinite(a.min_eigenvalue):
        assert b.min_eigenvalue == pytest.approx(a.min_eigenvalue, rel=1e-9, abs=1e-13)
    else:
        assert a.min_eigenvalue == b.min_eigenvalue


@pytest.mark.parametrize("gram", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_masked_second_order_equals_the_null_space_computation(monkeypatch, seed, gram):
    if gram:
        monkeypatch.setattr(C, "GRAM_MIN_SIZE", 10)
    rng = np.random.default_rng(seed)
    n = 9
    for c, zeros, k, fixed, cs in [(2.0, [8], 4, (), 0.0), (2.0, [0, 5], 3, (1,), 0.0), (2.0, [8], 0, (), 0.0),
                                   (2.0, [8], 9, (), 0.0), (0.0, list(range(9)), 4, (), 0.0),
                                   (3.0, [2], 5, (), 1e3), (2.0, [8], 8, (), 0.0)]:
        h = np.full(n, c)
        h[zeros] = 0.0
        Js = rng.standard_normal((k, n))
        got = C.masked_second_order(h, Js, TOL, fixed, cs)
        same(general(h, Js, fixed=fixed, cs=cs), got)


def test_masked_second_order_decisions():
    h = np.array([2.0, 2.0, 0.0])
    # the free coordinate is fixed by the support: strict, min eigenvalue 2 lambda_min(P_00) / 2
    so = C.masked_second_order(h, np.array([[0.0, 0.0, 1.0]]), TOL)
    assert (so.strict, so.null_space_dimension, so.min_eigenvalue) == (True, 2, 1.0)
    # the support leaves the free coordinate in its null space: inconclusive at 0
    so = C.masked_second_order(h, np.array([[1.0, 0.0, 0.0]]), TOL)
    assert so.strict is None and so.null_space_dimension == 2 and abs(so.min_eigenvalue) < 1e-15
    assert so.reason == "reduced Hessian only positive semidefinite: inconclusive"
    # a row mixing both: P_00 = 1/2
    so = C.masked_second_order(h, np.array([[1.0, 0.0, 1.0]]), TOL)
    assert so.strict is True and so.min_eigenvalue == pytest.approx(0.5)
    # the curvature tolerance and the curvature scale
    assert C.masked_second_order(h, np.array([[1.0, 0.0, 1.0]]), Tolerances(curvature=0.5)).strict is None
    assert C.masked_second_order(h, np.array([[1.0, 0.0, 1.0]]), Tolerances(curvature=0.4999)).strict is True
    assert C.masked_second_order(h, np.array([[1.0, 0.0, 1.0]]), TOL, curvature_scale=4.0).min_eigenvalue == \
        pytest.approx(0.25)
    # the support spans the space
    so = C.masked_second_order(h, np.eye(3), TOL)
    assert (so.strict, so.null_space_dimension, so.min_eigenvalue) == (True, 0, float("inf"))
    # a fixed variable is eliminated: fixing the free coordinate leaves 2 I
    so = C.masked_second_order(h, np.zeros((0, 3)), TOL, support_fixed=[2])
    assert (so.strict, so.null_space_dimension, so.min_eigenvalue) == (True, 2, 1.0)
    # not of the form c diag(mask): the general computation
    for other in ([2.0, 1.0, 0.0], [2.0, -2.0, 0.0], [1.0, 2.0, 3.0]):
        assert C.masked_second_order(np.array(other), np.zeros((0, 3)), TOL) is None
    assert C.masked_second_order(np.zeros(0), np.zeros((0, 0)), TOL) is None
    # an LP (H = 0): inconclusive whenever the null space is not trivial, whatever the rows
    so = C.masked_second_order(np.zeros(3), np.array([[1.0, 1.0, 1.0]]), TOL)
    assert (so.strict, so.null_space_dimension, so.min_eigenvalue) == (None, 2, 0.0)


def test_certify_uses_the_masked_second_order_for_diagonal_hessians(monkeypatch):
    """A diagonal NLP with H = 2 diag(1, 1, 0) (l2 with an unregularized coordinate): no n x n basis."""
    p = kkt_qp(np.random.default_rng(5), n=3, active=2, inactive=1, Q=np.diag([2.0, 2.0, 0.0]))
    p = replace(p, diagonal=True)
    expected = p.report().second_order

    def no_null_space(*args, **kwargs):
        raise AssertionError("null space basis computed")

    monkeypatch.setattr(C, "null_space", no_null_space)
    assert p.report().second_order == expected and expected.checked
    # and without the structure the general computation runs
    q = replace(kkt_qp(np.random.default_rng(5), n=3, active=1, inactive=1, Q=np.diag([2.0, 1.0, 0.0])),
                diagonal=True)
    with pytest.raises(AssertionError, match="null space"):
        q.report()


@PROPERTY
@given(seed=st.integers(0, 10_000), k=st.integers(0, 7), zeros=st.integers(0, 3), c=st.sampled_from([0.0, 2.0, 1e-7]))
def test_masked_second_order_property(seed, k, zeros, c):
    rng = np.random.default_rng(seed)
    n = 7
    h = np.full(n, c)
    h[rng.choice(n, zeros, replace=False)] = 0.0
    Js = rng.standard_normal((k, n)) * np.exp(rng.uniform(-4, 4, size=(k, 1)))
    same(general(h, Js), C.masked_second_order(h, Js, TOL))


# ---- the finish from an active-set solver's vertex ----------------------------------------------------------
def vertex_result(p, z=None, multipliers=None, vertex=True):
    return IpoptResult(p.z if z is None else z, 0.0, p.multipliers if multipliers is None else multipliers, p.lo,
                       p.up, Status.OPTIMAL, "optimal", 3, 0.01, solver="dual_active_set", vertex=vertex)


def test_ipopt_results_are_not_vertices_by_default():
    p = kkt_qp(np.random.default_rng(0))
    r = IpoptResult(p.z, 0.0, p.multipliers, p.lo, p.up, Status.OPTIMAL, "Solve_Succeeded", 1, 0.0)
    assert (r.solver, r.vertex) == ("ipopt", False)


def test_a_certified_vertex_of_a_diagonal_nlp_needs_no_finish():
    p = replace(kkt_qp(np.random.default_rng(13), n=5, active=2, inactive=2), diagonal=True)
    point, report = F.finish_or_keep(p.nlp(), vertex_result(p), SolveOptions())
    assert not point.info.applied and point.info.reason == F.NOT_NEEDED and report.residuals.max < 1e-13
    # the same point from an interior-point solver is always finished
    point, _ = F.finish_or_keep(p.nlp(), vertex_result(p, vertex=False), SolveOptions())
    assert point.info.applied


def test_the_finish_starts_from_the_vertex_multipliers(monkeypatch):
    p = replace(kkt_qp(np.random.default_rng(3), n=6, active=2, inactive=2), diagonal=True)
    rng = np.random.default_rng(1)
    z = p.z + 1e-7 * rng.standard_normal(p.n)                       # not certified: the finish runs

    def no_nnls(*args, **kwargs):
        raise AssertionError("NNLS used")

    monkeypatch.setattr(F, "_nnls_multipliers", no_nnls)
    lam = p.multipliers.copy()
    lam[2] = -0.3                                                   # a candidate with a negative multiplier:
    fin = F.finish(p.nlp(), z, lam, p.lo, p.up, vertex=True)        # left out of the working set
    assert fin.info.applied and fin.info.working_set == 2
    np.testing.assert_allclose(fin.z, p.z, atol=1e-13)
    np.testing.assert_allclose(fin.multipliers, p.multipliers, atol=1e-12)
    with pytest.raises(AssertionError, match="NNLS"):
        F.finish(p.nlp(), z, lam, p.lo, p.up)


def test_a_wrong_vertex_falls_back_to_the_nnls_finish(monkeypatch):
    """With one round only, a working set started from a wrong support cannot be repaired; the NNLS start can."""
    monkeypatch.setattr(F, "MAX_ROUNDS", 1)
    p = replace(kkt_qp(np.random.default_rng(3), n=6, active=2, inactive=2), diagonal=True)
    z = p.z + 1e-7 * np.random.default_rng(2).standard_normal(p.n)
    wrong = np.array([0.0, 1.0, 0.0, 0.0])                          # half the support, wrong multiplier
    alone = F.finish(p.nlp(), z, wrong, p.lo, p.up, vertex=True)
    assert not alone.info.applied
    point, report = F.finish_or_keep(p.nlp(), vertex_result(p, z=z, multipliers=wrong), SolveOptions())
    assert point.info.applied and report.residuals.max < 1e-13
    np.testing.assert_allclose(point.z, p.z, atol=1e-13)


def test_equality_rows_keep_their_multipliers_in_a_vertex_start():
    p = replace(kkt_qp(np.random.default_rng(4), n=6, active=2, inactive=1, equalities=1), diagonal=True)
    z = p.z + 1e-7 * np.random.default_rng(3).standard_normal(p.n)
    lam = p.multipliers.copy()
    assert lam[-1] != 0
    lam[-1] = -abs(lam[-1]) if p.multipliers[-1] < 0 else lam[-1]
    fin = F.finish(p.nlp(), z, lam, p.lo, p.up, vertex=True)
    assert fin.info.applied and fin.info.working_set == 3
    np.testing.assert_allclose(fin.multipliers, p.multipliers, atol=1e-12)


def test_a_certified_but_inexact_vertex_is_finished():
    """A vertex whose residuals are within the tolerance but above VERTEX_EXACT is polished to rounding."""
    p = replace(kkt_qp(np.random.default_rng(13), n=5, active=2, inactive=2), diagonal=True)
    lam = p.multipliers * (1 + 1e-10)
    kept = p.report(lam=lam[:p.lam.size]).residuals.max
    assert F.VERTEX_EXACT < kept < TOL.kkt
    point, report = F.finish_or_keep(p.nlp(), vertex_result(p, multipliers=lam), SolveOptions())
    assert point.info.applied and report.residuals.max <= F.VERTEX_EXACT
    exact = p.report().residuals.max
    assert exact <= F.VERTEX_EXACT
    point, _ = F.finish_or_keep(p.nlp(), vertex_result(p), SolveOptions())
    assert not point.info.applied


def test_bordered_kkt_step_equals_the_full_system():
    """Diagonal H >= 0 with zeros: the step from the bordered system solves [[H, -J^T], [J, 0]] exactly."""
    rng = np.random.default_rng(7)
    H = np.array([2.0, 2.0, 0.0, 2.0, 0.0])
    J = rng.standard_normal((3, 5))
    F1, F2 = rng.standard_normal(5), rng.standard_normal(3)
    dz, dlam = F._kkt_step(H, J, F1, F2, True)
    K = np.block([[np.diag(H), -J.T], [J, np.zeros((3, 3))]])
    np.testing.assert_allclose(K @ np.concatenate([dz, dlam]), -np.concatenate([F1, F2]), atol=1e-12)
    assert F._bordered_step(np.array([2.0, 0.0]), np.array([[1.0, 0.0]]), np.zeros(2), np.zeros(1)) is None


def test_masked_second_order_snaps_rounding_level_entries():
    """A bias's curvature sum_n lambda_n y_n is 0 at a KKT point up to rounding: entries below MASK_SNAP
    tol.curvature (relative) count as 0, unless they could move the decision across tol.curvature."""
    J = np.array([[1.0, 0.0, 1.0]])
    tiny = C.MASK_SNAP * TOL.curvature * 2.0
    for noise in (tiny, -tiny, 0.0):
        h = np.array([2.0, 2.0, noise])
        got = C.masked_second_order(h, J, TOL)
        assert got is not None and got.strict is True and got.min_eigenvalue == pytest.approx(0.5)
        same(general(h, J), got)
    assert C.masked_second_order(np.array([2.0, 2.0, 2.0 * tiny]), J, TOL) is None       # above the snap
    # the snapped entry is within reach of the decision: the general computation decides
    h = np.array([2.0, 2.0, -tiny])
    assert C.masked_second_order(h, J, Tolerances(curvature=0.5 + tiny / 4)) is None
    assert C.masked_second_order(h, J, Tolerances(curvature=0.5 + 4 * tiny)) is not None


def test_licq_and_second_order_share_one_gram_matrix(monkeypatch):
    """When the active rows are the support rows (no bounds), certify factors their Gram matrix once; the report
    equals the one computed without sharing."""
    monkeypatch.setattr(C, "GRAM_MIN_SIZE", 10)
    p = replace(kkt_qp(np.random.default_rng(21), n=12, active=4, inactive=3, Q=np.diag([2.0] * 11 + [0.0])),
                diagonal=True)
    calls = []
    original = C.unit_gram

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(C, "unit_gram", counting)
    shared = p.report()
    assert len(calls) == 1 and shared.licq.holds and shared.second_order.checked
    licq = C.licq(p.A[:4], TOL.rank)
    assert (licq.rank, licq.holds) == (shared.licq.rank, shared.licq.holds)
    assert licq.smallest_singular_value == pytest.approx(shared.licq.smallest_singular_value, rel=1e-12)
    alone = C.masked_second_order(np.diag(p.Q), p.A[:4], TOL, curvature_scale=C.curvature_scale(
        shared.extended, shared.multipliers))
    same(alone, shared.second_order)
    # a degenerate active row (not in the support): two computations
    calls.clear()
    b = p.b.copy()
    b[4] = p.A[4] @ p.z
    p.report(b=b)
    assert len(calls) == 2
