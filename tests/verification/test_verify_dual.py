"""The dual route of linear l2 problems (lexmargin/problems/dual.py): what it proposes is a KKT point of the
least-distance program (feasible to rounding, multipliers >= 0 on independent passive rows, stationary,
complementary) in every mode (Gram matrix, working set of rows, free coordinates), a violation of 1e-6 is never
accepted as "optimal", inconsistent rows are reported as such, rows nearly dependent on the passive ones are
skipped, and the route hands back the pipeline's own certificate with the status decided by it."""

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from verify_helpers import PROPERTY, exact_support_optimum, kesler

import lexmargin as lm
from lexmargin import Dataset
from lexmargin.problems import dual as D

EPS = np.finfo(float).eps


def planted(n, d, seed=0, gap=0.3, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    X = rng.standard_normal((n, d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    return Dataset(scale * (X + gap * y[:, None] * w + shift), y)


def rows(data):
    return data.y[:, None] * data.X, np.ones(data.n_samples)


def assert_kkt(A, r, result, free=(), tol=1e-8):
    """result is a KKT point of min ||theta_R||^2 s.t. A theta >= r (R: the coordinates not in free), its
    passive rows the rows with a positive multiplier, linearly independent (with r: a vertex of the dual)."""
    theta, lam = result.theta, result.multipliers
    assert result.status == "optimal" and result.converged
    regular = np.ones(A.shape[1], dtype=bool)
    regular[list(free)] = False
    size = max(float(np.max(np.abs(r))), float(np.max(np.abs(A))) * float(np.max(np.abs(theta))))
    assert np.max(r - A @ theta) <= 1e-9 * size                        # feasible (to NNLS's accuracy)
    assert lam.shape == r.shape and np.min(lam) >= 0.0                  # dual feasible
    grad = A.T @ lam
    top = max(float(np.max(np.abs(theta[regular]))), 1e-300)
    np.testing.assert_allclose(grad[regular], 2.0 * theta[regular], rtol=0, atol=tol * 2 * top)   # stationary
    if len(free):
        np.testing.assert_allclose(grad[~regular], 0.0, rtol=0, atol=tol * float(np.max(np.abs(grad))))
    assert np.max(lam * np.abs(A @ theta - r)) <= tol * float(np.max(lam)) * size   # complementary
    assert np.array_equal(np.sort(result.passive), np.flatnonzero(lam > 0))
    P = np.sort(result.passive)
    assert np.linalg.matrix_rank(np.column_stack([A[P], r[P]])) == P.size
    return theta, lam


# ---- least_distance: KKT points in every mode ------------------------------------------------------------------
@pytest.mark.parametrize("n,d,full", [(40, 3, None), (40, 3, True), (12, 20, None), (12, 20, False),
                                      (9, 4, None)])
def test_least_distance_is_a_kkt_point(n, d, full):
    A, r = rows(planted(n, d, seed=n + d))
    result = D.least_distance(A, r, full_gram=full)
    assert result.full_gram == (full if full is not None else n <= 2 * (d + 1))
    theta, lam = assert_kkt(A, r, result)
    assert result.rows_formed == n and result.iterations >= 1
    # the objective is the dual's: ||theta||^2 = r.lambda / 2
    assert theta @ theta == pytest.approx(r @ lam / 2, rel=1e-10)


@PROPERTY
@given(seed=st.integers(0, 10_000), n=st.integers(2, 30), d=st.integers(1, 12), full=st.booleans(),
       exponent=st.integers(-30, 30))
def test_property_least_distance_is_a_kkt_point_at_any_scale(seed, n, d, full, exponent):
    """On the pipeline's rows (linear_margins: data outside [2^-8, 2^8] rescaled by a power of two)."""
    data = planted(n, d, seed=seed, scale=2.0 ** exponent)
    A, r = D.dual_rows(D.linear_margins(lm.load_model("linear", input_dim=d), data), d)
    assert_kkt(A, r, D.least_distance(A, r, full_gram=full))


def test_least_distance_with_offsets_and_extra_rows():
    """r != 1 (margins with an offset c, rows of other kinds): the same conditions."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((25, 4))
    theta0 = rng.standard_normal(4)
    r = A @ theta0 - rng.random(25)             # theta0 is strictly feasible
    r[:3] = -5.0                                # rows that hold at theta = 0
    for full in (True, False):
        assert_kkt(A, r, D.least_distance(A, r, full_gram=full))
    # every row holds at 0: theta = 0, no multiplier
    result = D.least_distance(A, -np.ones(25) - rng.random(25))
    assert result.status == "optimal" and not np.any(result.theta) and not np.any(result.multipliers)


def test_tall_data_grows_a_working_set_until_no_row_is_violated(monkeypatch):
    monkeypatch.setattr(D, "SMALL_PROBLEM", 50)
    monkeypatch.setattr(D, "SEED_ROWS", 4)
    monkeypatch.setattr(D, "SEED_FACTOR", 1)
    monkeypatch.setattr(D, "ROUND_ROWS", 2)
    A, r = rows(planted(200, 3, seed=4, gap=0.05))
    result = D.least_distance(A, r, full_gram=False)
    assert_kkt(A, r, result)
    assert 4 < result.rows_formed < 200 and not result.full_gram
    reference = D.least_distance(A, r, full_gram=True)
    np.testing.assert_allclose(result.theta, reference.theta, rtol=0, atol=1e-10 * np.max(np.abs(reference.theta)))
    np.testing.assert_allclose(result.multipliers, reference.multipliers, rtol=0,
                               atol=1e-9 * np.max(reference.multipliers))


def test_working_set_keeps_the_rows_with_a_multiplier_and_adds_the_most_violated(monkeypatch):
    """Each round's NNLS runs on the previous round's rows with u > 0 and the batch of most violated rows (no row
    with u = 0 is carried over); the LDP's value ||theta||^2 increases strictly from round to round."""
    monkeypatch.setattr(D, "SMALL_PROBLEM", 50)
    monkeypatch.setattr(D, "SEED_ROWS", 6)
    monkeypatch.setattr(D, "SEED_FACTOR", 1)
    monkeypatch.setattr(D, "ROUND_ROWS", 3)
    A, r = rows(planted(300, 3, seed=5, gap=0.05))
    calls, real = [], D.nnls

    def spy(E, target, maxiter):
        u, rnorm = real(E, target, maxiter=maxiter)
        calls.append((E.copy(), u.copy()))
        return u, rnorm

    monkeypatch.setattr(D, "nnls", spy)
    result = D.least_distance(A, r, full_gram=False)
    assert_kkt(A, r, result)
    assert len(calls) >= 3
    key = {tuple(np.append(A[i], r[i])): i for i in range(A.shape[0])}
    values = []
    for (E, u), (E_next, _) in itertools.pairwise(calls):
        before = [key[tuple(c)] for c in E.T]
        after = [key[tuple(c)] for c in E_next.T]
        kept = {i for i, ui in zip(before, u) if ui > 0}
        added = set(after) - kept
        assert kept <= set(after) and len(after) == len(kept) + len(added)
        assert 0 < len(added) <= 4                        # the batch: at most max(ROUND_ROWS, d + 1) rows
        theta = A[before].T @ u / (1.0 - r[before] @ u)
        violation = r[list(added)] - A[list(added)] @ theta
        assert np.all(violation > 0)      # every added row (a dropped one included) was violated at the last theta
        values.append(theta @ theta)
    assert all(b > a for a, b in itertools.pairwise(values))
    assert result.rows_formed == len({key[tuple(c)] for E, _ in calls for c in E.T})


def test_least_distance_with_a_free_coordinate_is_a_kkt_point():
    """The SVM with bias: the bias column left out of the objective; its stationarity is A_F^T lambda = 0."""
    for n, d, full in ((40, 3, None), (40, 3, False), (10, 12, None), (10, 12, True)):
        data = planted(n, d, seed=n * d, shift=2.0)
        A = np.hstack([data.y[:, None] * data.X, data.y[:, None]])
        r = np.ones(n)
        result = D.least_distance(A, r, free=(d,), full_gram=full)
        assert_kkt(A, r, result, free=(d,))
        assert result.full_gram == (full if full is not None else n <= 2 * (d + 2))


@PROPERTY
@given(seed=st.integers(0, 10_000), n=st.integers(3, 30), d=st.integers(1, 8), full=st.booleans(),
       shift=st.floats(-3, 3))
def test_property_free_coordinate_kkt(seed, n, d, full, shift):
    data = planted(n, d, seed=seed, shift=shift)
    if np.all(data.y > 0) or np.all(data.y < 0):
        return
    A = np.hstack([data.y[:, None] * data.X, data.y[:, None]])
    assert_kkt(A, np.ones(n), D.least_distance(A, np.ones(n), free=(d,), full_gram=full), free=(d,))


def test_signed_seed_takes_each_sides_lowest_rows_and_the_rows_without_a_free_entry():
    # rows (x, free entry): margins along the centroid of x
    A = np.array([[3.0, 1.0], [1.0, 1.0], [2.0, 1.0], [-1.0, -1.0], [-4.0, -1.0], [-2.0, -1.0], [0.5, 0.0]])
    r = np.ones(7)
    g = A[:, :1].mean(axis=0)
    margins = A[:, :1] @ g - r
    seed = D._signed_seed(A, r, np.array([0]), np.array([1]), 4)
    pos = [i for i in np.argsort(margins, kind="stable") if A[i, 1] > 0][:2]
    neg = [i for i in np.argsort(margins, kind="stable") if A[i, 1] < 0][:2]
    assert seed.tolist() == sorted([*pos, *neg, 6])
    assert np.all(np.diff(seed) > 0)
    assert D._signed_seed(A, r, np.array([0]), np.array([1]), 100).tolist() == list(range(7))


def test_free_coordinate_tall_warm_start_is_seeded_by_sign(monkeypatch):
    """The tall free-coordinate solve starts its warm LDP from ``_signed_seed`` (and stays a KKT point)."""
    monkeypatch.setattr(D, "SEED_ROWS", 10)
    monkeypatch.setattr(D, "SEED_FACTOR", 1)
    seeds, real = [], D._ldp_rows

    def spy(A, r, **kwargs):
        seeds.append(kwargs.get("seed"))
        return real(A, r, **kwargs)

    monkeypatch.setattr(D, "_ldp_rows", spy)
    data = planted(400, 3, seed=9, gap=0.1, shift=0.7)
    A = np.hstack([data.y[:, None] * data.X, data.y[:, None]])
    result = D.least_distance(A, np.ones(400), free=(3,), full_gram=False)
    assert_kkt(A, np.ones(400), result, free=(3,))
    assert len(seeds) == 1 and seeds[0].size == 10
    assert np.sum(data.y[seeds[0]] > 0) == 5 and np.sum(data.y[seeds[0]] < 0) == 5
    small = planted(300, 3, seed=9, gap=0.1, shift=0.7)       # 300 <= ALL_ROWS_RATIO (d + 1): all rows, no seed
    A = np.hstack([small.y[:, None] * small.X, small.y[:, None]])
    assert_kkt(A, np.ones(300), D.least_distance(A, np.ones(300), free=(3,), full_gram=False), free=(3,))
    assert len(seeds) == 2 and seeds[1] is None


@pytest.mark.parametrize("rows", [[], [3], [0, 2, 5], [0, 1, 2, 4, 5], [0, 1, 2, 3, 4, 5]])
def test_combine_is_the_rows_weighted_sum(rows):
    rng = np.random.default_rng(7)
    A = rng.standard_normal((6, 9))
    rows = np.array(rows, dtype=int)
    weights = rng.random(rows.size)
    np.testing.assert_allclose(D._combine(A, rows, weights), A[rows].T @ weights, rtol=1e-14, atol=1e-15)
    assert D._combine(A, rows, weights).shape == (9,)


def test_free_coordinate_working_set_rounds(monkeypatch):
    monkeypatch.setattr(D, "SEED_ROWS", 4)
    monkeypatch.setattr(D, "SEED_FACTOR", 1)
    monkeypatch.setattr(D, "ROUND_ROWS", 2)
    data = planted(150, 2, seed=8, gap=0.05, shift=1.5)
    A = np.hstack([data.y[:, None] * data.X, data.y[:, None]])
    result = D.least_distance(A, np.ones(150), free=(2,), full_gram=False)
    assert_kkt(A, np.ones(150), result, free=(2,))
    assert result.rows_formed < 150


def test_a_bound_on_a_free_coordinate_holds_exactly():
    """The SVM's b >= 0: a passive row on the free coordinate alone puts it exactly at its bound."""
    data = Dataset([[2.0], [3.0], [-1.0], [-2.0]], [1, 1, -1, -1])     # b* < 0 unconstrained; b >= 0 binds
    A = np.vstack([np.hstack([data.y[:, None] * data.X, data.y[:, None]]), [0.0, 1.0]])
    r = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    for full in (True, False):
        result = D.least_distance(A, r, free=(1,), full_gram=full)
        assert result.theta[1] == 0.0 and 4 in result.passive
        assert_kkt(A, r, result, free=(1,))


def test_a_bound_row_is_told_from_a_margin_row_by_its_regularized_entries():
    """A row with one nonzero regularized entry (however far along the row) is no bound; the row b >= 0 is, and
    only a passive one sets b."""
    rng = np.random.default_rng(4)
    d = 40
    X = rng.standard_normal((6, d))
    X[:, :30] = 0.0
    y = np.array([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])
    A = np.vstack([np.hstack([y[:, None] * X, y[:, None]]), np.eye(1, d + 1, d)])
    A[0, :d] = 0.0
    A[0, d - 1] = 1e-300                          # a margin row with a single tiny regularized entry, last
    r = np.append(np.ones(6), 0.0)
    sizes = D.largest_magnitude(A[:, :d], 1)
    theta = np.full(d + 1, 7.0)
    D._exact_free_bounds(A, r, theta, np.arange(7), np.array([d]), sizes)
    assert theta[d] == 0.0                       # the bound row: b = r / 1 = 0
    theta = np.full(d + 1, 7.0)
    D._exact_free_bounds(A, r, theta, np.arange(6), np.array([d]), sizes)
    assert theta.tolist() == [7.0] * (d + 1)     # margin rows only: nothing set
    A[0, d - 1] = 0.0                            # now row 0 is y_0 b >= 1 alone: b = 1 / y_0
    theta = np.full(d + 1, 7.0)
    D._exact_free_bounds(A, r, theta, np.arange(6), np.array([d]), D.largest_magnitude(A[:, :d], 1))
    assert theta[d] == 1.0 and theta[:d].tolist() == [7.0] * d


def test_a_bound_on_the_second_of_two_free_coordinates_is_solved_for_exactly():
    """With two free coordinates a passive row c t_2 >= r alone sets t_2 = r / c (c not 1), and nothing else."""
    A = np.array([[1.0, 0.5, 2.0, 0.0],       # a margin row (regularized entries 1, 0.5)
                  [0.0, 0.0, 0.0, 4.0],       # 4 t_2 >= 3 alone (the free coordinates are columns 2 and 3)
                  [0.0, 0.0, 3.0, 1.0]])      # on both free coordinates: not a bound
    r = np.array([1.0, 3.0, 1.0])
    theta = np.array([0.5, 7.0, 7.0, 7.0])
    D._exact_free_bounds(A, r, theta, np.arange(3), np.array([2, 3]), D.largest_magnitude(A[:, :2], 1))
    assert theta.tolist() == [0.5, 7.0, 7.0, 0.75]


# ---- statuses ---------------------------------------------------------------------------------------------
XOR = Dataset([[1, 1], [-1, -1], [1, -1], [-1, 1]], [1, 1, -1, -1])


@pytest.mark.parametrize("full", [None, True, False])
def test_inconsistent_rows_are_reported(full):
    A, r = rows(XOR)
    result = D.least_distance(A, r, full_gram=full)
    assert result.status == "inconsistent" and not result.converged
    assert not np.any(result.multipliers)
    # one row and its opposite with r > 0
    result = D.least_distance(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([1.0, 1.0]), full_gram=full)
    assert result.status == "inconsistent"


def test_inconsistent_rows_with_a_free_coordinate():
    line = Dataset([[0.0], [1.0], [2.0]], [1, -1, 1])
    A = np.hstack([line.y[:, None] * line.X, line.y[:, None]])
    for full in (True, False):
        assert D.least_distance(A, np.ones(3), free=(1,), full_gram=full).status == "inconsistent"


def test_limits_are_reported():
    A, r = rows(planted(40, 3, seed=1))
    none = D.least_distance(A, r, max_iter=0)
    assert none.status == "max_iterations" and none.iterations == 0 and none.rows_formed == 0
    assert none.theta.shape == (3,) and none.multipliers.shape == (40,) and not np.any(none.multipliers)
    for full in (True, False):
        assert D.least_distance(A, r, time_limit=0.0, full_gram=full).status == "max_time"
        assert D.least_distance(A, r, free=(0,), time_limit=0.0, full_gram=full).status == "max_time"
    one = D.least_distance(A, r, max_iter=1, full_gram=True)
    assert one.status in ("max_iterations", "optimal")
    wide = planted(60, 3, seed=9, gap=0.02)
    Aw, rw = rows(wide)
    assert D.least_distance(Aw, rw, max_iter=1, full_gram=True).status == "max_iterations"
    assert D.least_distance(Aw, rw, free=(0,), max_iter=1, full_gram=True).status == "max_iterations"


# ---- the violation test that decides "optimal" -----------------------------------------------------------------
def test_a_violation_of_1e_minus_6_is_a_violated_row():
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    r = np.ones(4)
    theta = np.array([1.0, 1.0])
    assert D._violated(A, r, theta, np.max(np.abs(A), axis=1)).size == 0
    for n, row in enumerate(A):
        bad = r.copy()
        bad[n] = row @ theta + 1e-6 * max(1.0, np.abs(row).max())
        assert D._violated(A, bad, theta, np.max(np.abs(A), axis=1)).tolist() == [n]


def test_violation_tolerance_is_relative_to_rows_and_point():
    """r_n - A_n theta > VIOLATION max(|r_n|, max|A_n| max|theta|): the larger of the two sizes counts."""
    A = np.array([[1.0, 0.0], [0.0, 1.0]])
    rownorm = np.max(np.abs(A), axis=1)
    for big_r in (False, True):
        theta = np.array([4.0, 4.0]) if not big_r else np.array([1.0, 1.0])
        r0 = 8.0 if big_r else 1.0                   # the size: |r| = 8, or max|A| max|theta| = 4
        size = max(r0, 4.0 if not big_r else 1.0)
        for factor, violated in ((0.5, False), (2.0, True)):
            r = A @ theta + factor * D.VIOLATION * size
            r[1] = A[1] @ theta - 1.0
            r[0] = max(r[0], r0) if big_r else r[0]
            if big_r:
                r[0] = r0
                theta = np.array([r0 - factor * D.VIOLATION * r0, 1.0])
            got = D._violated(A, r, theta, rownorm)
            assert got.tolist() == ([0] if violated else []), (big_r, factor)


def test_violated_rows_most_violated_first_and_excluded():
    A = np.eye(3)
    r = np.array([1.0, 3.0, 2.0])
    theta = np.zeros(3)
    rownorm = np.ones(3)
    assert D._violated(A, r, theta, rownorm).tolist() == [1, 2, 0]
    exclude = np.array([False, True, False])
    assert D._violated(A, r, theta, rownorm, exclude=exclude).tolist() == [2, 0]
    assert D._violated(A, r, theta, rownorm, exclude=np.array([2])).tolist() == [1, 0]


# ---- the passive rows stay independent ------------------------------------------------------------------------
def test_extend_skips_rows_dependent_on_the_passive_ones():
    A = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 3.0],
                  [1.0, 0.0, 1e-9], [1.0, 0.0, 3e-7]])
    r = np.array([1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0])  # e_2 = 2 e_0, e_3 = e_0 + e_1; e_5, e_6 are e_0 + O(1e-9),
    #                                                    e_0 + O(3e-7): squared distance 1e-13 < DEPENDENT
    gram = D._Gram(A, r, True)
    L, passive, kept = D._extend(np.zeros((0, 0)), np.zeros(0, dtype=int), np.array([0, 1]), gram)
    assert passive.tolist() == [0, 1] and kept.tolist() == [0, 1]
    np.testing.assert_allclose(L @ L.T, gram.K[np.ix_(passive, passive)], rtol=1e-14)
    L2, passive2, kept2 = D._extend(L, passive, np.array([2, 3, 4, 5, 6]), gram)
    assert passive2.tolist() == [0, 1, 4] and kept2.tolist() == [2]
    np.testing.assert_allclose(L2 @ L2.T, gram.K[np.ix_(passive2, passive2)], rtol=1e-13, atol=1e-13)
    assert np.allclose(L2, np.tril(L2))
    # nothing independent: the factor and the passive rows are unchanged
    L3, passive3, kept3 = D._extend(L2, passive2, np.array([2, 3]), gram)
    assert kept3.size == 0 and passive3.tolist() == [0, 1, 4] and np.array_equal(L3, L2)
    # on demand (no N x N matrix): the same factor, and the rows formed are recorded
    lazy = D._Gram(A, r, False)
    L4, passive4, _ = D._extend(np.zeros((0, 0)), np.zeros(0, dtype=int), np.array([0, 1, 2, 4]), lazy)
    assert passive4.tolist() == [0, 1, 4] and lazy.formed.tolist() == [True, True, True, False, True, False, False]
    np.testing.assert_allclose(L4, L2, rtol=1e-14, atol=1e-15)


