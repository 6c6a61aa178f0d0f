"""Norms (lexmargin.nlp.norms): the hand-written values, gradients, Jacobians and Hessians that the certificate
uses agree with the CasADi expressions IPOPT solves and with the norms' definitions; the lifts are exact."""

import warnings

import casadi as ca
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from verify_helpers import PROPERTY

from lexmargin.errors import LexmarginError
from lexmargin.nlp.norms import BALL, L1, L2, NORMS, OBJECTIVE, LInf, Lp, Norm, get_norm

ALL = [L2(), L1(), LInf(), Lp(3.0), Lp(1.5)]
IDS = ["l2", "l1", "linf", "l3", "l1.5"]


def casadi_forms(lift):
    """Objective, rows and their derivatives from the CasADi expressions (what IPOPT sees)."""
    z = ca.SX.sym("z", lift.n)
    w = ca.SX.sym("w", lift.n_rows)
    rows = lift.rows(z)
    out = [lift.objective(z), ca.gradient(lift.objective(z), z), ca.hessian(lift.objective(z), z)[0]] \
        if lift.form == OBJECTIVE else []
    out += [rows, ca.jacobian(rows, z), ca.hessian(ca.dot(w, rows), z)[0] if lift.n_rows else ca.SX(lift.n, lift.n)]
    f = ca.Function("f", [z, w], [ca.densify(e) for e in out])
    return lambda zv, wv: [np.array(v) for v in f(zv, wv)]


def interior_point(lift, rng):
    """A point strictly inside the lift's bounds (u, v > 0 for split lifts, |theta| < 1 in the linf ball)."""
    lower, upper = lift.bounds()
    z = rng.standard_normal(lift.n)
    if lift.split:
        z = np.abs(z) + 0.1
    if lift.form == BALL and lift.norm.name == "linf":
        z = np.clip(z, -0.9, 0.9)
    if lift.form == OBJECTIVE and lift.norm.name == "linf":
        z[-1] = np.max(np.abs(z[:-1])) + 0.5
    assert np.all(z > lower) and np.all(z < upper)
    return z


