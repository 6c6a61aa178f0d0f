"""What the path NLPs hand the certificate (lexmargin/problems/paths.py): each margin row's level (``margin_levels``:
its own terms, at least LEVEL_FLOOR of the rows' common scale) and the constrained path's term sizes of the loss
row's gradient (a sum over the samples that cancels at the optimum)."""

import importlib

import numpy as np
import pytest

import lexmargin as lm
from lexmargin.nlp.norms import get_norm
from lexmargin.problems.margins import model_margins

P = importlib.import_module("lexmargin.problems.paths")
C = importlib.import_module("lexmargin.nlp.certify")


# ---- margin_levels ------------------------------------------------------------------------------------------------
def test_margin_levels_are_each_rows_own_terms():
    J = np.array([[1.0, -2.0], [3.0, 0.5], [0.0, 0.0]])
    z = np.array([0.5, -0.25])
    f = J @ z                                           # (1.0, 1.375, 0)
    # own terms |J| |z| = (1.0, 1.625, 0); common scale max(|f|, |tau|, ||J_n||) = sqrt(9.25)
    levels = P.margin_levels(f, J, z, 0.1)
    np.testing.assert_allclose(levels, [1.0, 1.625, 0.1], rtol=1e-15)
    np.testing.assert_allclose(P.margin_levels(f, J, z)[2], P.LEVEL_FLOOR * np.sqrt(9.25), rtol=1e-15)
    # the row's other term counts for that row (a scalar or one per row)
    np.testing.assert_allclose(P.margin_levels(f, J, z, 1.5), [1.5, 1.625, 1.5], rtol=1e-15)
    np.testing.assert_allclose(P.margin_levels(f, J, z, [0.0, 4.0, 0.2]), [1.0, 4.0, 0.2], rtol=1e-15)
    # a value above its terms (an offset) counts: |f_n|
    np.testing.assert_allclose(P.margin_levels([3.0, 0.0, 0.0], J, z)[0], 3.0, rtol=1e-15)
    # the common scale (the floor's base) is the largest of |f|, the other terms and the gradients' norms
    np.testing.assert_allclose(P.margin_levels([100.0, 0.0, 0.0], J, z)[2], P.LEVEL_FLOOR * 100.0, rtol=1e-15)
    np.testing.assert_allclose(P.margin_levels(f, J, z, [50.0, 0.0, 0.0])[2], P.LEVEL_FLOOR * 50.0, rtol=1e-15)
    # rows without variables: no gradient, the floor of |f| and the other terms only (TINY when all are 0)
    assert P.margin_levels([0.0, 2.0], np.zeros((2, 0)), np.zeros(0)).tolist() == [P.LEVEL_FLOOR * 2.0, 2.0]
    assert P.margin_levels([0.0], np.zeros((1, 0)), np.zeros(0)).tolist() == [P.TINY]
    # any shapes of f and z are read flat (a column of values, a column point): one level per row
    column = P.margin_levels(f.reshape(-1, 1), J, z.reshape(-1, 1), 0.1)
    assert column.shape == (3,)
    np.testing.assert_array_equal(column, levels)


def test_margin_levels_do_not_see_other_columns_units():
    """A feature in large units beside one in small units.  A row's level follows its own terms at the point, not how
    much a margin could change along the large feature (down to LEVEL_FLOOR of that)."""
    J = np.array([[2e-2, 3e3], [-1e-2, 1e3]])
    z = np.array([1.0, 1e-9])                           # the solution barely uses the large feature
    levels = P.margin_levels(J @ z, J, z, 1e-3)
    np.testing.assert_allclose(levels, [2e-2 + 3e-6, 1e-2 + 1e-6], rtol=1e-12)
    # the defect's units (1e-6 beside 1e5): the own terms are below the floor, LEVEL_FLOOR of the common scale (the
    # old level, max_n ||grad f_n|| = 3e5, made a violation of the margins' size look like 1e-11 of it)
    J = np.array([[2e-6, 3e5], [-1e-6, 1e5]])
    z = np.array([1.0, 1e-12])
    np.testing.assert_allclose(P.margin_levels(J @ z, J, z, 1e-7), P.LEVEL_FLOOR * np.hypot(2e-6, 3e5), rtol=1e-12)


