"""Homogeneity checks (lexmargin.modeling.homogeneity): a declared degree is accepted exactly when
f(rho theta_k) = rho^a f(theta) holds (numerically at seeded points, symbolically with SymPy), and a sum-form
summand may not depend on another block."""

import numpy as np
import pytest
import sympy as sp

from lexmargin import Block, HomogeneityError, Model, ops
from lexmargin.modeling import homogeneity as H


def dot(p, x):
    return ops.dot(p["w"], x)


def model(degree, output, dim=2, **kw):
    return Model("m", [Block.array("w", dim, degree=degree)], input_dim=dim, output=output, verify=False, **kw)


def cubic(p, x):
    return ops.dot(p["w"], x) ** 3


def test_correct_degree_is_proved_both_ways():
    report = H.check_homogeneity(model(3, cubic))
    (check,) = report.blocks
    assert report.ok and report.model == "m"
    assert check == H.BlockCheck("w", 3, pytest.approx(3.0), True, True, "symbolic in all parameters and inputs",
                                 "symbolically and numerically homogeneous")
    assert report.to_dict() == {"model": "m", "ok": True, "blocks": [check.to_dict()]}
    assert check.to_dict()["symbolic_method"] == "symbolic in all parameters and inputs"


def test_wrong_degree_fails_numerically_with_the_evidence():
    report = H.check_homogeneity(model(2, cubic))
    (check,) = report.blocks
    assert not report.ok and check.numeric_ok is False and check.symbolic_ok is None
    assert check.estimated == pytest.approx(3.0, rel=1e-9) and check.declared == 2
    assert check.message.startswith("f(rho*w) = ") and " but rho^2 f = " in check.message
    assert check.message.endswith("at rho = 0.5")
    with pytest.raises(HomogeneityError) as info:
        H.check_homogeneity(model(2, cubic), raise_on_failure=True)
    text = str(info.value)
    assert text.startswith("model 'm' is not homogeneous as declared: block 'w': declared degree 2, estimated 3 (")
    assert H.check_homogeneity(model(3, cubic), raise_on_failure=True).ok


def test_tiny_non_homogeneous_term_is_caught_symbolically():
    """w.x + 1e-12 (w.x)^2 passes the numeric check (relative 1e-8) but is not 1-homogeneous: SymPy says so."""
    m = model(1, lambda p, x: dot(p, x) + 1e-12 * dot(p, x) ** 2, dim=1)
    (check,) = H.check_homogeneity(m).blocks
    assert check.numeric_ok is True and check.symbolic_ok is False
    assert check.message == "SymPy check failed"
    assert check.symbolic_method == "symbolic in rho at 3 random rational points"
    assert not H.check_homogeneity(m).ok
    numeric_only = H.check_homogeneity(m, symbolic=False)
    assert numeric_only.ok and numeric_only.blocks[0].symbolic_ok is None and numeric_only.blocks[0].symbolic_method \
        is None and numeric_only.blocks[0].message == "numerically homogeneous"
    with pytest.raises(HomogeneityError, match=r"block 'w': declared degree 1, estimated 1 \(SymPy check failed\)"):
        H.check_homogeneity(m, raise_on_failure=True)


def test_numeric_tolerance_is_relative():
    """1e-6 relative deviation: rejected at any scale of the output."""
    for scale in (1e-6, 1.0, 1e6):
        m = model(1, lambda p, x, s=scale: s * (dot(p, x) + 1e-6 * dot(p, x) ** 2))
        assert H._numeric_check(m, "w", 1.0, np.random.default_rng(0))[0] is False
        m = model(1, lambda p, x, s=scale: s * dot(p, x))
        assert H._numeric_check(m, "w", 1.0, np.random.default_rng(0)) == (True, pytest.approx(1.0),
                                                                          "numerically homogeneous")


def test_undeclared_degree_is_not_checked():
    m = Model("log", [Block.array("w", 2)], input_dim=2, margin=lambda p, x, y: ops.log(ops.dot(p["w"], y * x)))
    (check,) = H.check_homogeneity(m, raise_on_failure=True).blocks
    assert check == H.BlockCheck("w", None, None, None, None, None, "no degree declared")


def svm_blocks():
    return [Block.array("w", 2, degree=1), Block.array("b", 1, degree=2)]