def test_extend_keeps_the_callers_order_and_scales_rows():
    """Rows of very different lengths are independent when their directions are (the test is relative)."""
    A = np.array([[1e-8, 0.0], [0.0, 1e8], [3.0, 3.0]])
    r = np.array([1e-8, 0.0, 0.0])
    gram = D._Gram(A, r, True)
    L, passive, kept = D._extend(np.zeros((0, 0)), np.zeros(0, dtype=int), np.array([1, 0]), gram)
    assert passive.tolist() == [1, 0] and kept.tolist() == [0, 1]
    np.testing.assert_allclose(L @ L.T, gram.K[np.ix_(passive, passive)], rtol=1e-12)


def test_bordered_solves_the_equality_constrained_system():
    rng = np.random.default_rng(5)
    M = rng.standard_normal((5, 5))
    K = M @ M.T + np.eye(5)
    L = np.linalg.cholesky(K)
    r = rng.standard_normal(5)
    C = rng.standard_normal((5, 2))
    z, nu = D._bordered(L, r, C)
    np.testing.assert_allclose(K @ z + C @ nu, r, atol=1e-12)
    np.testing.assert_allclose(C.T @ z, 0.0, atol=1e-12)
    z0, nu0 = D._bordered(L, r, np.zeros((5, 0)))
    np.testing.assert_allclose(K @ z0, r, atol=1e-12)
    assert nu0.shape == (0,)


