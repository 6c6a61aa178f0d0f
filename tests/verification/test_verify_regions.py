"""Activation regions of ReLU-type nets: which sign patterns of kinked units are realizable, the slope vectors
enumerated, and the sign rows a region's certificate evaluates (values, Jacobian, Hessian, levels), against
definitions written out in numpy.  All fast (no IPOPT): mutmut runs them for every mutant of these functions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import lexmargin as lm
from lexmargin.modeling.regions import RegionMargins, _realizable, _vertex_slopes


# ---- realizability: is there a direction delta with sign <g_k, delta> = side_k for every kink? ----------
def brute_realizable(G, positive):
    """Realizability by definition, for k rows in R^2: the sign vector of <g_k, delta> is piecewise constant in
    the angle of delta, with changes only where delta is orthogonal to some g_k: every pattern that some delta
    realizes is realized at the midpoint of two consecutive critical angles."""
    side = np.where(positive, 1.0, -1.0)
    critical = sorted({(np.arctan2(g[1], g[0]) + s) % (2 * np.pi) for g in G for s in (np.pi / 2, -np.pi / 2)})
    critical.append(critical[0] + 2 * np.pi)
    for a, b in zip(critical, critical[1:]):
        delta = np.array([np.cos((a + b) / 2), np.sin((a + b) / 2)])
        if np.all(side * (G @ delta) > 0):
            return True
    return False


DEPENDENT = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])          # g_3 = g_1 + g_2: 6 of 8 patterns


@pytest.mark.parametrize("constant", [True, False])
def test_realizable_patterns_of_dependent_gradients(constant):
    """Three kinks in R^2 with g_3 = g_1 + g_2: a pattern with g_1, g_2 on one side and g_3 on the other is not
    realizable (<g_3, delta> = <g_1, delta> + <g_2, delta>), every other pattern is (e.g. (-, -, -) only with a
    direction of negative coordinates)."""
    for signs in itertools.product([True, False], repeat=3):
        positive = np.array(signs)
        expected = not (signs[0] == signs[1] != signs[2])
        assert brute_realizable(DEPENDENT, positive) == expected
        assert _realizable(DEPENDENT, positive, constant) == expected, signs


@pytest.mark.parametrize("exponent", [-6, 0, 6])
def test_realizability_does_not_depend_on_the_gradients_sizes(exponent):
    """Only the directions of the kinks' gradients matter: rows scaled by very different positive factors give
    the same answers (independent rows, where every pattern is realizable, and dependent ones)."""
    sizes = 10.0 ** np.array([exponent, -exponent, 0.0])
    independent = np.array([[1.0, 0.0, 0.0], [0.3, 1.0, 0.0]]) * sizes[:2, None]
    for constant in (True, False):
        for signs in itertools.product([True, False], repeat=2):
            assert _realizable(independent, np.array(signs), constant)
        for signs in itertools.product([True, False], repeat=3):
            expected = not (signs[0] == signs[1] != signs[2])
            assert _realizable(DEPENDENT * sizes[:, None], np.array(signs), constant) == expected


def test_realizable_random_gradients_in_the_plane():
    rng = np.random.default_rng(7)
    for _ in range(20):
        k = int(rng.integers(2, 5))
        G = rng.standard_normal((k, 2)) * 10.0 ** rng.uniform(-3, 3, (k, 1))
        for signs in itertools.product([True, False], repeat=k):
            positive = np.array(signs)
            assert _realizable(G, positive, False) == brute_realizable(G, positive)


def test_realizable_edge_cases():
    """No kink: the empty pattern is realizable; a kinked unit whose pre-activation has no gradient cannot be
    moved to either side by any direction (a constant 0)."""
    assert _realizable(np.zeros((0, 3)), np.zeros(0, bool), True) is True
    assert _realizable(np.zeros((0, 3)), np.zeros(0, bool), False) is True
    for side in (True, False):
        assert _realizable(np.zeros((1, 3)), np.array([side]), True) is False
        assert _realizable(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([True, side]), False) is False
    # opposite sides of one direction twice (parallel rows): not realizable; the same side: realizable
    parallel = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert _realizable(parallel, np.array([True, False]), True) is False
    assert _realizable(parallel, np.array([False, False]), True) is True


def test_vertex_slopes_enumerate_every_side_of_the_moving_kinks():
    """Every combination of 1 or the low slope for each moving kink, fixed kinks at 1, each exactly once."""
    lows = np.array([0.0, 0.2, 0.1, 0.0, 0.3])
    moving = np.array([True, False, True, True, False])
    out = _vertex_slopes(lows, moving)
    expected = {(a, 1.0, b, c, 1.0) for a in (0.0, 1.0) for b in (0.1, 1.0) for c in (0.0, 1.0)}
    assert out.shape == (8, 5) and {tuple(r) for r in out.tolist()} == expected
    one = _vertex_slopes(np.array([0.2]), np.array([True]))
    assert sorted(one.ravel().tolist()) == [0.2, 1.0]
    assert _vertex_slopes(np.array([0.0, 0.0]), np.array([False, False])).tolist() == [[1.0, 1.0]]


# ---- the sign rows of a region, against their definition ------------------------------------------------
def two_layer_region(seed, N=5, d=3, U=4):
    rng = np.random.default_rng(seed)
    net = lm.load_model("two_layer", input_dim=d, activation="relu", width=U)
    data = lm.Dataset(rng.standard_normal((N, d)), np.where(rng.random(N) < 0.5, 1.0, -1.0))
    theta0 = rng.standard_normal(net.n_params)
    return net, data, theta0, RegionMargins(net, data, theta0), rng


def test_sign_rows_of_a_two_layer_net_by_hand():
    """Rows s_nu v_u.x_n (s = +1 on units active at the region's point, -1 on the others), sample-major; their
    Jacobian s_nu x_n in v_u's block (0 in a's), their levels ||grad|| ||theta||; the margin is y a.(S V x) with
    S = 1 on active units and 0 on the others, whatever theta."""
    net, data, theta0, region, rng = two_layer_region(3)
    N, d, U = 5, 3, 4
    V0 = theta0[:U * d].reshape(U, d)
    active = (data.X @ V0.T) > 0                                      # (N, U)
    assert active.any() and not active.all()
    signs = np.where(active, 1.0, -1.0)
    theta = theta0 + 0.5 * rng.standard_normal(theta0.size)             # anywhere: the rows are polynomials
    V, a = theta[:U * d].reshape(U, d), theta[U * d:]
    z = data.X @ V.T
    np.testing.assert_allclose(region.extra_values(theta), (signs * z).reshape(-1), rtol=1e-13, atol=1e-14)
    J = np.zeros((N * U, theta.size))
    for n in range(N):
        for u in range(U):
            J[n * U + u, u * d:(u + 1) * d] = signs[n, u] * data.X[n]
    np.testing.assert_allclose(region.extra_jacobian(theta), J, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(region.extra_levels(theta),
                               np.linalg.norm(J, axis=1) * np.linalg.norm(theta), rtol=1e-13)
    np.testing.assert_allclose(region.values(theta), data.y * ((active * z) @ a), rtol=1e-12, atol=1e-14)
    slack = signs * z
    np.testing.assert_allclose(region.unit_relative_slacks(theta),
                               (slack / np.max(np.abs(slack), axis=0)).reshape(-1), rtol=1e-13)
    assert np.all(region.extra_values(theta0) >= 0)                    # the region's point is in it
    np.testing.assert_allclose(region.extra_hessian(theta, rng.standard_normal(N * U)), 0.0, atol=1e-14)


def test_sign_row_levels_are_never_zero():
    """A sample at the origin has pre-activations with no gradient: its rows' levels stay positive (a slack is
    divided by them)."""
    net = lm.load_model("two_layer", input_dim=2, activation="relu", width=2)
    data = lm.Dataset(np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([1.0, -1.0]))
    theta = np.array([1.0, -1.0, 0.5, 0.5, 1.0, 2.0])
    levels = RegionMargins(net, data, theta).extra_levels(theta)
    assert np.all(levels > 0) and np.all(levels[:2] < 1e-300) and np.all(levels[2:] > 1.0)


def deep_relu():
    from lexmargin import Block, Model
    from lexmargin.modeling import ops
    return Model("relu3", [Block.array("W1", (2, 2), 1), Block.array("W2", (2, 2), 1), Block.array("a", 2, 1)],
                 input_dim=2, output=lambda p, x: ops.dot(p["a"], ops.relu(p["W2"] @ ops.relu(p["W1"] @ x))))


@pytest.mark.parametrize("rows", [None, [7, 0, 3, 12]])
def test_sign_row_derivatives_of_a_deeper_net_by_differences(rows):
    """Second-layer pre-activations are bilinear in theta within a region: central differences of the values give
    the Jacobian and of J^T w the weighted Hessian (exact up to rounding for polynomials of degree 2); a view of
    some rows (a working set) has the whole region's rows and Hessian of the weights placed on them."""
    net = deep_relu()
    rng = np.random.default_rng(11)
    data = lm.Dataset(rng.standard_normal((4, 2)), np.array([1.0, -1.0, 1.0, -1.0]))
    theta0 = rng.standard_normal(net.n_params)
    whole = RegionMargins(net, data, theta0)
    region = whole if rows is None else whole.with_sign_rows(rows)
    k = whole.n_extra if rows is None else len(rows)
    assert region.n_extra == k
    theta = theta0 + 0.3 * rng.standard_normal(theta0.size)
    h = 1e-3
    E = np.eye(theta.size)
    fd = np.array([(region.extra_values(theta + h * e) - region.extra_values(theta - h * e)) / (2 * h) for e in E]).T
    J = region.extra_jacobian(theta)
    assert J.shape == (k, theta.size)
    np.testing.assert_allclose(J, fd, rtol=1e-8, atol=1e-9)
    w = rng.standard_normal(k)
    H = np.array([(region.extra_jacobian(theta + h * e).T @ w - region.extra_jacobian(theta - h * e).T @ w) / (2 * h)
                  for e in E])
    got = region.extra_hessian(theta, w)
    assert np.abs(got).max() > 1e-3
    np.testing.assert_allclose(got, H, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(got, got.T, atol=1e-14)
    if rows is not None:
        chosen = np.unique(rows)
        np.testing.assert_array_equal(region.extra_values(theta), whole.extra_values(theta)[chosen])
        full = np.zeros(whole.n_extra)
        full[chosen] = w
        np.testing.assert_allclose(got, whole.extra_hessian(theta, full), rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(region.sign_samples, chosen // whole.family.n_units)   # sample-major


def test_flipped_changes_only_the_given_units():
    net, data, theta0, region, _ = two_layer_region(4)
    rows = np.array([0, 7, 13])
    flipped = region.flipped(rows)
    assert flipped.shape == region.active.shape
    changed = np.nonzero((flipped != region.active).reshape(-1))[0]
    np.testing.assert_array_equal(changed, rows)
    neighbour = RegionMargins(net, data, theta0, patterns=flipped)
    np.testing.assert_array_equal(neighbour.extra_values(theta0).reshape(-1)[rows],
                                  -region.extra_values(theta0)[rows])
    assert region.flipped([]).tolist() == region.active.tolist()


def test_kinks_use_a_relative_tolerance():
    """A unit is at a kink on a sample when |z| <= tol ||grad z|| ||theta||: the same units at any data scale and
    any scale of theta; a pre-activation twice the tolerance away is no kink."""
    net = lm.load_model("two_layer", input_dim=2, activation="relu", width=2)
    theta = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    tol = 1e-6
    for scale in (1e-5, 1.0, 1e5):
        for t in (1e-4, 1.0, 1e4):
            level = np.linalg.norm([1.0, 1.0]) * scale * np.linalg.norm(t * theta)   # ||x|| ||theta||
            X = scale * np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
            X[0, 0] = 0.5 * tol * level / (t * 1.0)               # z_0 = t x_00 = tol level / 2: a kink
            X[1, 0] = -2.0 * tol * level / (t * 1.0)              # z_0 = -2 tol level: none
            X[2, 1] = 0.0                                        # z_1 = 0 exactly
            data = lm.Dataset(X, np.ones(3))
            region = RegionMargins(net, data, t * theta)
            assert region.kinks(t * theta, tol) == {0: [0], 2: [1]}, (scale, t)


def test_relative_slacks_are_per_unit_and_scale_free():
    """Each sign row's slack over its unit's largest |z| across samples: the same at any data scale, at any
    scale of theta, for units of very different sizes; a unit with no pre-activation at all (v_u = 0) has
    relative slacks 0 (not nan)."""
    net, data, theta0, region, rng = two_layer_region(6)
    U, d = 4, 3
    theta = theta0.copy()
    theta[:d] *= 1e-3                                    # unit 0 small, unit 1 large
    theta[d:2 * d] *= 1e3
    region = RegionMargins(net, data, theta)
    base = region.unit_relative_slacks(theta)
    assert np.all(np.abs(base) <= 1.0) and np.all(np.max(np.abs(base.reshape(-1, U)), axis=0) == pytest.approx(1.0))
    for factor in (1e-4, 1e4):
        scaled = RegionMargins(net, lm.Dataset(data.X * factor, data.y), theta)
        np.testing.assert_allclose(scaled.unit_relative_slacks(theta), base, rtol=1e-12)
        np.testing.assert_allclose(region.unit_relative_slacks(theta * factor), base, rtol=1e-12)
    theta[2 * d:3 * d] = 0.0                            # unit 2: z = 0 on every sample
    slack = RegionMargins(net, data, theta).unit_relative_slacks(theta).reshape(-1, U)
    assert np.all(np.isfinite(slack)) and np.all(slack[:, 2] == 0.0)


def test_a_leaky_slope_of_one_is_no_kink():
    """leaky_relu with slope 1 is the identity: a unit at z = 0 has one slope, one pattern, one gradient."""
    net = lm.load_model("two_layer", input_dim=2, activation="leaky_relu", width=2, slope=1.0)
    theta = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    data = lm.Dataset(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1.0, 1.0]))
    region = RegionMargins(net, data, theta)
    v = region.vertices(theta, 0, [0], max_vertices=1)
    assert v.complete and v.slopes.tolist() == [[1.0]] and v.gradients.shape == (1, net.n_params)
    np.testing.assert_allclose(v.gradients[0], region.jacobian(theta)[0], rtol=1e-14)


def test_the_number_of_patterns_is_bounded_by_max_vertices():
    """Three moving kinks have 2^3 = 8 patterns: enumerated with max_vertices = 8, undecided below it; an
    undecided sample reports its sample, kinked units and lows, and no pattern at all."""
    net = lm.load_model("two_layer", input_dim=2, activation="relu", width=3)
    theta = np.array([1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 1.0, 1.0, 1.0])
    data = lm.Dataset(np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([1.0, 1.0]))
    region = RegionMargins(net, data, theta)
    units = region.kinks(theta, 1e-8)[1]
    assert len(units) == 3
    full = region.vertices(theta, 1, units, max_vertices=8)
    assert full.complete and full.slopes.shape[0] + full.dropped == 8 and full.slopes.shape[0] >= 1
    assert full.sample == 1 and full.gradients.shape == (full.slopes.shape[0], net.n_params)
    for limit in (7, 6):
        v = region.vertices(theta, 1, units, max_vertices=limit)
        assert v.complete is False and v.sample == 1 and v.units == full.units and v.dropped == 0
        assert v.slopes.shape == (0, 3) and v.gradients.shape == (0, net.n_params)
        np.testing.assert_array_equal(v.lows, [0.0, 0.0, 0.0])


def fed_net():
    """z1 = W1 x (2 units), z2 = W2 relu(z1) (1 unit), f = y a relu(z2)."""
    from lexmargin import Block, Model
    from lexmargin.modeling import ops

    def output(p, x):
        return ops.dot(p["a"], ops.relu(ops.matmul(p["W2"], ops.relu(ops.matmul(p["W1"], x)))))

    return Model("fed", [Block("l1", {"W1": (2, 2)}, 1), Block("l2", {"W2": (1, 2)}, 1), Block("o", {"a": (1,)}, 1)],
                 input_dim=2, output=output)


@pytest.mark.parametrize("ratio, grows", [(1.2, True), (2.0, False)])
def test_a_unit_joins_the_kinks_by_the_same_relative_rule(ratio, grows):
    """x = (0, 1), W1 = [[1, 0], [0, e]], W2 = (w, w): z1_0 = 0 (the kink), z1_1 = e, z2 = w e.  By the rule
    |z_u| <= tol ||grad z_u|| ||theta|| (grad z2's largest norm over the kink's patterns: w sqrt(2)), z2 joins the
    kinks when e / sqrt(2) <= tol ||theta||, and z1_1 (gradient norm 1) when e <= tol ||theta||: with
    e = 1.2 tol ||theta|| only z2 joins, with e = 2 tol ||theta|| neither (whatever w, at any scale of theta)."""
    net = fed_net()
    tol = 1e-8
    data = lm.Dataset(np.array([[0.0, 1.0]]), np.array([1.0]))
    for w, c in ((0.1, 1.0), (0.1, 1e-3), (3.0, 1e3)):
        base = np.array([1.0, 0.0, 0.0, 0.0, w, w, 1.0])
        size = np.linalg.norm(base)                       # e changes ||theta|| by ~1e-16 only
        theta = base.copy()
        theta[3] = ratio * tol * size
        theta *= c                                        # every pre-activation and level scales alike
        region = RegionMargins(net, data, theta)
        v = region.vertices(theta, 0, [0], tol)
        units = [region.unit_label(u) for u in range(region.family.n_units)]
        z2 = units[2]
        assert units[:2] == [(0, 0), (0, 1)] and v.units[0] == (0, 0)
        assert (z2 in v.units) is grows and (0, 1) not in v.units, (w, c, v.units)


def relu4():
    """Three ReLU layers: the third layer's pre-activations are trilinear, their Hessian depends on theta."""
    from lexmargin import Block, Model
    from lexmargin.modeling import ops
    return Model("relu4", [Block.array("W1", (2, 2), 1), Block.array("W2", (2, 2), 1), Block.array("W3", (2, 2), 1),
                           Block.array("a", 2, 1)], input_dim=2,
                 output=lambda p, x: ops.dot(p["a"], ops.relu(p["W3"] @ ops.relu(p["W2"] @ ops.relu(p["W1"] @ x)))))


def test_sign_row_hessian_of_a_trilinear_layer_by_differences():
    net = relu4()
    rng = np.random.default_rng(12)
    data = lm.Dataset(rng.standard_normal((3, 2)), np.array([1.0, -1.0, 1.0]))
    theta0 = rng.standard_normal(net.n_params)
    region = RegionMargins(net, data, theta0)
    w = rng.standard_normal(region.n_extra)
    h = 1e-3
    for theta in (theta0, theta0 + 0.5 * rng.standard_normal(theta0.size)):
        H = np.array([(region.extra_jacobian(theta + h * e).T @ w - region.extra_jacobian(theta - h * e).T @ w) / (2 * h)
                      for e in np.eye(theta.size)])
        np.testing.assert_allclose(region.extra_hessian(theta, w), H, rtol=1e-7, atol=1e-9)
    assert not np.allclose(region.extra_hessian(theta0, w), region.extra_hessian(2 * theta0, w))
    # no sign row (an empty working set): a zero Hessian of the parameters' size
    empty = region.with_sign_rows([])
    assert empty.n_extra == 0 and empty.extra_values(theta0).shape == (0,)
    np.testing.assert_array_equal(empty.extra_hessian(theta0, np.zeros(0)), np.zeros((net.n_params, net.n_params)))


def test_a_unit_without_gradient_does_not_drop_every_pattern():
    """x = (0, 1), W1 = [[1, 0], [0, -1]], W2 = (0, 1): z1_0 = 0 is a kink, z1_1 = -1 is inactive, and z2 =
    relu(z1_1) = 0 with no gradient in any pattern (constant to first order: its slope multiplies a zero gradient).
    The margin's Clarke columns are the gradients in z1_0's two patterns; z2's slope cannot change them."""
    net = fed_net()
    data = lm.Dataset(np.array([[0.0, 1.0]]), np.array([1.0]))
    theta = np.array([1.0, 0.0, 0.0, -1.0, 0.0, 1.0, 1.0])
    region = RegionMargins(net, data, theta)
    kinks = region.kinks(theta, 1e-8)[0]
    v = region.vertices(theta, 0, kinks, 1e-8)
    assert len(kinks) == 2 and v.dropped == 0 and v.complete
    # z2 is held at slope 1 (its slope is irrelevant); the patterns are z1_0's two
    np.testing.assert_array_equal(v.slopes[:, 1], 1.0)
    alone = region.vertices(theta, 0, [0], 1e-8)
    assert alone.gradients.shape[0] == 2
    np.testing.assert_allclose(v.gradients, alone.gradients, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_margin_nlp_of_a_trilinear_region_matches_its_expressions(norm):
    """The max-margin NLP of a region whose sign rows have a theta-dependent Hessian: values, Jacobian and the
    Lagrangian's Hessian (with the sign rows' part) against CasADi's derivatives of its own expressions."""
    from verify_helpers import assert_nlp_matches_expressions

    from lexmargin.nlp.norms import OBJECTIVE, get_norm
    from lexmargin.problems.maxmargin import margin_nlp
    net = relu4()
    rng = np.random.default_rng(13)
    data = lm.Dataset(rng.standard_normal((3, 2)), np.array([1.0, -1.0, 1.0]))
    theta0 = rng.standard_normal(net.n_params)
    region = RegionMargins(net, data, theta0)
    lift = get_norm(norm).lift(OBJECTIVE, net.n_params)
    nlp = margin_nlp(region, lift, np.arange(3))
    z = lift.start(theta0 + 0.3 * rng.standard_normal(net.n_params))
    assert_nlp_matches_expressions(nlp, z, rng.standard_normal(nlp.m), p=region.parameter_values, rtol=1e-9,
                                   atol=1e-11)