def test_sum_form_summands_in_their_own_blocks():
    m = Model("svm", svm_blocks(), input_dim=2, summands={"w": dot, "b": lambda p, x: p["b"][0] ** 2}, verify=False)
    report = H.check_homogeneity(m)
    assert report.ok and [c.declared for c in report.blocks] == [1, 2]
    assert [c.symbolic_ok for c in report.blocks] == [True, True]
    assert H._independence_check(m, "w") is None and H._independence_check(m, "b") is None
    leaky = Model("leaky", svm_blocks(), input_dim=2, verify=False,
                  summands={"w": lambda p, x: dot(p, x) * (1 + p["b"][0] ** 2), "b": lambda p, x: p["b"][0] ** 2})
    report = H.check_homogeneity(leaky)
    w, b = report.blocks
    assert not report.ok and w.numeric_ok is False and w.symbolic_ok is None and b.numeric_ok is True
    assert w.message == "summand of block 'w' depends on parameters outside the block"
    with pytest.raises(HomogeneityError, match="^model 'leaky' is not homogeneous as declared: block 'w'"):
        H.check_homogeneity(leaky, raise_on_failure=True)


def test_estimate_degree():
    m = model(2, lambda p, x: dot(p, x) ** 2)
    fn = H._block_function(m, "w")
    assert H._estimate_degree(fn, m, "w", np.array([1.0, 2.0]), np.array([1.0, 1.0]), 1.0) == pytest.approx(2.0)
    assert H._estimate_degree(fn, m, "w", np.array([1.0, -1.0]), np.array([1.0, 1.0]), 1.0) is None   # f = 0
    assert H._estimate_degree(fn, m, "w", np.array([1.0, 0.0]), np.array([1.0, 1.0]), 1.0) == pytest.approx(2.0)
    assert H._estimate_degree(fn, m, "w", np.array([0.5, 0.0]), np.array([1.0, 1.0]), 1.0) == pytest.approx(2.0)
    odd = model(1, dot)
    fn = H._block_function(odd, "w")
    assert H._estimate_degree(fn, odd, "w", np.array([1.0, 2.0]), np.array([1.0, 1.0]), -1.0) == pytest.approx(1.0)
    flip = model(1, lambda p, x: dot(p, x) - 3.0)          # f(theta) = 0 at doubling: no estimate
    fn = H._block_function(flip, "w")
    assert H._estimate_degree(fn, flip, "w", np.array([1.0, 1.0]), np.array([1.0, 0.5]), 1.0) is None
    assert H._estimate_degree(fn, flip, "w", np.array([1.0, 0.0]), np.array([2.0, 0.0]), 1.0) is None  # sign flip


def test_numeric_points_are_seeded_and_labelled():
    m = model(1, dot, dim=3)
    a = list(H._numeric_points(m, np.random.default_rng(4)))
    b = list(H._numeric_points(m, np.random.default_rng(4)))
    assert len(a) == 3 and all(np.array_equal(u[0], v[0]) and np.array_equal(u[1], v[1]) and u[2] == v[2]
                               for u, v in zip(a, b))
    assert all(t.shape == (3,) and x.shape == (3,) and y in (1.0, -1.0) for t, x, y in a)
    labels = {y for _ in range(20) for *_, y in H._numeric_points(m, np.random.default_rng(_))}
    assert labels == {1.0, -1.0}
    assert len(list(H._numeric_points(m, np.random.default_rng(0), count=5))) == 5


def test_symbolic_helpers():
    rho = sp.Symbol("rho", positive=True)
    assert H._is_zero(sp.expand((rho + 1) ** 2 - rho ** 2 - 2 * rho - 1))
    assert H._is_zero(sp.sin(rho) ** 2 + sp.cos(rho) ** 2 - 1)          # needs simplify, not only expand
    assert not H._is_zero(rho - 1) and not H._is_zero(sp.Integer(1)) and H._is_zero(sp.Integer(0))
    e = H._exact(rho ** 0.5 * rho)
    assert H._is_zero(e - rho ** sp.Rational(3, 2))
    assert H._exact(rho ** 2) == rho ** 2
    arr = H._rational_array(np.random.default_rng(0), (2, 3))
    assert arr.shape == (2, 3) and arr.dtype == object
    assert all(isinstance(v, sp.Rational) and (v * 7).is_integer and abs(v) <= sp.Rational(20, 7) for v in arr.ravel())
    m = Model("two", [Block.array("w", 2, degree=1), Block.array("c", 1, degree=1)], input_dim=2, verify=False,
              output=lambda p, x: dot(p, x) * p["c"][0])
    params = m.layout.split(np.array([1, 2, 3], dtype=object))
    scaled = H._scaled_params(m, params, "w", rho)
    assert list(scaled["w"]) == [rho, 2 * rho] and list(scaled["c"]) == [3] and type(scaled) is type(params)