# ---- the rows and the scope ----------------------------------------------------------------------------------
def test_dual_rows_are_the_margins_then_the_extra_rows():
    from lexmargin.problems.svm_bias import BiasMargins

    data = planted(6, 2, seed=1)
    source = BiasMargins(data, positive=True)
    A, r = D.dual_rows(source, 3)
    assert A.shape == (7, 3) and r.shape == (7,)
    np.testing.assert_array_equal(A[:6], source.A)
    np.testing.assert_array_equal(r[:6], 1.0 - source.c)
    np.testing.assert_array_equal(A[6], [0.0, 0.0, 1.0])
    assert r[6] == 0.0
    plain = BiasMargins(data, positive=False)
    A2, r2 = D.dual_rows(plain, 3)
    assert A2 is plain.A and np.array_equal(r2, np.ones(6))


def test_dual_applies_only_to_linear_l2_without_lifts():
    data = planted(20, 3, seed=2)
    linear = lm.load_model("linear", input_dim=3)
    assert D.dual_applies(lm.MaxMarginProblem(linear, data))
    for norm in ("l1", "linf"):
        assert not D.dual_applies(lm.MaxMarginProblem(linear, data, norm=norm))
    assert not D.dual_applies(lm.MaxMarginProblem(linear, data, norm="lp", p=3.0))
    assert not D.dual_applies(lm.MaxMarginProblem(lm.load_model("two_layer", input_dim=3, width=2), data))


def test_linear_margins_equal_the_models_own():
    from lexmargin.problems.margins import LinearMargins

    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 3))
    y = np.sign(rng.standard_normal(12))
    shifted = lm.Model("shifted", [lm.Block("w", {"w": (3,)}, degree=None)], input_dim=3,
                       output=lambda p, x: 3.0 * p.w[0] * x[2] - p.w[1] * x[0] + p.w[2] + 0.25)
    two = lm.Model("two", [lm.Block("w", {"w": (3,)}, degree=None), lm.Block("v", {"v": (2,)}, degree=None)],
                   input_dim=3,
                   output=lambda p, x: p.w[0] * x[0] + p.w[1] * x[1] + 2.0 * p.v[0] * x[0] - p.v[1] + p.w[2])
    for model in (lm.load_model("linear", input_dim=3), shifted, two):
        for scale in (1.0, 2.0 ** -80, 2.0 ** 80):
            data = Dataset(X * scale, y)
            fast, slow = D.linear_margins(model, data), LinearMargins(model, data)
            for name in ("A", "c", "scale_exponent", "n_samples", "column_scale"):
                a, b = getattr(fast, name), getattr(slow, name)
                if b is None:
                    assert a is None, name
                else:
                    np.testing.assert_allclose(a, b, rtol=1e-15, atol=0, err_msg=f"{model.name} {scale} {name}")


