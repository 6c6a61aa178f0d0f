"""lexmargin.nlp.nnls: nonnegative least squares defined at every shape, with its answers checked.

scipy 1.17's nnls aborts the interpreter on a matrix without columns and returns uninitialized memory for one without
rows; lexmargin's calls go through the wrapper, so an empty support, working set or parameter vector is an ordinary
case.  scipy's nnls can also stop short of the minimizer and report a residual that is not its point's (scipy issue
25389); the wrapper recomputes the residual and continues Lawson-Hanson from scipy's point until the NNLS optimality
conditions hold to rounding.  The conditions are written here from their definition, not taken from the module."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls as scipy_nnls

from lexmargin.nlp.nnls import nnls
from lexmargin.numeric.compare import nnls_multipliers

DATA = Path(__file__).resolve().parents[1] / "data"


def kkt_gap(A, b, x):
    """The largest violation of the NNLS optimality conditions, w = A^T (b - A x) <= 0 where x = 0 and = 0 where
    x > 0, in units of w's rounding level 10 max(m, n) eps ||A_j|| (||b|| + sum_k ||A_k|| x_k) (<= 1: optimal)."""
    w = A.T @ (b - A @ x)
    norms = np.linalg.norm(A, axis=0)
    tol = 10 * max(A.shape) * np.finfo(float).eps * norms * (np.linalg.norm(b) + norms @ x)
    violation = np.where(x > 0, np.abs(w), np.maximum(w, 0.0))     # 0 for a zero column (tol 0 there too)
    return float(np.max(violation / np.maximum(tol, np.finfo(float).tiny)))


def test_a_suboptimal_scipy_answer_is_continued_to_the_minimizer():
    """16 Clarke columns of a ReLU net (unit-normalized; the stationarity report's hunt of 2026-12-02): scipy 1.17 stops
    at a point with residual 3.4094 and reports 3.4002.  The wrapper's answer meets the optimality conditions, its
    residual is its point's, and it is the minimum (3.40324, as scipy finds on the same columns one ulp apart)."""
    data = np.load(DATA / "nnls_scipy_suboptimal.npz")
    A, b = data["A"], data["b"]
    x, residual = nnls(A, b, maxiter=800)
    assert np.all(x >= 0) and kkt_gap(A, b, x) <= 1.0
    assert residual == float(np.linalg.norm(A @ x - b)) and residual == pytest.approx(3.403240120589104, rel=1e-12)
    ref, _ = scipy_nnls(A, b)
    assert residual <= float(np.linalg.norm(A @ ref - b))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(1, 8), st.integers(1, 10), st.sampled_from(["gaussian", "pairs", "scaled"]))
def test_property_the_answer_meets_the_optimality_conditions(seed, m, n, kind):
    """Random problems, with near-duplicate column pairs (Clarke columns of one sample differ in a few entries) and
    columns in units 1e-4..1e4: x >= 0 meets the optimality conditions to rounding, the residual is its point's, and
    it is never above scipy's point's."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    if kind == "pairs" and n >= 2:
        A[:, 1::2] = A[:, 0:n - 1:2] + 1e-3 * rng.standard_normal((m, n // 2)) * (rng.random((m, n // 2)) < 0.3)
    if kind == "scaled":
        A *= 10.0 ** rng.uniform(-4, 4, n)
    b = rng.standard_normal(m)
    x, residual = nnls(A, b, maxiter=50 * max(n, 10))
    assert np.all(x >= 0) and kkt_gap(A, b, x) <= 1.0
    assert residual == float(np.linalg.norm(A @ x - b))
    ref, _ = scipy_nnls(A, b, maxiter=50 * max(n, 10))
    assert residual <= float(np.linalg.norm(A @ ref - b)) * (1 + 1e-12) + 1e-15


def test_no_columns_leave_the_whole_right_hand_side():
    x, residual = nnls(np.zeros((3, 0)), np.array([1.0, 2.0, 2.0]))
    assert x.shape == (0,) and residual == 3.0


def test_no_rows_give_zero_at_no_residual():
    x, residual = nnls(np.zeros((0, 3)), np.zeros(0))
    assert x.tolist() == [0.0, 0.0, 0.0] and residual == 0.0


def test_every_other_shape_is_scipys():
    """scipy's minimizer where it is one (bit for bit), with the residual recomputed from it."""
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((6, 4)), rng.standard_normal(6)
    x, residual = nnls(A, b)
    ref, ref_residual = scipy_nnls(A, b)
    assert x.tolist() == ref.tolist() and residual == float(np.linalg.norm(A @ x - b)) and np.all(x >= 0)
    assert residual == pytest.approx(ref_residual, rel=1e-14)
    with pytest.raises(RuntimeError):          # its iteration limit, which the dual route catches
        nnls(rng.standard_normal((30, 20)), rng.standard_normal(30), maxiter=1)
    with pytest.raises(ValueError, match="nnls needs A of shape"):
        nnls(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="nnls needs A of shape"):
        nnls(np.zeros(3), np.zeros(3))
    x, residual = nnls(np.array([[2.0]]), np.array([4.0]))          # one column
    assert x.tolist() == [2.0] and residual == 0.0


def test_a_negative_near_support_width_is_an_error():
    """nnls_multipliers with a negative rtol (an empty near-support set) aborted the interpreter; rtol is checked."""
    theta, margins, J = np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.eye(2)
    with pytest.raises(ValueError, match="rtol"):
        nnls_multipliers(theta, margins, J, rtol=-0.5)
    with pytest.raises(ValueError, match="no parameters"):
        nnls_multipliers(np.zeros(0), margins, np.zeros((2, 0)))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(1, 7), st.integers(1, 9), st.sampled_from(["gaussian", "pairs", "tall"]))
def test_property_the_continuation_reaches_the_minimizer_from_any_feasible_start(seed, m, n, kind):
    """Lawson-Hanson's continuation (``nnls._lawson_hanson``) from a feasible x >= 0 with a random support (steps back
    to x >= 0, dropped and entering columns): it ends where the optimality conditions hold to rounding, at the
    minimum (scipy's on the same problem, and a brute-force least squares over every support for small n), never
    above the start's residual."""
    from itertools import combinations

    from lexmargin.nlp.nnls import _lawson_hanson

    rng = np.random.default_rng(seed)
    rows = 3 * m if kind == "tall" else m
    A = rng.standard_normal((rows, n))
    if kind == "pairs" and n >= 2:
        A[:, 1::2] = A[:, 0:n - 1:2] + 1e-2 * rng.standard_normal((rows, n // 2))
    b = rng.standard_normal(rows)
    start = np.where(rng.random(n) < 0.5, rng.random(n) * 3.0, 0.0)
    x = _lawson_hanson(A, b, start.copy(), 50 * max(n, 10))
    assert np.all(x >= 0) and kkt_gap(A, b, x) <= 1.0
    residual = float(np.linalg.norm(A @ x - b))
    assert residual <= float(np.linalg.norm(A @ start - b)) + 1e-12
    best = float(np.linalg.norm(b))
    for k in range(1, n + 1):
        for support in combinations(range(n), k):
            z = np.linalg.lstsq(A[:, support], b, rcond=None)[0]
            if np.all(z >= 0):
                best = min(best, float(np.linalg.norm(A[:, support] @ z - b)))
    assert residual <= best * (1 + 1e-9) + 1e-12
