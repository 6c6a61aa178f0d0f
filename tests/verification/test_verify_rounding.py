"""Rows whose computed value's rounding matters at the tolerance (lexmargin.nlp.certify.resolved): re-evaluated
exactly where the NLP can (the margins of models linear in theta: every product exact, one exactly rounded sum), else
their rounding bound counted in primal feasibility.  Found by a hunt on nearly inseparable data (theta ~ 1e9): a
linf max-margin point read feasible in floating point (primal feasibility 0) while, in exact arithmetic, the double
point violated a margin row by 1.1e-7, and it was certified ``optimal``."""

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from verify_helpers import PROPERTY, QP

import lexmargin as lm
from lexmargin.nlp.certify import primal_residual, resolved, value_rounding
from lexmargin.nlp.nlp import exact_affine_values, extend, two_product
from lexmargin.nlp.options import Tolerances
from lexmargin.problems import maxmargin as M


def exact(J, z, offsets):
    return [float(sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(row, z)) +
                  sum(Fraction(float(o)) for o in off)) for row, off in zip(J, offsets)]


@PROPERTY
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 6), n=st.integers(1, 30), spread=st.integers(0, 60))
def test_exact_affine_values_are_the_exactly_rounded_values(seed, rows, n, spread):
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((rows, n)) * 10.0 ** rng.uniform(-spread / 2, spread / 2, size=(rows, n))
    z = rng.standard_normal(n) * 10.0 ** rng.uniform(-spread / 2, spread / 2, size=n)
    offsets = rng.standard_normal((rows, 2))
    values, done = exact_affine_values(J, z, offsets)
    assert done.all() and values.tolist() == exact(J, z, offsets)


def test_two_product_is_exact_and_says_where_it_overflows():
    a, b = np.array([0.1, 1e200, 3.0]), np.array([0.3, 1e200, 1.0 / 3.0])
    p, e = two_product(a, b)
    assert Fraction(float(p[0])) + Fraction(float(e[0])) == Fraction(0.1) * Fraction(0.3)
    assert not np.isfinite(p[1]) and Fraction(float(p[2])) + Fraction(float(e[2])) == 3 * Fraction(1.0 / 3.0)
    values, done = exact_affine_values(np.array([[1e200, 1.0], [0.0, 2.0]]), np.array([1e200, 1.5]),
                                       np.zeros((2, 1)))
    assert done.tolist() == [False, True] and values[1] == 3.0 and np.isnan(values[0])
    values, done = exact_affine_values(np.array([[1.0, 1.0]]), np.array([1.0, 2.0]), np.array([[np.inf]]))
    assert done.tolist() == [False] and np.isnan(values[0])      # a row that is not finite is not done, and nan


def margins_exact(X, y, theta):
    t = [Fraction(float(v)) for v in theta]
    return [float(Fraction(float(yy)) * sum(Fraction(float(a)) * b for a, b in zip(x, t))) for x, yy in zip(X, y)]