# ---- the route's certificate -------------------------------------------------------------------------------------
def test_dual_route_certificate_is_the_pipelines_own():
    data = planted(30, 3, seed=5)
    linear = lm.load_model("linear", input_dim=3)
    dual = lm.max_margin(linear, data, route="dual")
    ipopt = lm.max_margin(linear, data, route="ipopt")
    assert dual.status == "optimal" and dual.solver.name == "dual_active_set" and dual.solver.status == "optimal"
    assert "Lawson-Hanson" in dual.solver.message and "Gram" not in dual.solver.message
    np.testing.assert_allclose(dual.theta, ipopt.theta, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dual.multipliers, ipopt.multipliers, rtol=1e-5, atol=1e-8)
    assert dual.kkt.max <= 1e-12 and dual.licq.holds and dual.second_order.strict
    assert dual.objective == pytest.approx(ipopt.objective, rel=1e-9)
    assert len(dual.diagnostics.starts) == 1 and dual.diagnostics.starts[0].status == "optimal"
    assert dual.diagnostics.starts[0].objective == pytest.approx(dual.objective, rel=1e-12)
    wide = lm.max_margin(lm.load_model("linear", input_dim=12), planted(8, 12, seed=1), route="dual")
    assert wide.success and "Gram matrix of all rows" in wide.solver.message


def test_dual_route_statuses():
    data = planted(60, 3, seed=9, gap=0.02)
    linear = lm.load_model("linear", input_dim=3)
    stopped = lm.max_margin(linear, data, route="dual", max_iter=0, raise_on_failure=False)
    assert stopped.status == "max_iterations" and stopped.solver.status == "max_iterations"
    assert stopped.solver.name == "dual_active_set" and not stopped.success
    timed = lm.max_margin(linear, data, route="dual", time_limit=1e-12, raise_on_failure=False)
    assert timed.solver.status == "max_time" and timed.status in ("max_time", "optimal")
    # inconsistent rows: the Farkas proof at once, forced or not (no IPOPT run): not_separable with the proof
    for route in ("dual", "auto"):
        proved = lm.max_margin(lm.load_model("linear", input_dim=2), XOR, route=route, raise_on_failure=False)
        assert proved.solver.name == "dual_active_set" and proved.solver.status == "infeasible"
        assert "Lawson-Hanson" in proved.solver.message and "inconsistent after" in proved.solver.message
        assert proved.status == "not_separable" and proved.diagnostics.farkas is not None
    # not optimal: the dual route's own certificate either way (the caller runs IPOPT and keeps the better kind);
    # inconsistent rows without a proof give None unless forced (IPOPT and the proof decide), forced: infeasible
    problem = lm.MaxMarginProblem(linear, data)
    opts = lm.SolveOptions(max_iter=1, raise_on_failure=False)
    for force in (False, True):
        kept = D.dual_certificate(problem, opts, 0.0, force=force)
        assert kept is not None and kept.status == "max_iterations" and kept.solver.name == "dual_active_set"
    xor = lm.MaxMarginProblem(lm.load_model("linear", input_dim=2), XOR)
    assert D.dual_certificate(xor, opts, 0.0).status == "not_separable"
    assert D.dual_certificate(problem, lm.SolveOptions(), 0.0).status == "optimal"
    unproved = lm.MaxMarginProblem(lm.load_model("linear", input_dim=2), XOR)
    unproved._infeasibility_status = lambda status, statuses: (status, None)
    assert D.dual_certificate(unproved, opts, 0.0) is None
    forced = D.dual_certificate(unproved, opts, 0.0, force=True)
    assert forced.status == "infeasible" and forced.diagnostics.farkas is None


def test_route_decisions():
    data = planted(40, 3, seed=1)
    linear = lm.load_model("linear", input_dim=3)
    assert lm.max_margin(linear, data).solver.name == "dual_active_set"
    assert lm.max_margin(linear, data, route="ipopt").solver.name == "ipopt"
    assert lm.max_margin(linear, data, finish=False).solver.name == "ipopt"
    assert lm.max_margin(linear, data, finish=False, route="dual").solver.name == "dual_active_set"
    assert lm.max_margin(linear, data, working_set=lm.WorkingSetOptions(enabled=True)).solver.name == "ipopt"
    assert lm.max_margin(linear, data, working_set=lm.WorkingSetOptions(enabled=True),
                         route="dual").solver.name == "dual_active_set"
    assert lm.max_margin(linear, data, norm="l1").solver.name == "highs"             # the LP route (problems.lp)
    assert lm.max_margin(linear, data, norm="l1", route="ipopt").solver.name == "ipopt"
    with pytest.raises(ValueError, match="route"):
        lm.max_margin(linear, data, route="simplex")
    with pytest.raises(ValueError, match=r"^route='dual' needs a model linear in theta and the l2 objective$"):
        lm.max_margin(linear, data, norm="linf", route="dual")
    with pytest.raises(ValueError, match=r"^route='lp' needs a model linear in theta and a polyhedral objective"):
        lm.max_margin(linear, data, route="lp")
    l1 = lm.MaxMarginProblem(linear, data, norm="l1")
    assert l1._dual(lm.SolveOptions(), 0.0, "auto").solver.name == "highs"
    assert l1._dual(lm.SolveOptions(), 0.0, "lp").solver.name == "highs"
    assert l1._dual(lm.SolveOptions(finish=False), 0.0, "auto") is None
    assert l1._dual(lm.SolveOptions(), 0.0, "auto", True) is None
    assert lm.MaxMarginProblem(linear, data, norm=lm.get_norm("lp", p=3.0))._dual(lm.SolveOptions(), 0.0, "auto") \
        is None
    problem = lm.MaxMarginProblem(linear, data)
    assert problem._dual(lm.SolveOptions(), 0.0, "auto") is not None
    assert problem._dual(lm.SolveOptions(), 0.0, "auto", True) is None
    assert problem._dual(lm.SolveOptions(finish=False), 0.0, "auto") is None
    assert problem._dual(lm.SolveOptions(), 0.0, "ipopt") is None
    # a not-optimal dual route under "auto" falls back to IPOPT's certificate
    fallback = lm.max_margin(linear, data, max_iter=1, raise_on_failure=False)
    assert fallback.solver.name == "ipopt"


def test_linear_margins_edges_and_other_jacobians():
    """Data at the rescaling edge (max |A| in [2^7, 2^8): not rescaled), a column spread of exactly 2^8 (no
    variable scaling) and beyond it with a zero column, permuted and summed Jacobians, a model without an output
    (its own Jacobian): linear_margins equals LinearMargins attribute by attribute."""
    from lexmargin.problems.margins import LinearMargins

    rng = np.random.default_rng(1)
    X = rng.standard_normal((10, 3))
    X = X / np.max(np.abs(X), axis=0) * 0.75                      # every column maximum 0.75
    y = np.sign(rng.standard_normal(10))
    permuted = lm.Model("permuted", [lm.Block.array("w", 3, 1)], input_dim=3,
                        output=lambda p, x: p.w[1] * x[0] + p.w[0] * x[1] + p.w[2] * x[2])
    summed = lm.Model("summed", [lm.Block.array("w", 3, 1)], input_dim=3,
                      output=lambda p, x: p.w[0] * (x[0] + x[1]) + p.w[1] * x[2] + p.w[2] * x[2])
    custom = lm.Model("custom", [lm.Block.array("w", 3, 1)], input_dim=3, margin=lambda p, x, y: y * (p.w @ x))
    datasets = [Dataset(X * np.array([1.0, 256.0, 1.0]), y),       # max |A| = 192, spread 2^8 exactly
                Dataset(X * np.array([1.0, 1024.0, 0.0]), y),      # rescaled, spread 2^10, a zero column
                Dataset(X * np.array([1.0, 256.0, 0.25]), y),      # not rescaled, spread 2^10
                Dataset(X, y)]
    for model in (lm.load_model("linear", input_dim=3), permuted, summed, custom):
        for data in datasets:
            fast, slow = D.linear_margins(model, data), LinearMargins(model, data)
            for name in ("A", "c", "scale_exponent", "n_samples", "column_scale"):
                a, b = getattr(fast, name), getattr(slow, name)
                if b is None:
                    assert a is None, (model.name, name)
                else:
                    np.testing.assert_array_equal(a, b, err_msg=f"{model.name} {name}")
    assert D.linear_margins(lm.load_model("linear", input_dim=3), datasets[0]).scale_exponent == 0
    assert D.linear_margins(lm.load_model("linear", input_dim=3), datasets[0]).column_scale is None
    assert D.linear_margins(lm.load_model("linear", input_dim=3), datasets[1]).column_scale is not None
    assert D.linear_margins(lm.load_model("linear", input_dim=3), datasets[2]).column_scale is not None