@pytest.mark.parametrize("norm", ALL, ids=IDS)
@pytest.mark.parametrize("form", [OBJECTIVE, BALL])
def test_numpy_forms_match_the_casadi_expressions(norm, form):
    rng = np.random.default_rng(0)
    for P in (1, 3):
        lift = norm.lift(form, P)
        forms = casadi_forms(lift)
        for _ in range(3):
            z = interior_point(lift, rng)
            w = rng.standard_normal(lift.n_rows)
            got = forms(z, w)
            if form == OBJECTIVE:
                obj, grad, hess = got[:3]
                assert lift.objective_value(z) == pytest.approx(obj.item(), rel=1e-12)
                np.testing.assert_allclose(lift.objective_gradient(z), grad.reshape(-1), rtol=1e-12, atol=1e-14)
                np.testing.assert_allclose(lift.objective_hessian(z), hess, rtol=1e-12, atol=1e-14)
                got = got[3:]
            rows, jac, row_hess = got
            assert lift.row_values(z).shape == (lift.n_rows,) and lift.n_rows == norm.rows_count(form, P)
            np.testing.assert_allclose(lift.row_values(z), rows.reshape(-1), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(lift.row_jacobian(z).reshape(lift.n_rows, lift.n), jac, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(lift.row_hessian(z, w), row_hess, rtol=1e-12, atol=1e-14)
            assert lift.row_levels(z).shape == (lift.n_rows,)


def test_lp_derivatives_at_zero_coordinates_are_finite_where_defined():
    lift = Lp(3.0).lift(OBJECTIVE, 2)
    z = np.array([0.0, 2.0, 1.0, 0.0])
    assert lift.objective_gradient(z).tolist() == [0.0, 12.0, 3.0, 0.0]
    assert np.diag(lift.objective_hessian(z)).tolist() == [0.0, 12.0, 6.0, 0.0]
    # p < 2: the curvature is infinite at 0 (no error raised), finite elsewhere
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # 0 ** negative is +inf on purpose, silently
        d = np.diag(Lp(1.5).lift(OBJECTIVE, 1).objective_hessian(np.array([0.0, 4.0])))
    assert d[0] == np.inf and d[1] == pytest.approx(1.5 * 0.5 / 2.0)
    ball = Lp(3.0).lift(BALL, 2)
    np.testing.assert_allclose(ball.row_hessian(z, [2.0]), -2.0 * np.diag([0.0, 12.0, 6.0, 0.0]))
    assert ball.row_values(np.array([-1.0, 0.5, 0.0, 0.0])).tolist() == [1.0 - 0.125]   # negative parts ignored


@pytest.mark.parametrize("norm", ALL, ids=IDS)
def test_values_follow_the_definitions(norm):
    theta = np.array([3.0, -4.0, 0.0, 1.0])
    a = np.abs(theta)
    expected = {"l2": np.sqrt(26.0), "l1": 8.0, "linf": 4.0}.get(norm.name)
    if norm.name == "lp":
        expected = np.sum(a ** norm.p) ** (1 / norm.p)
    assert norm.value(theta) == pytest.approx(expected, rel=1e-15)
    assert norm.value(list(theta)) == pytest.approx(expected, rel=1e-15)
    assert norm.value(np.zeros(3)) == 0.0 and norm.value([]) == 0.0
    # the objective form's value and its degree
    k = norm.objective_degree
    assert norm.objective_value(theta) == pytest.approx(expected ** k, rel=1e-14)
    assert norm.objective_value(2.0 * theta) == pytest.approx(2.0 ** k * norm.objective_value(theta), rel=1e-14)
    assert k == {"l2": 2.0, "l1": 1.0, "linf": 1.0}.get(norm.name, getattr(norm, "p", None))


@pytest.mark.parametrize("norm", ALL, ids=IDS)
def test_objective_lift_is_tight_at_its_start(norm):
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(4)
    lift = norm.lift(OBJECTIVE, 4)
    z = lift.start(theta, margin=0.0)
    np.testing.assert_allclose(lift.theta(z), theta, rtol=1e-15, atol=1e-15)
    assert lift.objective_value(z) == pytest.approx(norm.objective_value(theta), rel=1e-14)
    np.testing.assert_allclose(lift.theta_map() @ z, theta, rtol=1e-15, atol=1e-15)
    # a start with a margin is strictly inside the bounds and still maps to theta
    z = lift.start(list(theta))
    lower, upper = lift.bounds()
    assert np.all(z > lower) and np.all(z < upper)
    np.testing.assert_allclose(lift.theta(z), theta, rtol=1e-14, atol=1e-14)
    assert np.all(lift.row_values(z) > 0)


def test_start_margins():
    theta = np.array([2.0, -0.5])
    z = L1().lift(OBJECTIVE, 2).start(theta, margin=0.25)
    assert z.tolist() == [2.0 + 0.5, 0.5, 0.5, 0.5 + 0.5]        # pad = margin * max(1, max |theta|)
    z = L1().lift(OBJECTIVE, 2).start(theta / 10, margin=0.25)
    np.testing.assert_allclose(z, [0.2 + 0.25, 0.25, 0.25, 0.05 + 0.25])
    assert L1().lift(BALL, 2).start(theta).tolist() == [2.0, 0.0, 0.0, 0.5]   # no pad in the ball form
    z = LInf().lift(OBJECTIVE, 2).start(theta, margin=0.25)
    assert z.tolist() == [2.0, -0.5, 2.0 * 1.25 + 0.25]
    assert LInf().lift(OBJECTIVE, 2).start(np.zeros(2), margin=0.25).tolist() == [0.0, 0.0, 0.25]
    assert LInf().lift(BALL, 2).start(theta).tolist() == [2.0, -0.5]
    assert L2().lift(OBJECTIVE, 2).start(theta).tolist() == [2.0, -0.5]
    assert L2().lift(OBJECTIVE, 2).start(theta[:, None]).tolist() == [2.0, -0.5]    # a column is flattened
    assert L1().lift(OBJECTIVE, 2).start(theta[None, :], margin=0.0).tolist() == [2.0, 0.0, 0.0, 0.5]
    default = LInf().lift(OBJECTIVE, 1).start(np.array([1.0]))
    assert default.tolist() == [1.0, 1.0 * 1.001 + 0.001]
    assert L1().lift(OBJECTIVE, 1).start(np.array([-3.0])).tolist() == [0.003, 3.003]


def test_lift_shapes_bounds_and_maps():
    assert [L2().lift(f, 3).n for f in (OBJECTIVE, BALL)] == [3, 3]
    assert [L1().lift(f, 3).n for f in (OBJECTIVE, BALL)] == [6, 6]
    assert [LInf().lift(f, 3).n for f in (OBJECTIVE, BALL)] == [4, 3]
    assert [Lp(3.0).lift(f, 3).n for f in (OBJECTIVE, BALL)] == [6, 6]
    lo, up = L1().lift(OBJECTIVE, 2).bounds()
    assert lo.tolist() == [0.0] * 4 and up.tolist() == [np.inf] * 4
    lo, up = LInf().lift(BALL, 2).bounds()
    assert lo.tolist() == [-1.0, -1.0] and up.tolist() == [1.0, 1.0]
    lo, up = LInf().lift(OBJECTIVE, 2).bounds()
    assert lo.tolist() == [-np.inf, -np.inf, 0.0] and up.tolist() == [np.inf] * 3
    lo, up = L2().lift(BALL, 2).bounds()
    assert lo.tolist() == [-np.inf] * 2 and up.tolist() == [np.inf] * 2
    T = L1().lift(BALL, 2).theta_map()
    assert T.tolist() == [[1, 0, -1, 0], [0, 1, 0, -1]]
    assert LInf().lift(OBJECTIVE, 2).theta_map().tolist() == [[1, 0, 0], [0, 1, 0]]
    J = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    for lift in (L1().lift(OBJECTIVE, 2), LInf().lift(OBJECTIVE, 2), L2().lift(BALL, 2)):
        np.testing.assert_array_equal(lift.pull_back(J), J @ lift.theta_map())
        H = np.array([[2.0, 1.0], [1.0, 3.0]])
        np.testing.assert_array_equal(lift.push_hessian(H), lift.theta_map().T @ H @ lift.theta_map())


def test_theta_works_on_casadi_symbols():
    lift = L1().lift(OBJECTIVE, 2)
    z = ca.SX.sym("z", 4)
    f = ca.Function("t", [z], [lift.theta(z)])
    assert np.array(f([3.0, 1.0, 1.0, 4.0])).reshape(-1).tolist() == [2.0, -3.0]


def test_linf_rows_and_levels():
    lift = LInf().lift(OBJECTIVE, 2)
    z = np.array([0.5, -2.0, 3.0])
    assert lift.row_values(z).tolist() == [2.5, 5.0, 3.5, 1.0]
    assert lift.row_levels(z).tolist() == [3.0] * 4
    assert lift.row_levels(np.array([1.0, 1.0, -2.0])).tolist() == [2.0] * 4
    assert lift.row_levels(np.zeros(3)).tolist() == [np.finfo(float).tiny] * 4
    assert LInf().lift(BALL, 2).row_levels(z[:2]).shape == (0,)
    assert LInf().lift(BALL, 2).row_jacobian(z[:2]).shape == (0, 2)
    assert LInf().lift(BALL, 2).row_values(z[:2]).shape == (0,)
    assert L2().lift(BALL, 2).row_levels(z[:2]).tolist() == [1.0]
    assert L2().lift(OBJECTIVE, 2).row_levels(z[:2]).shape == (0,)
    assert L1().lift(OBJECTIVE, 2).row_jacobian(np.ones(4)).shape == (0, 4)
    assert L2().lift(OBJECTIVE, 2).row_hessian(z[:2], []).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert L1().lift(BALL, 1).row_hessian(np.ones(2), [3.0]).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert L1().lift(OBJECTIVE, 1).objective_hessian(np.ones(2)).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert Lp(3.0).lift(OBJECTIVE, 1).row_hessian(np.ones(2), []).tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert Lp(3.0).lift(OBJECTIVE, 1).row_jacobian(np.ones(2)).shape == (0, 2)
    assert Lp(3.0).lift(OBJECTIVE, 1).row_values(np.ones(2)).shape == (0,)
    assert L2().lift(OBJECTIVE, 1).row_jacobian(np.ones(1)).shape == (0, 1)
    assert L2().lift(OBJECTIVE, 1).row_values(np.ones(1)).shape == (0,)
    assert L1().lift(OBJECTIVE, 1).row_values(np.ones(2)).shape == (0,)


def test_empty_row_expressions_follow_the_symbol_type():
    for norm in ALL:
        lift = norm.lift(BALL if norm.name == "linf" else OBJECTIVE, 2)
        if lift.n_rows:
            continue
        for symbol in (ca.SX, ca.MX):
            rows = lift.rows(symbol.sym("z", lift.n))
            assert isinstance(rows, symbol) and rows.shape == (0, 1)


@pytest.mark.parametrize("norm", ALL, ids=IDS)
def test_normalize_and_interior(norm):
    theta = np.array([3.0, -4.0])
    n = norm.value(theta)
    assert norm.value(norm.normalize(theta)) == pytest.approx(1.0)
    np.testing.assert_allclose(norm.normalize(list(theta)), theta / n)
    with pytest.raises(LexmarginError, match="^cannot normalize theta = 0$"):
        norm.normalize(np.zeros(2))
    assert norm.value(norm.interior(theta)) == pytest.approx(0.99)
    assert norm.value(norm.interior(theta, shrink=0.5)) == pytest.approx(0.5)
    small = theta / n * 0.5
    assert norm.interior(small).tolist() == small.tolist()
    at = theta / n * 0.99
    assert norm.interior(at, shrink=norm.value(at)).tolist() == at.tolist()


def test_registry_and_identity():
    assert get_norm() == L2() and get_norm("l1") == L1() and get_norm("linf") == LInf()
    assert get_norm("lp", p=3) == Lp(3.0) and get_norm("lp", p=3) != Lp(4.0)
    lp = Lp(2.5)
    assert get_norm(lp) is lp
    with pytest.raises(LexmarginError, match="^p applies to a norm name, not to a Norm instance$"):
        get_norm(lp, p=2.0)
    with pytest.raises(LexmarginError, match="unknown norm 'l0'"):
        get_norm("l0")
    with pytest.raises(LexmarginError, match="p is only used by norm 'lp'"):
        get_norm("l2", p=2.0)
    for bad in (1.0, 0.5, float("inf"), float("nan"), None):
        with pytest.raises(LexmarginError, match="finite p > 1"):
            Lp(bad)
    assert set(NORMS) == {"l2", "l1", "linf", "lp", "path"}
    assert {L2(), L2(), L1()} == {L2(), L1()} and hash(Lp(3.0)) == hash(Lp(3))
    assert L2() != "l2" and not (L2() == LInf())
    assert len({hash(n) for n in ALL}) == len(ALL)
    assert repr(L1()) == "L1()" and repr(Lp(3.0)) == "Lp(p=3.0)"
    assert L2().to_dict() == {"name": "l2", "label": "l2"}
    assert Lp(3.0).to_dict() == {"name": "lp", "label": "l3", "p": 3.0}
    assert [n.label for n in ALL] == ["l2", "l1", "linf", "l3", "l1.5"]
    assert [n.polyhedral for n in ALL] == [False, True, True, False, False]
    with pytest.raises(LexmarginError, match="unknown norm form 'box'"):
        L2().lift("box", 2)
    assert L2().lift(OBJECTIVE, 2.0).n_params == 2


def test_base_norm_hooks():
    base = Norm()
    z = np.ones(3)
    assert base.rows_count(OBJECTIVE, 3) == 0 and base.rows_value(OBJECTIVE, z, 3).shape == (0,)
    assert base.rows_jacobian(OBJECTIVE, z, 3).shape == (0, 3)
    assert base.rows_hessian(OBJECTIVE, z, 3, []).tolist() == np.zeros((3, 3)).tolist()
    assert base.objective_hessian(z, 3).tolist() == np.zeros((3, 3)).tolist()
    assert base.rows_levels(OBJECTIVE, z, 3).shape == (0,)
    for call in (lambda: base.value(z), lambda: base.objective_expr(z, 3), lambda: base.objective_of_z(z, 3),
                 lambda: base.objective_gradient(z, 3), lambda: base.objective_label):
        with pytest.raises(NotImplementedError):
            call()


@PROPERTY
@given(seed=st.integers(0, 10 ** 6), P=st.integers(1, 4), exponent=st.integers(-6, 6))
def test_objective_forms_are_homogeneous(seed, P, exponent):
    """objective(c theta) = c^degree objective(theta) for every norm (the multipliers' rescaling rule)."""
    theta = np.random.default_rng(seed).standard_normal(P)
    c = 10.0 ** exponent
    for norm in ALL:
        lift = norm.lift(OBJECTIVE, P)
        value = lift.objective_value(lift.start(theta, margin=0.0))
        scaled = lift.objective_value(lift.start(c * theta, margin=0.0))
        assert scaled == pytest.approx(c ** norm.objective_degree * value, rel=1e-12)


@PROPERTY
@given(dtype=st.sampled_from([np.int8, np.int16, np.uint8, np.float32]), seed=st.integers(0, 1000))
def test_norm_values_do_not_depend_on_the_input_dtype(dtype, seed):
    """Integer or single-precision parameters give the double-precision values (no int8 overflow of
    theta.theta, no abs(-128) = -128)."""
    rng = np.random.default_rng(seed)
    low = 0 if dtype == np.uint8 else -128
    theta = rng.integers(low, 128, size=4).astype(float)
    theta[0] = low if low else 127
    cast = theta.astype(dtype)
    for norm in ALL:
        assert norm.value(cast) == pytest.approx(norm.value(theta), rel=1e-15)
        assert norm.objective_value(cast) == pytest.approx(norm.objective_value(theta), rel=1e-15)
        assert np.array_equal(norm.normalize(cast), norm.normalize(theta))
        assert np.array_equal(norm.interior(cast), norm.interior(theta))
        for form in (OBJECTIVE, BALL):
            lift = norm.lift(form, 4)
            z = np.abs(lift.start(theta, margin=0.0)).round()
            zc = z.astype(dtype) if dtype != np.int8 else np.clip(z, -128, 127).astype(dtype)
            z = zc.astype(float)
            assert np.array_equal(lift.start(cast, margin=0.0), lift.start(theta, margin=0.0))
            assert np.array_equal(lift.row_values(zc), lift.row_values(z))
            assert np.array_equal(lift.row_levels(zc), lift.row_levels(z))
            assert np.array_equal(lift.row_jacobian(zc), lift.row_jacobian(z))
            w = np.full(lift.n_rows, 2)
            assert np.array_equal(lift.row_hessian(zc, w.astype(dtype)), lift.row_hessian(z, w))
            if form == OBJECTIVE:
                assert lift.objective_value(zc) == lift.objective_value(z)
                assert np.array_equal(lift.objective_gradient(zc), lift.objective_gradient(z))
                assert np.array_equal(lift.objective_hessian(zc), lift.objective_hessian(z))
            J = np.arange(8).reshape(2, 4).astype(dtype) * (-1 if low else 1)
            assert np.array_equal(lift.pull_back(J), lift.pull_back(J.astype(float)))
            H = np.full((4, 4), 100).astype(dtype)
            assert np.array_equal(lift.push_hessian(H), lift.push_hessian(H.astype(float)))
