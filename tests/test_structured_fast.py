"""Structured formulations (lexmargin.problems.margins, maxmargin, paths): models affine in their input, the deep
linear max-margin closed form, lifted IPOPT forms, the homogeneous margin path and the epigraph constrained path
equal the general formulations (and cvxpy + Clarabel where the problem is convex).  Speed is measured by the
perf suite (benchmarks/perf_structured.py), not here."""

import warnings

import cvxpy as cp
import numpy as np
import pytest

import lexmargin as lm
from lexmargin import Block, Dataset, Model, NoSeparatingPointError, ops
from lexmargin.errors import LexmarginError
from lexmargin.problems import maxmargin as mm_module
from lexmargin.problems.margins import (
    InputAffineMargins,
    ModelMargins,
    balanced_factorization,
    deep_linear_widths,
    end_to_end,
    input_affine,
    model_margins,
)
from lexmargin.problems.maxmargin import max_margin
from lexmargin.problems.paths import constrained_path, direction_distance, margin_path


def separable(n=40, d=3, seed=0, gap=0.3):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    X = rng.standard_normal((n, d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    return Dataset(X + gap * y[:, None] * w, y)


def svm(data):
    """The l2 max-margin solution through the origin (cvxpy + Clarabel, tight)."""
    A = data.y[:, None] * data.X
    w = cp.Variable(A.shape[1])
    cp.Problem(cp.Minimize(cp.sum_squares(w)), [A @ w >= 1]).solve(
        solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return w.value


def diagonal_net(d):
    """f = y sum_i (u_i^2 - v_i^2) x_i: affine in x, degree 2 (not a chain of matrices)."""
    return Model("diagonal", [Block("u", {"u": (d,)}, 2), Block("v", {"v": (d,)}, 2)], input_dim=d,
                 summands={"u": lambda p, x: ops.dot(p.u * p.u, x), "v": lambda p, x: -ops.dot(p.v * p.v, x)})


# ---- the input-affine source -----------------------------------------------------------------------
@pytest.mark.parametrize("name, options", [("deep_linear", {"depth": 2}), ("deep_linear", {"depth": 3, "width": 2}),
                                           ("svm_bias", {}), ("linear", {}), (None, {})])
def test_input_affine_source_equals_the_model(name, options):
    data = separable(12, 3, seed=1)
    model = diagonal_net(3) if name is None else lm.load_model(name, input_dim=3, **options)
    source, general = model_margins(model, data), ModelMargins(model, data)
    assert isinstance(source, InputAffineMargins)
    assert source.has_offset == (name == "svm_bias")
    rng = np.random.default_rng(2)
    for _ in range(3):
        theta, w = rng.standard_normal(model.n_params), rng.random(data.n_samples)
        index = np.array([1, 4, 7])
        np.testing.assert_allclose(source.values(theta), general.values(theta), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(source.values(theta, index), general.values(theta, index), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(source.jacobian(theta), general.jacobian(theta), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(source.weighted_hessian(theta, slice(None), w),
                                   general.weighted_hessian(theta, slice(None), w), rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(source.weighted_hessian(theta, index, w[:3]),
                                   general.weighted_hessian(theta, index, w[:3]), rtol=1e-11, atol=1e-11)


def test_the_weighted_hessian_is_built_only_where_it_is_used():
    """CasADi's symbolic Hessian of a deep net's beta(theta) grows like width^6 (36 s for a depth-3 linear net of width
    60, minutes at 100): the structure detection leaves it unbuilt, the closed form of a net with more than
    SECOND_ORDER_MAX_SIZE parameters never builds it, and a small net's second-order check builds it once."""
    wide = lm.load_model("deep_linear", input_dim=40, depth=3)           # 3240 parameters
    data = separable(30, 40, seed=3)
    cert = max_margin(wide, data)
    assert cert.success and cert.solver.name == "closed_form"
    assert input_affine(wide)[4]._function is None
    small = lm.load_model("deep_linear", input_dim=3, depth=3)
    assert input_affine(small)[4]._function is None
    cert = max_margin(small, separable(12, 3, seed=1))
    assert cert.second_order.checked
    built = input_affine(small)[4]._function
    assert built is not None and input_affine(small)[4]._function is built


@pytest.mark.parametrize("name, options", [("two_layer", {}), ("log_predictor", {})])
def test_models_not_affine_in_their_input_keep_the_general_source(name, options):
    model = lm.load_model(name, input_dim=2, **options)
    assert input_affine(model) is None
    assert isinstance(model_margins(model, separable(5, 2)), ModelMargins)
    with pytest.raises(LexmarginError, match="unknown structure"):
        model_margins(model, separable(5, 2), "fast")


def test_deep_linear_widths_and_balanced_factorization():
    data = separable(10, 4)
    for depth, width in ((2, 4), (3, 3), (4, 2)):
        model = lm.load_model("deep_linear", input_dim=4, depth=depth, width=width)
        widths = deep_linear_widths(model, model_margins(model, data))
        assert widths == (width,) * (depth - 1)
        beta = np.array([1.0, -2.0, 0.5, 3.0])
        theta = balanced_factorization(model, beta, widths)
        np.testing.assert_allclose(end_to_end(model, theta), beta, rtol=1e-14)
        # every layer has norm ||beta||^(1/L): ||theta||^2 = L ||beta||^(2/L), the AM-GM lower bound
        assert theta @ theta == pytest.approx(depth * np.linalg.norm(beta) ** (2 / depth), rel=1e-14)
    assert deep_linear_widths(diagonal_net(4), model_margins(diagonal_net(4), data)) is None
    assert deep_linear_widths(lm.load_model("svm_bias", input_dim=4), model_margins(
        lm.load_model("svm_bias", input_dim=4), data)) is None


# ---- deep linear max-margin: the closed form ---------------------------------------------------------
@pytest.mark.parametrize("depth, width", [(2, 3), (3, 2)])
def test_deep_linear_closed_form_equals_the_general_route(depth, width):
    data = separable(40, 3, seed=depth)
    model = lm.load_model("deep_linear", input_dim=3, depth=depth, width=width)
    fast = max_margin(model, data)
    general = max_margin(model, data, structure="general", starts=3)
    assert fast.success and fast.kkt.max < 1e-8 and fast.solver.name == "closed_form"
    assert general.success and general.solver.name == "ipopt"
    assert fast.objective == pytest.approx(general.objective, rel=1e-8)
    assert fast.objective <= general.objective * (1 + 1e-12)            # the global minimum
    np.testing.assert_allclose(np.sort(fast.margins), np.sort(general.margins), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(fast.multipliers, general.multipliers, rtol=1e-6, atol=1e-8 * fast.multipliers.max())
    # the end-to-end vector is the linear max-margin solution (cvxpy + Clarabel)
    np.testing.assert_allclose(end_to_end(model, fast.theta), svm(data), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(end_to_end(model, general.theta), svm(data), rtol=1e-7, atol=1e-7)
    assert fast.objective == pytest.approx(depth * np.linalg.norm(svm(data)) ** (2 / depth), rel=1e-9)


def test_closed_form_candidate_that_is_not_certified_falls_back_to_ipopt(monkeypatch):
    """The closed form is only a candidate: a wrong one (here scaled off the margin constraints) is judged by its
    certificate and the random starts run as before."""
    data = separable(30, 3, seed=5)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    right = max_margin(model, data)
    real = mm_module.balanced_factorization
    monkeypatch.setattr(mm_module, "balanced_factorization", lambda *a: 1.3 * real(*a))
    cert = max_margin(model, data)
    assert cert.success and cert.solver.name == "ipopt" and len(cert.diagnostics.starts) == 5
    assert cert.objective == pytest.approx(right.objective, rel=1e-8)


def test_closed_form_only_without_init_starts_or_other_norms():
    data = separable(30, 3, seed=6)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    fast = max_margin(model, data)
    assert fast.solver.name == "closed_form" and len(fast.diagnostics.starts) == 1
    for kwargs in ({"starts": 2}, {"init": fast.theta * 3.0}, {"structure": "general"}):
        cert = max_margin(model, data, **kwargs)
        assert cert.solver.name == "ipopt" and cert.success
        assert cert.objective == pytest.approx(fast.objective, rel=1e-8)
    assert max_margin(model, data, norm="l1").solver.name == "ipopt"
    with pytest.raises(lm.ModelError, match="unknown structure"):
        max_margin(model, data, structure="fast")


def test_deep_linear_not_separable_is_still_reported_without_proof():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 2))
    data = Dataset(X, np.sign(X[:, 0] * X[:, 1] + 1e-12))     # XOR-like: no linear separator
    model = lm.load_model("deep_linear", input_dim=2, depth=2, width=2)
    with pytest.raises(NoSeparatingPointError):
        max_margin(model, data)


def test_lifted_ipopt_route_equals_the_direct_one():
    """Random starts of an input-affine model: IPOPT on the lifted NLP (margins A u, links u = beta(theta)) gives
    the same certified points as IPOPT on the direct NLP."""
    data = separable(30, 3, seed=7)
    model = diagonal_net(3)
    lifted = max_margin(model, data, starts=2, seed=1)
    direct = max_margin(model, data, starts=2, seed=1, structure="general")
    assert lifted.success and direct.success
    assert lifted.objective == pytest.approx(direct.objective, rel=1e-8)
    np.testing.assert_allclose(lifted.theta ** 2, direct.theta ** 2, rtol=1e-6, atol=1e-8)   # u, v up to sign


# ---- paths -----------------------------------------------------------------------------------------


def cvxpy_constrained(data, rho):
    """argmin_{||theta|| <= 1} log sum_n exp(-rho y_n x_n.theta) (convex), Clarabel at tight tolerances."""
    A = data.y[:, None] * data.X
    theta = cp.Variable(A.shape[1])
    with warnings.catch_warnings():    # "may be inaccurate": Clarabel's reduced accuracy, still ~1e-9 here
        warnings.simplefilter("ignore", UserWarning)
        cp.Problem(cp.Minimize(cp.log_sum_exp(-rho * A @ theta)), [cp.sum_squares(theta) <= 1]).solve(
            solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12, tol_ktratio=1e-13, max_iter=400)
    return theta.value


def test_homogeneous_margin_path_certifies_its_first_point_at_every_rho():
    data = separable(30, 3, seed=8)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    rhos, init = [1.0, 3.0, 10.0, 1000.0], model.random_params(seed=2)
    fast = margin_path(model, data, rhos, init=init)
    general = margin_path(model, data, rhos, init=init, structure="general")
    assert [p.certificate.solver.name for p in fast.points] == ["ipopt"] + ["previous_point"] * 3
    assert all(p.certificate.solver.name == "ipopt" for p in general.points)
    assert all(p.certificate.success and p.certificate.kkt.max < 1e-8 for p in fast.points)
    np.testing.assert_allclose(fast.margins / np.power(rhos, 2), general.margins / np.power(rhos, 2), rtol=1e-9)
    for a, b in zip(fast.points, general.points):       # the same point up to the net's symmetries
        assert direction_distance(end_to_end(model, a.theta), end_to_end(model, b.theta)) < 1e-7
        assert a.certificate.normalized_margin == pytest.approx(b.certificate.normalized_margin, rel=1e-9)
    np.testing.assert_allclose(fast.thetas, np.tile(fast.thetas[0], (4, 1)), rtol=0, atol=1e-12)


def test_deep_linear_margin_path_without_init_starts_from_the_closed_form():
    """No init: the first point is the normalized deep linear max-margin solution (the global one), certified on the
    margin-path NLP; IPOPT from the seeded random start reaches the same value and end-to-end direction."""
    data = separable(30, 3, seed=12)
    model = lm.load_model("deep_linear", input_dim=3, depth=3, width=2)
    rhos = [1.0, 5.0]
    fast = margin_path(model, data, rhos)
    general = margin_path(model, data, rhos, structure="general")
    assert [p.certificate.solver.name for p in fast.points] == ["max_margin", "previous_point"]
    assert all(p.certificate.success and p.certificate.kkt.max < 1e-8 for p in fast.points)
    for a, b in zip(fast.points, general.points):
        assert a.certificate.normalized_margin == pytest.approx(b.certificate.normalized_margin, rel=1e-8)
        assert a.margin >= b.margin * (1 - 1e-12)
        assert direction_distance(end_to_end(model, a.theta), end_to_end(model, b.theta)) < 1e-7
    assert direction_distance(end_to_end(model, fast.points[0].theta), svm(data)) < 1e-8


def test_linear_margin_path_is_the_max_margin_direction_certified_without_ipopt():
    data = separable(60, 4, seed=9)
    model = lm.load_model("linear", input_dim=4)
    rhos = [1.0, 2.0, 50.0]
    fast = margin_path(model, data, rhos)
    general = margin_path(model, data, rhos, structure="general")
    assert [p.certificate.solver.name for p in fast.points] == ["max_margin", "previous_point", "previous_point"]
    direction = svm(data) / np.linalg.norm(svm(data))
    np.testing.assert_allclose(fast.thetas, np.tile(direction, (3, 1)), atol=1e-9)
    np.testing.assert_allclose(fast.thetas, general.thetas, atol=1e-7)
    assert all(p.certificate.kkt.max < 1e-8 for p in fast.points)
    # an init, or another ball norm (flat max-margin sets), keeps IPOPT's own point
    assert margin_path(model, data, [1.0], init=direction).points[0].certificate.solver.name == "ipopt"
    assert margin_path(model, data, [1.0], norm="linf").points[0].certificate.solver.name == "ipopt"


RHOS = [1.0, 4.0, 16.0, 64.0]


def test_linear_constrained_path_epigraph_equals_lse_and_clarabel():
    data = separable(50, 3, seed=10)
    model = lm.load_model("linear", input_dim=3)
    fast = constrained_path(model, data, RHOS)
    before = constrained_path(model, data, RHOS, formulation="lse", structure="general")
    assert fast.success and before.success
    np.testing.assert_allclose(fast.thetas, before.thetas, atol=1e-8)
    for point in fast.points:
        np.testing.assert_allclose(point.theta, cvxpy_constrained(data, point.parameter), atol=1e-8)
        assert point.lemma2_holds and point.lemma3_holds
        assert point.certificate.kkt.max < 1e-8
        assert point.certificate.objective == pytest.approx(
            lm.problems.logspace.logsumexp(-model.margins(point.parameter * point.theta, data)), rel=1e-12)
    np.testing.assert_allclose(fast.lemma3_gaps, before.lemma3_gaps, rtol=1e-7, atol=1e-9)


def test_deep_linear_constrained_path_epigraph_equals_lse():
    data = separable(25, 3, seed=11)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    init = model.random_params(seed=3)
    fast = constrained_path(model, data, [1.0, 10.0, 100.0], init=init)
    before = constrained_path(model, data, [1.0, 10.0, 100.0], init=init, formulation="lse", structure="general")
    assert fast.success and before.success
    for a, b in zip(fast.points, before.points):
        assert a.certificate.normalized_margin == pytest.approx(b.certificate.normalized_margin, rel=1e-8)
        assert a.certificate.objective == pytest.approx(b.certificate.objective, rel=1e-8, abs=1e-10)
        assert direction_distance(end_to_end(model, a.theta), end_to_end(model, b.theta)) < 1e-8


def test_general_model_constrained_path_lifted_epigraph_equals_lse():
    """A model not affine in its input (log predictor): IPOPT sees one lifted margin per sample with the
    exponentials in a row (diagonal Hessian), the certificate the (theta, t) epigraph."""
    data = Dataset(np.array([[2.0, 0.3], [1.0, 1.5], [1.5, -0.5], [3.0, 1.0]]), np.ones(4))
    model = lm.load_model("log_predictor", input_dim=2, eps=1.0)
    init = np.array([0.8, 0.6])
    rhos = [1.0, 1e3, 1e6]
    fast = constrained_path(model, data, rhos, init=init)
    before = constrained_path(model, data, rhos, init=init, formulation="lse", structure="general")
    assert fast.success and before.success
    np.testing.assert_allclose(fast.thetas, before.thetas, atol=1e-8)


def test_bad_formulation_is_rejected():
    model = lm.load_model("linear", input_dim=3)
    with pytest.raises(LexmarginError, match="formulation"):
        constrained_path(model, separable(10, 3), [1.0], formulation="dense")
    with pytest.raises(LexmarginError, match="unknown structure"):
        margin_path(model, separable(10, 3), [1.0], structure="fast")