def test_dual_route_certificate_field_by_field():
    data = planted(30, 3, seed=5)
    cert = lm.max_margin(lm.load_model("linear", input_dim=3), data, route="dual")
    from lexmargin.nlp.finish import NOT_NEEDED

    assert cert.finish.reason == NOT_NEEDED                     # the vertex is exact: judged, nothing to finish
    assert cert.solver.return_status == "optimal" and cert.solver.iterations >= 1
    assert 0.0 <= cert.solver.seconds < 60.0
    assert cert.diagnostics.working_set_rounds == cert.solver.iterations
    start = cert.diagnostics.starts[0]
    assert start.kkt_max == cert.kkt.max and start.iterations == cert.solver.iterations
    wide = lm.max_margin(lm.load_model("linear", input_dim=12), planted(8, 12, seed=1), route="dual")
    assert wide.solver.message == ("dual active set (Lawson-Hanson NNLS of the least-distance problem on the Gram "
                                   f"matrix of all rows): optimal after {wide.solver.iterations} iterations")
    tall = lm.max_margin(lm.load_model("linear", input_dim=3), data, route="dual")
    assert tall.solver.message == ("dual active set (Lawson-Hanson NNLS of the least-distance problem on a working "
                                   f"set of 30 rows): optimal after {tall.solver.iterations} iterations")


def test_a_stalled_dual_solve_is_a_proposal_the_certificate_judges(monkeypatch):
    """"stalled" is the solver's acceptable level (``inaccurate``): its point is finished and certified; a point
    that is not a solution stays ``inaccurate`` (forced or not: the caller runs IPOPT on it); any other
    status of the solver is a failure."""
    data = planted(20, 3, seed=2)
    problem = lm.MaxMarginProblem(lm.load_model("linear", input_dim=3), data)
    # without the finish (which, from theta = 0, exchanges its way to the vertex here: the next test's case)
    opts = lm.SolveOptions(raise_on_failure=False, finish=False)
    outcome = {"status": "stalled"}
    monkeypatch.setattr(D, "least_distance", lambda A, r, **kw: D.LDPResult(
        np.zeros(A.shape[1]), np.zeros(A.shape[0]), np.zeros(0, dtype=int), outcome["status"], 3, 0.0, A.shape[0],
        True))
    for force in (True, False):
        cert = D.dual_certificate(problem, opts, 0.0, force=force)
        assert cert.solver.status == "inaccurate" and cert.status == "inaccurate"
    outcome["status"] = "no such status"
    cert = D.dual_certificate(problem, opts, 0.0, force=True)
    assert cert.solver.status == "failed" and cert.status == "failed"


def test_a_stalled_dual_solve_near_the_optimum_is_finished_to_optimal(monkeypatch):
    """A stalled working-set loop whose point is the optimum up to 1e-7 relative: the finish makes it exact."""
    data = planted(60, 3, seed=4)
    exact = lm.max_margin(lm.load_model("linear", input_dim=3), data, route="dual")
    real = D.least_distance

    def stalled(A, r, **kw):
        result = real(A, r, **kw)
        return replace(result, theta=result.theta * (1.0 + 1e-7), status="stalled")

    monkeypatch.setattr(D, "least_distance", stalled)
    problem = lm.MaxMarginProblem(lm.load_model("linear", input_dim=3), data)
    cert = D.dual_certificate(problem, lm.SolveOptions(raise_on_failure=False), 0.0)
    assert cert is not None and cert.status == "optimal" and cert.solver.status == "inaccurate"
    assert cert.finish.applied
    np.testing.assert_allclose(cert.theta, exact.theta, rtol=1e-12, atol=0)


def test_dual_rows_of_margins_with_an_offset():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 2))
    y = np.sign(rng.standard_normal(6))
    shifted = lm.Model("shifted", [lm.Block("w", {"w": (3,)}, degree=None)], input_dim=2,
                       output=lambda p, x: p.w[0] * x[0] + p.w[1] * x[1] + p.w[2] + 0.25)
    source = D.linear_margins(shifted, Dataset(X, y))
    _, r = D.dual_rows(source, 3)
    np.testing.assert_array_equal(r, 1.0 - source.c)
    assert np.any(source.c != 0.0)


def test_violation_tolerance_for_a_small_point():
    """|theta| < 1: the tolerance is VIOLATION max(|r|, |A| max|theta|), not max(|r|, |A|)."""
    A = np.array([[1.0]])
    theta = np.array([1e-3])
    r = A @ theta + 5e-14
    assert D._violated(A, r, theta, np.ones(1)).tolist() == [0]


def test_least_distance_limits_and_modes_field_by_field():
    A, r = rows(planted(40, 3, seed=1))
    none = D.least_distance(A, r, max_iter=0)
    assert none.passive.size == 0 and none.full_gram is False and 0.0 <= none.seconds < 60.0
    holds = D.least_distance(A, -np.ones(40), max_iter=1)          # every row holds at 0: optimal at once
    assert holds.status == "optimal" and holds.iterations <= 1
    solved = D.least_distance(A, r)
    assert 0.0 <= solved.seconds < 60.0
    data = planted(40, 3, seed=7, shift=2.0)
    Ab = np.hstack([data.y[:, None] * data.X, data.y[:, None]])
    forced = D.least_distance(Ab, np.ones(40), free=(3,), full_gram=True)
    assert forced.full_gram is True and forced.converged
    wide = planted(10, 12, seed=3, shift=2.0)
    Aw = np.hstack([wide.y[:, None] * wide.X, wide.y[:, None]])
    rows_mode = D.least_distance(Aw, np.ones(10), free=(12,), full_gram=False)
    assert rows_mode.full_gram is False and rows_mode.converged