def test_symbolic_check_paths(monkeypatch):
    m = model(3, cubic)
    assert H.symbolic_check(m, "w", 3.0) == (True, "symbolic in all parameters and inputs")
    assert H.symbolic_check(m, "w", 2.0) == (False, "symbolic in rho at 3 random rational points")
    monkeypatch.setattr(H, "SYMBOLIC_FULL_LIMIT", 3)          # n_params + input_dim = 4 > 3
    assert H.symbolic_check(m, "w", 3.0) == (True, "symbolic in rho at 3 random rational points")
    assert H.symbolic_check(m, "w", 2.5) == (False, "symbolic in rho at 3 random rational points")
    monkeypatch.setattr(H, "SYMBOLIC_FULL_LIMIT", 4)
    assert H.symbolic_check(m, "w", 3.0)[1] == "symbolic in all parameters and inputs"


def test_fractional_and_positive_homogeneity():
    frac = model(1.5, lambda p, x: ops.power(ops.dot(p["w"], p["w"]), 0.25) * dot(p, x))
    report = H.check_homogeneity(frac)
    assert report.ok and report.blocks[0].symbolic_ok is True
    assert H.symbolic_check(frac, "w", 1.75)[0] is False
    absq = model(2, lambda p, x: ops.abs(dot(p, x)) * dot(p, x))
    assert H.check_homogeneity(absq).blocks[0].symbolic_ok is True


def test_sympy_expression_of_a_summand_and_of_a_product_model():
    m = Model("svm", svm_blocks(), input_dim=2, summands={"w": dot, "b": lambda p, x: p["b"][0] ** 2}, verify=False)
    params, x, y = m.sympy_symbols()
    e = H._sympy_expression(m, "b", params, x, y)
    assert sp.simplify(e - params["b"][0] ** 2 * y) == 0
    single = model(1, dot)
    params, x, y = single.sympy_symbols()
    assert H._sympy_expression(single, "w", params, x, y) == single.sympy_margin(params, x, y)
    assert H._symbolic_identity_holds(m, "b", 2, [m.sympy_symbols()])
    assert not H._symbolic_identity_holds(m, "b", 1, [m.sympy_symbols()])


def test_reports_are_seeded_and_cover_every_block():
    a = H.check_homogeneity(model(2, cubic), seed=1).blocks[0].message
    assert a == H.check_homogeneity(model(2, cubic), seed=1).blocks[0].message
    assert a != H.check_homogeneity(model(2, cubic), seed=2).blocks[0].message
    mixed = Model("mixed", [Block.array("c", 1), Block.array("w", 2, degree=2)], input_dim=2, verify=False,
                  output=lambda p, x: p["c"][0] * dot(p, x) ** 2)
    report = H.check_homogeneity(mixed, symbolic=False)
    assert [c.block for c in report.blocks] == ["c", "w"] and report.blocks[1].numeric_ok is True


def test_error_lists_every_failing_block_and_unknown_estimates():
    two = Model("two", [Block.array("w", 2, degree=2), Block.array("b", 1, degree=1)], input_dim=2, verify=False,
                output=lambda p, x: dot(p, x) * p["b"][0] ** 3)
    with pytest.raises(HomogeneityError, match=r"block 'w': declared degree 2, estimated 1 \(.*\); block 'b': "
                                               r"declared degree 1, estimated 3"):
        H.check_homogeneity(two, raise_on_failure=True, symbolic=False)
    # f = (w.x)^2 - c with g < c < 4 g at the first numeric point (g = (w.x)^2 there): f changes sign between
    # theta and 2 theta, so no degree can be estimated
    rng = np.random.default_rng(0)
    theta, x = rng.standard_normal(2), rng.standard_normal(2)
    c = 2.0 * float(theta @ x) ** 2
    flips = model(2, lambda p, x: dot(p, x) ** 2 - c)
    check = H.check_homogeneity(flips, symbolic=False, seed=0).blocks[0]
    assert check.numeric_ok is False and check.estimated is None
    with pytest.raises(HomogeneityError, match=r"block 'w': declared degree 2, estimated n/a \(f\(rho\*w\) = "):
        H.check_homogeneity(flips, raise_on_failure=True, symbolic=False, seed=0)