def test_margin_levels_floor_at_a_vanishing_point():
    """theta ~ 0 (data no direction separates): the terms are noise; the floor is LEVEL_FLOOR of the common scale."""
    J = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -2.0]])
    levels = P.margin_levels(np.zeros(3), J, np.zeros(2))
    np.testing.assert_allclose(levels, P.LEVEL_FLOOR * np.sqrt(5.0), rtol=1e-15)
    assert np.all(P.margin_levels(np.zeros(2), np.zeros((2, 2)), np.zeros(2)) == C.TINY)
    assert P.margin_levels(np.zeros(0), np.zeros((0, 3)), np.zeros(3)).shape == (0,)


def test_margin_path_nlp_levels_are_margin_levels():
    X = np.array([[1.0, 2e5], [-0.5, 1e5], [2.0, -3e5]])
    y = np.array([1.0, -1.0, 1.0])
    model = lm.load_model("linear", input_dim=2)
    norm = get_norm("l2")
    lift = norm.lift(P.BALL, model.n_params)
    source = model_margins(model, lm.Dataset(X, y), "auto")
    nlp = P.margin_path_nlp(source, lift)
    z = np.array([0.6, -1e-6, 0.05])
    point = nlp.evaluate(z, [2.0, 1.5])
    f = 2.0 * (y[:, None] * X) @ z[:2] / 1.5
    J = 2.0 * (y[:, None] * X) / 1.5
    np.testing.assert_allclose(point.levels[:3], P.margin_levels(f, J, z[:2], 0.05), rtol=1e-12)
    np.testing.assert_allclose(point.levels[:3], np.maximum(np.abs(J) @ np.abs(z[:2]), 0.05), rtol=1e-12)


# ---- the constrained path's loss row: term sizes of its gradient ----------------------------------------------------
def test_constrained_path_loss_row_carries_its_term_sizes():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    model = lm.load_model("linear", input_dim=3)
    lift = get_norm("l2").lift(P.BALL, model.n_params)
    source = model_margins(model, lm.Dataset(X, y), "auto")
    nlp = P.constrained_path_nlp(source, lift)
    z = np.array([0.5, -0.3, 0.2, 0.1])
    rho, c, s = 2.0, 0.3, 1.5
    point = nlp.evaluate(z, [rho, c, s])
    A = y[:, None] * X
    E = np.exp(c - rho * A @ z[:3] - s * z[3])
    G = np.hstack([rho * A, np.full((6, 1), s)])
    np.testing.assert_allclose(point.jacobian[0], E @ G / s, rtol=1e-12)
    np.testing.assert_allclose(point.jacobian_scale[0], E @ np.abs(G) / s, rtol=1e-12)
    np.testing.assert_array_equal(point.jacobian_scale[1:], np.abs(point.jacobian[1:]))
    assert np.all(point.jacobian_scale >= np.abs(point.jacobian))


def test_a_cancelled_loss_gradient_is_judged_by_its_terms():
    """At the constrained path's optimum a feature whose samples' terms cancel has a loss-row entry ~0: measured
    against |J| alone its balance would look 100 % off; against the term sizes it is at rounding level."""
    g = np.array([0.0, 0.0, 1.0])
    J = np.array([[1e-13, 2.0, 1.0], [0.0, 2.0, 0.0]])
    scale = np.array([[3.0, 2.0, 1.0], [0.0, 2.0, 0.0]])
    lam = np.array([1.0, -1.0])
    assert C.stationarity_residual(g, J, lam) == pytest.approx(1.0)
    assert C.stationarity_residual(g, J, lam, jacobian_scale=scale) == pytest.approx(1e-13 / 3.0)