@PROPERTY
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2 ** 32 - 1), st.booleans())
def test_largest_magnitude_is_the_maximum_of_the_absolute_values(rows, columns, seed, zeros):
    """max(max A, -min A) along either axis: np.max(np.abs(A)) exactly (zeros and signed zeros included)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((rows, columns)) * 10.0 ** rng.integers(-300, 300, (rows, columns))
    if zeros:
        A[:, 0] = -0.0
        A[0] = 0.0
    for axis in (0, 1):
        assert D.largest_magnitude(A, axis).tolist() == np.max(np.abs(A), axis=axis).tolist()



def prescale_by_definition(A):
    """``margins.prescale`` written out as its docstring states it, from |A| and one column at a time."""
    from lexmargin.problems.margins import COLUMN_SPREAD, DATA_SPREAD, power_of_two_exponent

    exponent = power_of_two_exponent(float(np.max(np.abs(A), initial=0.0)))
    exponent = exponent if abs(exponent) > DATA_SPREAD else 0
    scaled = A / 2.0 ** exponent
    columns = np.max(np.abs(scaled), axis=0) if A.shape[0] else np.zeros(A.shape[1])
    # at most 2^1023: a column of subnormal entries beside a column of size 1 would need 2^1029
    scale = np.array([2.0 ** -max(power_of_two_exponent(float(v)), -1023) for v in columns])
    spread = scale.size > 0 and scale.max() > COLUMN_SPREAD * scale.min()
    return scaled, exponent, scale if spread else None


@PROPERTY
@given(st.integers(0, 6), st.integers(0, 6), st.integers(-1070, 1000), st.integers(0, 12), st.integers(0, 2 ** 32 - 1),
       st.booleans())
def test_prescale_divides_by_the_power_of_two_of_the_largest_entry(rows, columns, size, spread, seed, zero_column):
    """A / 2^e with e the exponent of max |A| (0 inside [2^-8, 2^8]), the columns' powers of two when they spread
    by more than 2^8: the definition's numbers exactly, at every scale of the data (subnormal to 1e308), with zero
    columns and empty matrices; in place or not, the input kept unless in place."""
    from lexmargin.problems.margins import prescale

    rng = np.random.default_rng(seed)
    A = rng.standard_normal((rows, columns)) * 2.0 ** (size + rng.integers(-spread, spread + 1, columns))
    if zero_column and columns:
        A[:, rng.integers(columns)] = 0.0
    scaled, exponent, scale = prescale_by_definition(A)
    original = A.copy()
    got, got_exponent, got_scale = prescale(A)
    assert got_exponent == exponent and got.tolist() == scaled.tolist() and A.tolist() == original.tolist()
    assert (got_scale is None) == (scale is None) and (scale is None or got_scale.tolist() == scale.tolist())
    assert exponent == 0 or 0.5 <= np.max(np.abs(got)) < 1.0
    inplace, _, _ = prescale(A, in_place=True)
    assert inplace.tolist() == scaled.tolist() and (exponent == 0 or inplace is A)
    assert (got is original) is False and (exponent != 0 or prescale(original)[0] is original)


@pytest.mark.parametrize("tiny", [1e-300, 1e-310, 5e-324])
def test_prescale_keeps_the_column_scales_of_subnormal_columns_finite(tiny):
    """Features at 1e-310 beside a column of size 1 (the bias column of y (X, 1)): no global division (max |A| = 1),
    and the small column's scale 2^-e_j is capped at 2^1023 instead of overflowing (IPOPT's bounds would be NaN)."""
    from lexmargin.problems.margins import prescale

    A = np.array([[tiny, 1.0], [-2 * tiny, -1.0]])
    scaled, exponent, scale = prescale(A)
    assert exponent == 0 and scaled is A and np.all(np.isfinite(scale))
    assert scale.tolist() == prescale_by_definition(A)[2].tolist()
    assert scale[1] == 0.5 and scale[0] == (2.0 ** 1023 if tiny < 1e-300 else 2.0 ** -np.frexp(2 * tiny)[1])


@PROPERTY
@given(st.integers(1, 10 ** 6), st.integers(1, 2000))
def test_working_set_sizes_grow_with_the_rows_within_their_bounds(N, columns):
    """The tall route's first working set and its rounds' batches: within [min(N, 2 (d + 1)), N] and
    [d + 1, max(ROUND_ROWS, d + 1)], nondecreasing in N, and the fixed sizes of the earlier rule (200 seed rows, 300
    per round, or the factors of d + 1 above them) from N = 2000 and 6000 on."""
    seed, batch = D._seed_size(N, columns), D._round_size(N, columns)
    assert min(N, D.SEED_FACTOR * columns) <= seed <= N and seed <= max(D.SEED_ROWS, D.SEED_FACTOR * columns)
    assert columns <= batch <= max(D.ROUND_ROWS, columns)
    assert D._seed_size(N + 1, columns) >= seed and D._round_size(N + 1, columns) >= batch
    if N >= D.SEED_ROWS * D.SEED_SHARE:
        assert seed == min(N, max(D.SEED_ROWS, D.SEED_FACTOR * columns))
    if N >= D.ROUND_ROWS * D.ROUND_SHARE:
        assert batch == max(D.ROUND_ROWS, columns)


# ---- separable rows whose optimum rho cannot resolve: solved again with r rescaled -------------------------------
def tiny_margin(n, delta, seed=0, d=1):
    """1-D samples at 0.5..3 from the origin on their label's side, plus one of each label at delta (the
    max-margin theta is 1 / delta along the axis), rotated into d dimensions by a random orthogonal Q."""
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    x = y * rng.uniform(0.5, 3.0, n)
    x[:2] = y[:2] * delta
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0] if d > 1 else np.ones((1, 1))
    X = np.zeros((n, d))
    X[:, 0] = x
    return Dataset(X @ Q.T, y), Q[:, 0] / delta


@pytest.mark.parametrize("full", [None, True, False])
@pytest.mark.parametrize("delta", [1e-9, 1e-12, 1e-14])
def test_separable_rows_with_a_tiny_margin_are_solved(delta, full):
    """rho = 1 / (1 + ||theta*||^2) is below rounding at ||theta*|| = 1e9..1e14: the rows looked inconsistent."""
    data, theta = tiny_margin(12, delta, d=3)
    A, r = rows(data)
    result = D.least_distance(A, r, full_gram=full)
    np.testing.assert_allclose(result.theta, theta, rtol=1e-9, atol=1e-9 * np.max(np.abs(theta)))
    assert_kkt(A, r, result)
    assert result.full_gram is (full is True)                  # the form asked for, in every solve (tall data)
    wide, _ = tiny_margin(4, delta, d=3)
    assert D.least_distance(*rows(wide), full_gram=False).full_gram is False
    assert sorted(result.passive.tolist()) in ([0], [1], [0, 1])
    cert = lm.max_margin(lm.load_model("linear", input_dim=3), data)
    assert cert.status == "optimal" and cert.solver.name == "dual_active_set"
    np.testing.assert_allclose(cert.theta, theta, rtol=1e-9, atol=1e-9 * np.max(np.abs(theta)))


@PROPERTY
@given(seed=st.integers(0, 10_000), n=st.integers(3, 80), d=st.integers(1, 6), exponent=st.integers(-14, -8))
def test_property_tiny_margins_are_solved_or_left_inconsistent_never_wrong(seed, n, d, exponent):
    data, theta = tiny_margin(n, 10.0 ** exponent, seed=seed, d=d)
    A, r = rows(data)
    result = D.least_distance(A, r)
    assert result.status in ("optimal", "inconsistent")
    if result.status == "optimal":
        assert_kkt(A, r, result)
        np.testing.assert_allclose(result.theta, theta, rtol=1e-7, atol=1e-7 * np.max(np.abs(theta)))
    if exponent >= -12:
        assert result.status == "optimal"


def test_inconsistent_rows_are_not_rescaled(monkeypatch):
    """Rows that no direction separates are solved once (no rescaled solves), at every shape."""
    calls = []
    real = D._ldp
    monkeypatch.setattr(D, "_ldp", lambda A, r, **kw: calls.append(r.copy()) or real(A, r, **kw))
    for full in (True, False):
        calls.clear()
        A, r = rows(XOR)
        assert D.least_distance(A, r, full_gram=full).status == "inconsistent"
        assert len(calls) == 1 and np.array_equal(calls[0], r)


def test_rescaled_solves_scale_r_by_powers_of_two_and_map_back(monkeypatch):
    monkeypatch.setattr(D, "ROW_BOUND", np.inf)     # the rescaled solves alone (the row bound's scale finds it first)
    data, theta = tiny_margin(6, 1e-12)
    A, r = rows(data)
    calls = []
    real = D._ldp
    monkeypatch.setattr(D, "_ldp", lambda A, r, **kw: calls.append(r.copy()) or real(A, r, **kw))
    result = D.least_distance(A, r, full_gram=False)
    assert len(calls) == 3 and np.array_equal(calls[0], r)
    scales = [float(c[0]) for c in calls[1:]]
    assert all(np.log2(s) == np.round(np.log2(s)) and s < 2.0 ** -30 for s in scales)   # exact
    assert np.all(calls[1] == scales[0]) and np.all(calls[2] == scales[1])
    assert 0.5 <= np.max(np.abs(result.theta)) * scales[1] < 1.0                           # unit size
    assert result.theta[0] == pytest.approx(theta[0], rel=1e-12)
    assert result.multipliers @ (A @ result.theta) == pytest.approx(2.0 * result.theta @ result.theta, rel=1e-9)
    assert result.iterations >= 3


def test_tiny_margin_with_offsets():
    """r = 1 - c not all 1: the rescaled solves scale r itself (not its inverse)."""
    data, _ = tiny_margin(10, 1e-12, d=2)
    A, _ = rows(data)
    r = np.random.default_rng(3).uniform(0.5, 2.0, 10)
    for full in (True, False):
        result = D.least_distance(A, r, full_gram=full)
        assert_kkt(A, r, result)


def fake_ldp(monkeypatch, outcomes):
    """D._ldp answering from ``outcomes`` (status, theta, separating size) in turn, recording each call's r (and its
    form in ``forms``)."""
    calls = []

    def ldp(A, r, **kw):
        status, theta, size = outcomes[len(calls)]
        calls.append(r.copy())
        forms.append(kw["full_gram"])
        budgets.append(kw["max_iter"])
        n = A.shape[0]
        lam = np.full(n, float(len(calls)))
        return (np.asarray(theta, dtype=float), lam, np.arange(n), status, 10 * len(calls), n + len(calls),
                False, None, size)

    forms, budgets = [], []
    monkeypatch.setattr(D, "_ldp", ldp)
    return calls, forms, budgets


def test_rescaled_picks_its_scales_from_the_separating_point_and_the_solution(monkeypatch):
    A, r = np.array([[1.0], [2.0]]), np.array([1.0, 3.0])
    calls, forms, budgets = fake_ldp(monkeypatch, [("inconsistent", [0.0], 0.75 * 2.0 ** 40),
                                                   ("optimal", [8.0], 0.0), ("optimal", [0.5], 0.0)])
    theta, lam, passive, status, its, formed, full, gram = D._rescaled(A, r, max_iter=99, deadline=1e30,
                                                                       full_gram=True, rownorm=np.ones(2))
    assert forms == [True, True, True]              # every solve in the form asked for
    assert budgets == [99, 89, 69]                  # the iterations left (each fake solve takes 10, 20, 30)
    first, second = 2.0 ** -40, 2.0 ** -44          # 2^-e of the separating size, then of max |theta| = 8
    assert np.array_equal(calls[0], r) and np.array_equal(calls[1], first * r) and np.array_equal(calls[2], second * r)
    assert theta.tolist() == [0.5 / second] and lam.tolist() == [3.0 / second, 3.0 / second]
    assert status == "optimal" and its == 60 and formed == 5 and full is False and gram is None
    assert passive.tolist() == [0, 1]


def test_rescaled_keeps_the_first_scale_when_the_refined_solve_fails(monkeypatch):
    A, r = np.array([[1.0], [2.0]]), np.array([1.0, 3.0])
    fake_ldp(monkeypatch, [("inconsistent", [0.0], 0.5), ("optimal", [8.0], 0.0), ("max_iterations", [1.0], 0.0)])
    theta, lam, _, status, its, formed, _, _ = D._rescaled(A, r, max_iter=99, deadline=1e30, full_gram=None,
                                                           rownorm=np.ones(2))
    assert theta.tolist() == [8.0] and lam.tolist() == [2.0, 2.0]       # a separating size 0.5: scale 2^0 = 1
    assert status == "optimal" and its == 60 and formed == 4


def test_rescaled_reports_the_first_solve_when_the_rescaled_one_fails(monkeypatch):
    A, r = np.array([[1.0], [2.0]]), np.array([1.0, 3.0])
    fake_ldp(monkeypatch, [("inconsistent", [7.0], 4.0), ("max_iterations", [8.0], 0.0)])
    theta, lam, passive, status, its, formed, full, gram = D._rescaled(A, r, max_iter=99, deadline=1e30,
                                                                       full_gram=None, rownorm=np.ones(2))
    assert theta.tolist() == [7.0] and lam.tolist() == [1.0, 1.0] and status == "inconsistent"
    assert its == 30 and formed == 3 and full is False and gram is None and passive.tolist() == [0, 1]
    calls, _, _ = fake_ldp(monkeypatch, [("inconsistent", [7.0], 0.0)])  # nothing separates: one solve
    out = D._rescaled(A, r, max_iter=99, deadline=1e30, full_gram=None, rownorm=np.ones(2))
    assert len(calls) == 1 and out[3] == "inconsistent" and out[4] == 10 and len(out) == 8


def test_rescaled_solves_share_the_iteration_budget(monkeypatch):
    A, r = np.array([[1.0], [2.0]]), np.array([1.0, 3.0])
    outcomes = [("inconsistent", [0.0], 4.0), ("optimal", [8.0], 0.0), ("optimal", [0.5], 0.0)]
    for budget, solves in ((10, 1), (11, 2), (30, 2), (31, 3)):         # the fake solves take 10, 20, 30
        calls, _, budgets = fake_ldp(monkeypatch, outcomes)
        out = D._rescaled(A, r, max_iter=budget, deadline=1e30, full_gram=None, rownorm=np.ones(2))
        assert len(calls) == solves and budgets == [budget, budget - 10, budget - 30][:solves]
        assert out[3] == ("inconsistent" if solves == 1 else "optimal")
        assert out[0].tolist() == [[0.0], [8.0 * 8.0], [0.5 * 8.0 * 16.0]][solves - 1]     # scales 2^-3, 2^-7


def test_separating_size():
    rows_ = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    r = np.array([1.0, 1.0, 1.0])
    g = np.array([2.0, 1.0])             # margins 2, 2, 3: theta = g / 2, max |theta| = 1
    assert D._separating_size(rows_, r, g) == 1.0
    assert D._separating_size(rows_, np.array([4.0, 1.0, 1.0]), g) == 4.0      # the row r / margin = 2 decides
    assert D._separating_size(rows_, r, np.array([2.0, -1.0])) == 0.0          # a margin < 0: not separating
    assert D._separating_size(rows_, r, np.array([0.0, 1.0])) == 0.0           # a margin = 0 with r > 0
    # rows with r <= 0 need a margin >= 0 only
    assert D._separating_size(rows_, np.array([0.0, 1.0, 1.0]), np.array([0.0, 1.0])) == 1.0
    assert D._separating_size(rows_, np.array([-1.0, 1.0, 1.0]), np.array([-1.0, 1.0])) == 0.0
    assert D._separating_size(rows_, np.array([0.0, 1.0, 1.0]), np.array([-1.0, 2.0])) == 0.0   # only r <= 0 fails
    assert D._separating_size(rows_, np.zeros(3), g) == 0.0                   # nothing to separate from


def test_rescaled_keeps_a_stalled_rescaled_solve_and_its_refinement_of_the_same_status(monkeypatch):
    """A stalled rescaled solve is a proposal (the finish and the certificate judge it): it is kept at its scale;
    the refined solve replaces it when optimal or stalled too, and never replaces an optimal one unless optimal."""
    A, r = np.array([[1.0], [2.0]]), np.array([1.0, 3.0])
    scale = 2.0 ** -3                                   # 4.0 = 0.5 * 2^3: the separating size's power of two
    for outcomes, theta, lam, status in (
            ([("inconsistent", [7.0], 4.0), ("stalled", [8.0], 0.0), ("max_iterations", [1.0], 0.0)],
             8.0 / scale, 2.0 / scale, "stalled"),
            ([("inconsistent", [7.0], 4.0), ("stalled", [8.0], 0.0), ("stalled", [0.5], 0.0)],
             0.5 / (scale * 2.0 ** -4), 3.0 / (scale * 2.0 ** -4), "stalled"),
            ([("inconsistent", [7.0], 4.0), ("stalled", [8.0], 0.0), ("optimal", [0.5], 0.0)],
             0.5 / (scale * 2.0 ** -4), 3.0 / (scale * 2.0 ** -4), "optimal"),
            ([("inconsistent", [7.0], 4.0), ("optimal", [8.0], 0.0), ("stalled", [0.5], 0.0)],
             8.0 / scale, 2.0 / scale, "optimal")):
        fake_ldp(monkeypatch, outcomes)
        out = D._rescaled(A, r, max_iter=99, deadline=1e30, full_gram=None, rownorm=np.ones(2))
        assert out[0].tolist() == [theta] and out[1].tolist() == [lam, lam] and out[3] == status and out[4] == 60


def _rho_sequence_nnls(rhos):
    """A fake scipy nnls giving the working-set loop the values rho = 1 - r.u of ``rhos`` in turn (u on the first
    row of the working set only, r = 1: theta stays tiny, every other row violated); it records its calls."""
    calls = []

    def nnls(E, target, maxiter):
        rho = rhos[min(len(calls), len(rhos) - 1)]
        calls.append(E.shape[1])
        u = np.zeros(E.shape[1])
        u[0] = (1.0 - rho) / E[-1, 0]
        return u, np.sqrt(rho)
    return nnls, calls


def test_working_set_loop_ends_stalled_after_rounds_without_a_new_smallest_rho(monkeypatch):
    """rho decreases strictly in exact arithmetic; STALL_ROUNDS rounds in a row without a new smallest rho (smaller
    by more than STALL_DECREASE relative) end the loop as "stalled" (column-scaled data left rho fluctuating at
    1e-4 relative for hundreds of rounds while every round added rows "violated" at rounding level)."""
    monkeypatch.setattr(D, "SMALL_PROBLEM", 50)
    monkeypatch.setattr(D, "SEED_ROWS", 6)
    monkeypatch.setattr(D, "SEED_FACTOR", 1)
    A, r = rows(planted(300, 3, seed=5, gap=0.05))
    first = 1.0 - 1e-3
    assert D.STALL_ROUNDS == 5 and D.STALL_DECREASE == 1e-12
    cases = (([first, first * (1 - 0.5e-12)], 1 + 5),                       # no new smallest rho after the first
             ([first, first * (1 - 2e-12)], 2 + 5),                          # one new smallest rho, then none
             ([first * (1 - 2e-12) ** k for k in range(10)] + [first * (1 - 2e-12) ** 9], 10 + 5),
             ([first, first * 1.1, first * 0.9], 3 + 5))                     # a larger rho is no progress either
    for rhos, expected in cases:
        fake, calls = _rho_sequence_nnls(rhos)
        monkeypatch.setattr(D, "nnls", fake)
        result = D.least_distance(A, r, full_gram=False)
        assert result.status == "stalled" and len(calls) == expected and result.iterations == expected
    fake, calls = _rho_sequence_nnls([first * (1 - 2e-12) ** k for k in range(40)])
    monkeypatch.setattr(D, "nnls", fake)
    result = D.least_distance(A, r, full_gram=False, max_iter=30)
    assert result.status == "max_iterations" and len(calls) == 30   # rho decreasing every round: no stall


def test_row_bound_scale_is_one_unless_one_row_bounds_the_optimum_above_row_bound():
    """s = 2^-e with L / 2^e in [1/2, 1) for L = max_n r_n / max_j |A_nj| above ROW_BOUND = 2^20, else exactly 1;
    rows with r_n <= 0 or no entries bound nothing."""
    assert D.ROW_BOUND == 2.0 ** 20
    ones = np.ones(2)
    assert D._row_bound_scale(ones, np.array([1.0, 2.0 ** -20])) == 1.0                   # L = 2^20: not above
    assert D._row_bound_scale(ones, np.array([1.0, 2.0 ** -20 * (1 - 2.0 ** -30)])) == 2.0 ** -21
    assert D._row_bound_scale(ones, np.array([1.0, 1.0 / (3.0 * 2.0 ** 20)])) == 2.0 ** -22   # 0.75 2^22
    assert D._row_bound_scale(np.array([4.0, 1.0]), np.array([2.0 ** -30, 1.0])) == 2.0 ** -33   # r_n counts
    assert D._row_bound_scale(np.array([-1.0, 1.0]), np.array([1e-30, 1.0])) == 1.0       # r_n <= 0: no bound
    assert D._row_bound_scale(np.array([0.0, 1.0]), np.array([1e-30, 1.0])) == 1.0
    assert D._row_bound_scale(np.array([5.0, 1.0]), np.array([0.0, 1.0])) == 1.0          # a zero row: none
    with np.errstate(divide="raise"):                   # not even r_n / 0 beside a row that does bound
        assert D._row_bound_scale(np.array([5.0, 1.0]), np.array([0.0, 2.0 ** -30])) == 2.0 ** -31
    assert D._row_bound_scale(np.array([-1.0]), np.array([0.0])) == 1.0
    assert D._row_bound_scale(np.zeros(0), np.zeros(0)) == 1.0


def test_least_distance_scales_r_by_the_row_bound_first_and_maps_back_exactly(monkeypatch):
    """A sample at 1e-12: one solve of (A, s r) with s the row bound's power of two (no rescaled retries), theta
    and the multipliers divided by s; r of ordinary rows is passed as it is."""
    data, theta = tiny_margin(12, 1e-12, d=3)
    A, r = rows(data)
    calls = []
    real = D._ldp
    monkeypatch.setattr(D, "_ldp", lambda A, r, **kw: calls.append(r.copy()) or real(A, r, **kw))
    for full in (True, False):
        calls.clear()
        result = D.least_distance(A, r, full_gram=full)
        s = D._row_bound_scale(r, np.max(np.abs(A), axis=1))
        assert s < 2.0 ** -30 and len(calls) == 1 and np.array_equal(calls[0], s * r)
        assert_kkt(A, r, result)
        np.testing.assert_allclose(result.theta, theta, rtol=0, atol=1e-12 * np.max(np.abs(theta)))
        scaled = real(A, s * r, warm=None, max_iter=10_000, deadline=np.inf, full_gram=full,
                      rownorm=np.max(np.abs(A), axis=1))
        assert np.array_equal(result.theta, scaled[0] / s) and np.array_equal(result.multipliers, scaled[1] / s)
    calls.clear()
    ordinary, _ = tiny_margin(12, 1e-3, d=3)
    A, r = rows(ordinary)
    D.least_distance(A, r)
    assert np.array_equal(calls[0], r)


def _judged(status, largest):
    from types import SimpleNamespace
    return SimpleNamespace(status=lm.Status(status), kkt=SimpleNamespace(max=largest))


@pytest.mark.parametrize("general, fallback, chosen", [
    # decisive kinds: optimal, then a proof of non-separability, whatever the residuals
    (("inaccurate", 1e-9), ("optimal", 1e-8), "fallback"), (("optimal", 1e-8), ("inaccurate", 1e-9), "general"),
    (("not_separable", 1.0), ("inaccurate", 1e-9), "general"), (("inaccurate", 1e-9), ("not_separable", 1.0), "fallback"),
    (("max_time", 1e-9), ("not_separable", 1.0), "fallback"), (("optimal", 1e-9), ("not_separable", 1.0), "general"),
    (("not_separable", 1.0), ("optimal", 1e-9), "fallback"), (("optimal", 1e-9), ("optimal", 1e-12), "general"),
    (("not_separable", 1.0), ("not_separable", 0.5), "general"),
    # the others: the smaller largest residual (NaN: infinite; ties: the general route's)
    (("infeasible", 1.0), ("inaccurate", 1e-6), "fallback"), (("max_time", 1e-3), ("inaccurate", 1e5), "general"),
    (("inaccurate", 1e-6), ("max_iterations", 1e-7), "fallback"), (("failed", 2e-6), ("inaccurate", 2e-6), "general"),
    (("failed", float("nan")), ("inaccurate", 1e3), "fallback"), (("failed", 1e3), ("inaccurate", float("nan")), "general"),
    (("region_boundary", 1e-2), ("inaccurate", 1e-3), "fallback"),
])
def test_preferred_keeps_the_general_certificate_unless_the_fallback_is_better(general, fallback, chosen):
    from lexmargin.problems.maxmargin import preferred
    g, f = _judged(*general), _judged(*fallback)
    assert preferred(g, f) is (f if chosen == "fallback" else g)
    assert preferred(g, None) is g


def test_a_dual_point_within_rounding_of_the_rows_is_kept_over_ipopts_infeasible():
    """Multi-class data (3 classes, 15 samples in R^4, labels of a random linear model) with sample 0 at ~1e-9 of the
    others' size: theta* ~ 1e9 and rows whose terms (~3e9) cancel to ~1, so the nearest doubles to the optimum may
    violate some rows by ~1e-6 at level 1, and IPOPT stops ``infeasible`` with a residual of 1.  The dual route's
    point is kept (``maxmargin.preferred``) and is the exact optimum (rational arithmetic on its support, to 1e-12).
    Its status depends on the CPU's rounding, never on luck in what it claims: ``optimal`` where the computed margins
    meet level 1 (an AMD EPYC machine, after the finish's exchanges), else ``inaccurate`` with primal feasibility as
    its only residual above tolerance, at the rows' rounding level (an Intel one, before them); a failure then raises."""
    rng = np.random.default_rng(8)
    W, X = rng.standard_normal((3, 4)), rng.standard_normal((15, 4))
    y = np.argmax(X @ W.T, axis=1)
    X[0] *= 10.0 ** -9.019083170183318
    model, data = lm.load_model("multiclass_linear", input_dim=4, n_classes=3), lm.Dataset(X, y, n_classes=3)
    ipopt = lm.max_margin(model, data, route="ipopt", raise_on_failure=False)
    assert ipopt.status == "infeasible" and ipopt.kkt.max >= 0.1
    cert = lm.max_margin(model, data, raise_on_failure=False)
    assert cert.solver.name == "dual_active_set" and cert.status in ("optimal", "inaccurate")
    assert [s.status for s in cert.diagnostics.starts] == [cert.status]
    A, pairs = kesler(X, y, 3)
    support = np.flatnonzero(np.asarray(cert.multipliers) > 0)
    theta, optimal = exact_support_optimum(A, support)
    assert optimal and np.max(np.abs(cert.theta - theta)) <= 1e-12 * np.max(np.abs(theta))
    if cert.status == "inaccurate":
        rounding = A.shape[1] * EPS * np.max(np.abs(A) @ np.abs(cert.theta))
        assert cert.kkt.primal_feasibility == cert.kkt.max <= rounding
        assert max(cert.kkt.stationarity, cert.kkt.complementarity, cert.kkt.dual_feasibility) <= 1e-8
        with pytest.raises(lm.SolverError, match="inaccurate"):
            lm.max_margin(model, data)