def test_the_estimate_is_the_first_points():
    """Degree 1 where x0 <= 0 and a mixture where x0 > 0: the estimate reported is the first point's."""
    m = model(1, lambda p, x: dot(p, x) + ops.relu(x[0]) * dot(p, x) ** 2)
    for seed in range(50):
        xs = [x for _, x, _ in H._numeric_points(m, np.random.default_rng(seed))]
        if xs[0][0] < 0 and max(x[0] for x in xs) > 0:
            break
    ok, estimate, message = H._numeric_check(m, "w", 1.0, np.random.default_rng(seed))
    assert ok is False and estimate == pytest.approx(1.0, abs=1e-12)


# ---- models with K outputs: the margins are contrasts g_a - g_b of the outputs (a != b) -----------------------
def outputs_model(K, output, name="k"):
    return Model(name, [Block.array("W", (K, 2), degree=1)], input_dim=2, output=output, outputs=K, verify=False)


def shifted(K):
    """g_k = W_k . x + (W_0 . x)^2: every contrast g_a - g_b = (W_a - W_b) . x is 1-homogeneous, no output is."""
    return outputs_model(K, lambda p, x: [ops.dot(p["W"][k], x) + ops.dot(p["W"][0], x) ** 2 for k in range(K)],
                         name="shifted")


def opposite():
    """g = (W_0 . x + s, W_0 . x - s), s = (W_1 . x)^2: the sum 2 W_0 . x is 1-homogeneous, the contrasts +-2 s
    are not."""
    return outputs_model(2, lambda p, x: [ops.dot(p["W"][0], x) + ops.dot(p["W"][1], x) ** 2,
                                          ops.dot(p["W"][0], x) - ops.dot(p["W"][1], x) ** 2], name="opposite")


def test_the_labels_of_a_k_output_model_are_contrasts_of_two_distinct_classes():
    for seed in range(10):
        for K in (2, 3, 5):
            c = H._label_point(outputs_model(K, lambda p, x: [p["W"][0][0]] * K), np.random.default_rng(seed), float)
            assert c.dtype == float and c.shape == (K,)
            assert sorted(c.tolist()) == [-1.0] + [0.0] * (K - 2) + [1.0]
            s = H._label_point(outputs_model(K, lambda p, x: [p["W"][0][0]] * K), np.random.default_rng(seed),
                               sp.Integer)
            assert s.dtype == object and sorted(s.tolist()) == [-1] + [0] * (K - 2) + [1]
            assert all(isinstance(v, sp.Integer) for v in s)


def test_a_k_output_model_is_judged_by_its_contrasts():
    """A common non-homogeneous term of all outputs cancels in every margin (homogeneous as declared); outputs
    whose sum is homogeneous but whose contrasts are not fail, numerically and symbolically."""
    for K in (2, 3):
        for seed in range(4):
            report = H.check_homogeneity(shifted(K), seed=seed)
            (check,) = report.blocks
            assert report.ok and check.numeric_ok is True and check.symbolic_ok is True, (K, seed, check)
            assert check.estimated == pytest.approx(1.0, rel=1e-9)
            # all of theta symbolic (any label c, not only contrasts) fails; the contrasts at rational points hold
            assert check.symbolic_method == "symbolic in rho at 3 random rational points"
    for seed in range(4):
        (check,) = H.check_homogeneity(opposite(), seed=seed).blocks
        assert check.numeric_ok is False and check.estimated == pytest.approx(2.0, rel=1e-9), (seed, check)
        assert H.symbolic_check(opposite(), "W", 1.0, seed) == (False, "symbolic in rho at 3 random rational points")
        assert H.symbolic_check(shifted(3), "W", 1.0, seed) == (True, "symbolic in rho at 3 random rational points")
        assert H.symbolic_check(shifted(3), "W", 2.0, seed)[0] is False


def test_a_model_object_without_n_outputs_is_a_single_output_model():
    """Model objects written before K outputs (duck-typed, no ``n_outputs``) are checked with labels +-1."""

    class Legacy:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            if name == "n_outputs":
                raise AttributeError(name)
            return getattr(self._inner, name)

    assert not hasattr(Legacy(model(3, cubic)), "n_outputs")
    assert all(H._label_point(Legacy(model(3, cubic)), np.random.default_rng(s), float) in (1.0, -1.0)
               for s in range(5))
    report = H.check_homogeneity(Legacy(model(3, cubic)))
    assert report.ok and report.blocks[0].numeric_ok is True and report.blocks[0].symbolic_ok is True
    (check,) = H.check_homogeneity(Legacy(model(2, cubic)), symbolic=False).blocks
    assert check.numeric_ok is False and check.estimated == pytest.approx(3.0, rel=1e-9)