@pytest.mark.parametrize("norm", ["l2", "l1", "linf"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_optimal_point_is_feasible_in_exact_arithmetic_on_nearly_inseparable_data(norm, seed):
    """theta ~ 1e8..1e9: whatever the status, an ``optimal`` point's double theta meets every margin to 1e-8 in
    rational arithmetic, and a point that does not is never ``optimal``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((10, 5))
    w = rng.standard_normal(5)
    y = np.where(X @ w >= 0, 1.0, -1.0)
    X[-1] = X[np.flatnonzero(y != y[-1])[0]] + 1e-9 * rng.standard_normal(5)   # off the other sample's ray
    cert = lm.max_margin(lm.load_model("linear", input_dim=5), (X, y), norm=norm, raise_on_failure=False)
    if cert.status == "optimal":
        assert min(margins_exact(X, y, cert.theta)) >= 1 - 1e-8


def linear_problem(X, y, norm="l2"):
    problem = lm.MaxMarginProblem(lm.load_model("linear", input_dim=X.shape[1]), lm.Dataset(X, y), norm=norm)
    return problem, M.margin_nlp(problem.source, problem.lift, np.arange(X.shape[0]))


@pytest.mark.parametrize("norm", ["l2", "l1", "linf"])
def test_margin_nlps_re_evaluate_their_margin_rows_exactly_and_nothing_else(norm):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((6, 3)) * np.array([1e6, 1.0, 1e-6]), np.array([1.0, -1, 1, -1, 1, -1])
    problem, nlp = linear_problem(X, y, norm)
    z = rng.standard_normal(nlp.n) * 1e3
    rows = np.array([nlp.m - 1, 4, 0, 2])                 # the last row is the norm's (linf) or a margin
    values, done = nlp.exact_values(z, rows)
    point = nlp.evaluate(z)
    margin = rows < 6
    assert done.tolist() == margin.tolist()
    J = point.jacobian[rows[margin]]
    offsets = np.column_stack([problem.source.c[rows[margin]], -np.ones(margin.sum())])
    assert values[margin].tolist() == exact(J, z, offsets)
    np.testing.assert_allclose(values[margin], point.values[rows[margin]], rtol=1e-9, atol=1e-6)
    assert np.all(np.isnan(values[~margin]))


def test_only_unresolved_rows_are_re_evaluated_or_bounded(monkeypatch):
    """Rows whose rounding bound is within UNRESOLVED tol.kkt of their level keep their computed values and no
    uncertainty; an unresolved row the NLP re-evaluates gets its exact value; one it cannot keeps its bound."""
    X, y = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, -1.0]]), np.array([1.0, 1.0, -1.0])
    problem, nlp = linear_problem(X, y)
    z = np.array([1.0, 1.0]) / 3.0
    ext = extend(nlp, nlp.evaluate(z), z)
    same, u = resolved(nlp, ext, Tolerances())
    assert same is ext and not np.any(u)
    bound = value_rounding(ext)
    tight = Tolerances(kkt=1e-18)                       # every row's rounding now matters
    calls = []
    real = nlp.exact_values
    traced = replace(nlp, exact_values=lambda zz, rows: calls.append(rows.tolist()) or real(zz, rows))
    after, u = resolved(traced, ext, tight)
    assert calls == [[0, 1, 2]] and not np.any(u)
    assert after.values.tolist() == [float(Fraction(1, 1) * (Fraction(1.0 / 3.0) * 3) - 1),
                                     float(Fraction(1.0 / 3.0) * 3 - 1), float(Fraction(1.0 / 3.0) * 2 - 1)]
    unable = replace(nlp, exact_values=lambda zz, rows: (np.full(rows.size, np.nan), np.zeros(rows.size, bool)))
    kept, u = resolved(unable, ext, tight)
    assert kept is ext and u.tolist() == bound.tolist()
    assert resolved(replace(nlp, exact_values=None), ext, tight)[1].tolist() == bound.tolist()


def test_an_unresolved_row_that_is_not_re_evaluated_counts_its_bound():
    """min z s.t. 1e17 z - 1e17 + 1 >= 0 (a row whose terms cancel by 1e17): at z = 1 it reads 1 in floating point,
    but its rounding bound is ~1e2 of its level; without exact values that is its violation, and the point is not
    certified."""
    p = QP(np.zeros((1, 1)), np.array([1.0]), np.array([[1e17]]), np.array([1e17 - 1.0]), np.zeros((0, 1)),
           np.zeros(0), np.array([-np.inf]), np.array([np.inf]), np.array([1.0]), np.array([1e-17]), np.zeros(0),
           np.zeros(1), np.zeros(1), np.ones(1), np.ones(0))
    report = p.report()
    assert report.residuals.primal_feasibility >= 1.0 and not report.kkt_met(Tolerances())
    assert primal_residual(np.array([0.5, -0.5, 2e-9]), np.ones(3), np.array([False, False, True]),
                             np.array([0.75, 0.0, 1e-9])) == pytest.approx(0.5)
    assert primal_residual(np.array([0.5]), np.ones(1), np.array([True]), np.array([0.25])) == 0.75


def test_value_rounding_is_the_bound_of_an_affine_rows_evaluation():
    """u_i = (k + 4) eps/2 (sum_j |J_ij z_j| + |c_i| + s_i), k the nonzero entries of z; the Jacobian's scale (the
    magnitudes of its terms) where the point has one; rows without variables and NLPs without rows too."""
    eps = np.finfo(float).eps
    X, y = np.array([[1.0, -2.0], [3.0, 0.5]]), np.array([1.0, 1.0])
    problem, nlp = linear_problem(X, y)
    z = np.array([2.0, 0.0])                               # one nonzero entry: k = 1
    ext = extend(nlp, nlp.evaluate(z), z)
    expected = 5 * 0.5 * eps * (np.abs(ext.jacobian) @ np.abs(z) + np.abs(ext.values) + ext.levels)
    assert value_rounding(ext).tolist() == expected.tolist()
    scaled = replace(ext, point=replace(ext.point, jacobian_scale=10.0 * np.abs(ext.point.jacobian)))
    assert value_rounding(scaled).tolist() == (5 * 0.5 * eps * (10.0 * np.abs(ext.jacobian) @ np.abs(z)
                                                                 + np.abs(ext.values) + ext.levels)).tolist()
    empty = replace(ext, jacobian=np.zeros((2, 0)), z=np.zeros(0))
    assert value_rounding(empty).tolist() == (4 * 0.5 * eps * (np.abs(ext.values) + ext.levels)).tolist()


def test_unresolved_is_relative_to_each_rows_level():
    """Terms ~1e3: u ~ 7e-13 is unresolved against 1e-2 tol.kkt = 1e-14 at level 1, resolved at level 1e6 (u / s ~
    7e-16 there, the level itself in u)."""
    X, y = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, -1.0]]), np.array([1.0, 1.0, -1.0])
    problem, nlp = linear_problem(X, y)
    z = np.array([1000.0, 1000.0]) / 3.0
    ext = extend(nlp, nlp.evaluate(z), z)
    tol = Tolerances(kkt=1e-12)
    none = replace(nlp, exact_values=None)
    assert np.all(resolved(none, ext, tol)[1] > 0)
    high = replace(ext, levels=np.full(ext.levels.size, 1e6))        # ... and none at level 1e6
    assert not np.any(resolved(none, high, tol)[1])
