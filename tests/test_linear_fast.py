"""The dual route of linear l2 max-margin problems (lexmargin/problems/dual.py): exact against Clarabel at tight
tolerances on random, scaled, tall and wide data, with and without an unregularized bias; the automatic choice
of route; fallbacks and proofs; the certificate stays the pipeline's own."""

import cvxpy as cp
import numpy as np
import pytest
from exact_reference import exact_max_margin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lexmargin as lm
from lexmargin import Dataset, NotSeparableError
from lexmargin.problems import dual as D
from lexmargin.problems.svm_bias import SVMBiasQP, svm_with_bias_qp

TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10}
PROPERTY = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def planted(n, d, seed=0, gap=0.3, shift=0.0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    X = rng.standard_normal((n, d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    return Dataset(X + gap * y[:, None] * w + shift, y)


def clarabel(data, bias=False, positive=False):
    w = cp.Variable(data.n_features)
    b = cp.Variable() if bias else 0.0
    constraints = [cp.multiply(data.y, data.X @ w + b) >= 1]
    if positive:
        constraints.append(b >= 0)
    cp.Problem(cp.Minimize(cp.sum_squares(w)), constraints).solve(solver="CLARABEL", **TIGHT)
    return np.append(w.value, b.value) if bias else np.asarray(w.value)


def relative(theta, reference):
    return float(np.max(np.abs(theta - reference)) / np.max(np.abs(reference)))


def linear(d):
    return lm.load_model("linear", input_dim=d)


def assert_dual_optimal(cert):
    assert cert.status == "optimal" and cert.kkt.max <= 1e-12, (cert.status, cert.kkt)
    assert cert.solver.name == "dual_active_set"


# ---- through the origin -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,d", [(60, 5), (1500, 8), (30, 400), (40, 39), (120, 59), (3, 2000)])
def test_equals_clarabel_through_the_origin(n, d):
    """Tall (NNLS working set), wide (Gram matrix, all rows support vectors), N ~ 2 (d + 1) (a singular Gram
    matrix: block principal pivoting, then Lawson-Hanson)."""
    data = planted(n, d, seed=n + d)
    cert = lm.max_margin(linear(d), data)
    assert_dual_optimal(cert)
    assert relative(cert.theta, clarabel(data)) < 1e-8
    # the support is linearly independent (a vertex) and carries the multipliers: 2 theta = sum lambda_n y_n x_n
    A = data.y[:, None] * data.X
    np.testing.assert_allclose(A.T @ cert.multipliers, 2 * cert.theta, rtol=1e-10, atol=1e-12 * np.abs(cert.theta).max())
    assert cert.licq.holds and np.all(cert.margins >= 1 - 1e-12)


@pytest.mark.parametrize("scale", [1e-6, 1e6])
def test_scaled_data(scale):
    data = planted(80, 6, seed=3)
    base = lm.max_margin(linear(6), data)
    cert = lm.max_margin(linear(6), Dataset(data.X * scale, data.y))
    assert_dual_optimal(cert)
    np.testing.assert_allclose(cert.theta * scale, base.theta, rtol=1e-10)
    np.testing.assert_allclose(cert.multipliers * scale ** 2, base.multipliers, rtol=1e-8,
                               atol=1e-10 * base.multipliers.max())
    assert relative(cert.theta * scale, clarabel(data)) < 1e-8    # (Clarabel itself is inaccurate at 1e6)


def test_same_certificate_as_ipopt():
    data = planted(200, 7, seed=4)
    fast = lm.max_margin(linear(7), data)
    slow = lm.max_margin(linear(7), data, route="ipopt")
    assert_dual_optimal(fast)
    assert slow.solver.name == "ipopt" and slow.success
    np.testing.assert_allclose(fast.theta, slow.theta, atol=1e-10 * np.abs(slow.theta).max())
    assert list(fast.support) == list(slow.support) and fast.licq == slow.licq
    np.testing.assert_allclose(fast.multipliers, slow.multipliers, atol=1e-8 * slow.multipliers.max())
    d = fast.diagnostics
    assert d.working_set_size == 200 and len(d.starts) == 1 and d.starts[0].kkt_max == fast.kkt.max


def test_degenerate_active_set_comes_out_exact():
    """docs/certificates.md: three active rows in R^2, one outside the support."""
    data = Dataset([[1, 0], [1, 5], [-1, -3], [4, 1]], [1, 1, -1, 1])
    cert = lm.max_margin(linear(2), data)
    assert_dual_optimal(cert)
    assert cert.theta[0] == pytest.approx(1.0, abs=1e-15) and abs(cert.theta[1]) < 1e-15
    assert not cert.licq.holds and cert.licq.n_active == 3


def test_duplicated_and_parallel_rows():
    data = planted(50, 4, seed=5)
    X = np.vstack([data.X, data.X[:10], 3.0 * data.X[:5]])
    y = np.concatenate([data.y, data.y[:10], data.y[:5]])
    doubled = Dataset(X, y)
    cert = lm.max_margin(linear(4), doubled)
    assert_dual_optimal(cert)
    assert relative(cert.theta, clarabel(data)) < 1e-8


@PROPERTY
@given(seed=st.integers(0, 10_000), n=st.integers(2, 7), d=st.integers(1, 12), exponent=st.integers(-30, 30))
def test_property_equals_the_exact_reference(seed, n, d, exponent):
    """Against every active set tried in 60-digit arithmetic (tests/exact_reference.py), tall and wide, at any
    scale."""
    data = planted(n, d, seed=seed)
    data = Dataset(data.X * 2.0 ** exponent * 1.7, data.y)
    cert = lm.max_margin(linear(d), data)
    assert cert.success and cert.kkt.max <= 1e-10
    theta, _ = exact_max_margin(data.y[:, None] * data.X)
    assert relative(cert.theta, theta) < 1e-10


@PROPERTY
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), d=st.integers(1, 30))
def test_property_equals_clarabel(seed, n, d):
    data = planted(n, d, seed=seed)
    cert = lm.max_margin(linear(d), data)
    assert cert.success and cert.kkt.max <= 1e-10
    assert relative(cert.theta, clarabel(data)) < 1e-7      # Clarabel's own accuracy at 1e-12 tolerances


# ---- with an unregularized bias -----------------------------------------------------------------------------
@pytest.mark.parametrize("n,d,shift", [(80, 5, 0.0), (1200, 6, 0.0), (40, 300, 0.0), (70, 4, 20.0), (25, 120, 5.0)])
def test_svm_with_bias_equals_clarabel(n, d, shift):
    data = planted(n, d, seed=n, shift=shift)
    cert = SVMBiasQP(data).solve()
    assert_dual_optimal(cert)
    assert relative(cert.theta, clarabel(data, bias=True)) < 1e-8
    w, b, result = svm_with_bias_qp(data)
    assert result.route == "qp" and result.success and result.qp.solver.name == "dual_active_set"
    np.testing.assert_allclose(np.append(w, b), cert.theta, atol=1e-12 * np.abs(cert.theta).max())


def test_svm_with_a_positive_bias():
    """b >= 0 on data separable through the origin, moved along the max-margin direction: binding when the
    unconstrained bias is negative (then b = 0 exactly), slack otherwise."""
    base = planted(60, 3, seed=8)
    direction = clarabel(base) / np.linalg.norm(clarabel(base))
    signs = set()
    for shift in (0.2, -0.2):
        data = Dataset(base.X + shift * direction, base.y)
        cert = SVMBiasQP(data, positive=True).solve()
        assert_dual_optimal(cert)
        assert relative(cert.theta, clarabel(data, bias=True, positive=True)) < 1e-8
        free = clarabel(data, bias=True)
        signs.add(bool(free[-1] < 0))
        if free[-1] < 0:
            assert cert.theta[-1] == 0.0
            assert any(r.kind == "bias_sign" and r.active for r in cert.rows)
        else:
            assert cert.theta[-1] == pytest.approx(free[-1], rel=1e-8)
    assert signs == {True, False}


@PROPERTY
@given(seed=st.integers(0, 10_000), n=st.integers(4, 40), d=st.integers(1, 25), shift=st.floats(-3, 3))
def test_property_svm_with_bias_equals_clarabel(seed, n, d, shift):
    data = planted(n, d, seed=seed, shift=shift)
    if np.all(data.y == data.y[0]):
        return
    cert = SVMBiasQP(data).solve()
    assert cert.success and cert.kkt.max <= 1e-10
    assert relative(cert.theta, clarabel(data, bias=True)) < 1e-8


# ---- the choice of route ------------------------------------------------------------------------------------
def test_route_is_chosen_automatically():
    data = planted(40, 3, seed=1)
    assert lm.max_margin(linear(3), data).solver.name == "dual_active_set"
    assert lm.max_margin(linear(3), data, route="ipopt").solver.name == "ipopt"
    assert lm.max_margin(linear(3), data, route="dual").solver.name == "dual_active_set"
    # IPOPT's own point (finish=False), IPOPT's working set, smooth norms other than l2: IPOPT's route; polyhedral
    # norms: the LP route (HiGHS)
    assert lm.max_margin(linear(3), data, finish=False).solver.name == "ipopt"
    assert lm.max_margin(linear(3), data, working_set=lm.WorkingSetOptions(enabled=True)).solver.name == "ipopt"
    assert lm.max_margin(linear(3), data, norm=lm.get_norm("lp", p=3.0)).solver.name == "ipopt"
    assert lm.max_margin(linear(3), data, norm="l1").solver.name == "highs"
    assert lm.max_margin(linear(3), data, norm="linf").solver.name == "highs"
    assert lm.max_margin(linear(3), data, norm="l1", finish=False).solver.name == "ipopt"
    with pytest.raises(ValueError, match="route"):
        lm.max_margin(linear(3), data, route="simplex")
    with pytest.raises(ValueError, match="l2"):
        lm.max_margin(linear(3), data, norm="linf", route="dual")


def test_dual_applies_only_to_linear_l2():
    data = planted(20, 3, seed=2)
    assert D.dual_applies(lm.MaxMarginProblem(linear(3), data))
    assert not D.dual_applies(lm.MaxMarginProblem(linear(3), data, norm="l1"))
    assert not D.dual_applies(lm.MaxMarginProblem(lm.load_model("two_layer", input_dim=3, width=2), data))


def test_iteration_and_time_limits():
    data = planted(300, 6, seed=3)
    stopped = lm.max_margin(linear(6), data, max_iter=0, route="dual", raise_on_failure=False)
    assert stopped.status == "max_iterations" and stopped.solver.iterations == 0
    timed = lm.max_margin(linear(6), data, time_limit=1e-9, route="dual", raise_on_failure=False)
    assert timed.status in ("max_time", "optimal")
    result = D.least_distance(data.y[:, None] * data.X, np.ones(300), time_limit=0.0)
    assert result.status == "max_time"


def mixed_units_svm_data():
    """300 samples in R^5 with features in units 10^U(-4, 4) and a margin gap of 3e-3 (a seed of the hunt of
    2026-12-02 on nearly inseparable data): the free QP's active set cycled here through its 3000 iterations
    (0.9 s) where IPOPT takes 13 iterations."""
    rng = np.random.default_rng(103)
    N, d = int(rng.choice([30, 100, 300, 1000, 3000])), int(rng.choice([2, 5, 10, 50, 200]))
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    X = rng.standard_normal((N, d))
    y = np.where(X @ w + rng.standard_normal() * 0.5 >= 0, 1.0, -1.0)
    rng.random()                        # the hunt's draw for one-class data (not taken at this seed)
    X += np.outer(y * 10.0 ** rng.uniform(-9, 0), w)
    spread = rng.choice([0, 2, 4, 6])
    X = X * 10.0 ** rng.uniform(-spread, spread, d) * 10.0 ** rng.uniform(-4, 4)
    return Dataset(X, y)


def test_a_cycling_active_set_stops_as_stalled(monkeypatch):
    """A passive set seen before ends the free QP's loop as "stalled": with the bordered solve made to reject every
    row that joins (as rounding did on data in mixed units), the loop returns to the same passive set at once and
    stops there instead of running to max_iter; on the hunt's data the QP route still ends certified (IPOPT after the
    dual route)."""
    data = mixed_units_svm_data()
    A, r = D.dual_rows(SVMBiasQP(data).source, data.n_features + 1)       # the QP's rows as the dual route sees them
    solved = D.least_distance(A, r, free=(A.shape[1] - 1,))
    assert solved.status in ("optimal", "stalled") and solved.iterations < 100
    w, b, result = lm.svm_with_bias(data)
    assert result.success and result.route == "qp"
    bordered = D._bordered

    def rejecting(L, rhs, C):
        z, nu = bordered(L, rhs, C)
        if z.size > 1:
            z = z.copy()
            z[-1] = -abs(z[-1]) - 1.0          # the row that joined last leaves again
        return z, nu

    monkeypatch.setattr(D, "_bordered", rejecting)
    cycled = D.least_distance(A, r, free=(A.shape[1] - 1,), max_iter=500)
    assert cycled.status == "stalled" and cycled.iterations < 10


# ---- fallbacks and proofs -----------------------------------------------------------------------------------
def test_not_separable_data_gets_a_farkas_proof():
    xor = Dataset([[1, 1], [-1, -1], [1, -1], [-1, 1]], [1, 1, -1, -1])
    result = D.least_distance(xor.y[:, None] * xor.X, np.ones(4))
    assert result.status == "inconsistent"
    with pytest.raises(NotSeparableError) as info:
        lm.max_margin(linear(2), xor)
    assert info.value.certificate.diagnostics.farkas is not None
    forced = lm.max_margin(linear(2), xor, route="dual", raise_on_failure=False)
    assert not forced.success
    # with a bias: three collinear points labelled +, -, +
    line = Dataset([[0.0], [1.0], [2.0]], [1, -1, 1])
    with pytest.raises(NotSeparableError):
        lm.svm_with_bias(line)


def test_least_distance_modes_agree():
    data = planted(90, 30, seed=6)
    A, r = data.y[:, None] * data.X, np.ones(90)
    rows = D.least_distance(A, r, full_gram=False)
    gram = D.least_distance(A, r, full_gram=True)
    assert rows.converged and gram.converged and not rows.full_gram and gram.full_gram
    np.testing.assert_allclose(rows.theta, gram.theta, atol=1e-10 * np.abs(gram.theta).max())
    assert set(rows.passive) == set(gram.passive)
    # free coordinates: the SVM's bias column, either mode
    Ab = np.hstack([A, data.y[:, None]])
    one = D.least_distance(Ab, r, free=(30,), full_gram=False)
    two = D.least_distance(Ab, r, free=(30,), full_gram=True)
    np.testing.assert_allclose(one.theta, two.theta, atol=1e-9 * np.abs(two.theta).max())
    assert relative(one.theta, clarabel(data, bias=True)) < 1e-8


def test_one_blas_thread_without_threadpoolctl(monkeypatch):
    from lexmargin.nlp import threads

    monkeypatch.setattr(threads, "_CONTROLLER", [None])
    with threads.single_blas_thread():
        cert = lm.max_margin(linear(3), planted(30, 3))
    assert cert.success


def test_linear_margins_from_the_input_affine_structure_equal_the_models_jacobian():
    """``linear_margins`` builds A from beta's Jacobian; LinearMargins from the model's N-mapped gradient: same
    prescaled problem, attribute by attribute (a linear model, a scaled and permuted one with an offset, tiny and
    huge data)."""
    from lexmargin.problems.margins import LinearMargins

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4))
    y = np.sign(rng.standard_normal(30))
    mixed = lm.Model("mixed", [lm.Block.array("w", 4, 1)], input_dim=4,
                     output=lambda p, x: 3.0 * p.w[0] * x[2] - p.w[1] * x[0] + 0.5 * p.w[3] * x[3] + p.w[2])
    for model in (linear(4), mixed):
        for scale in (1.0, 1e-30, 1e30):
            data = Dataset(X * scale, y)
            fast, slow = D.linear_margins(model, data), LinearMargins(model, data)
            assert type(fast) is LinearMargins
            for name in ("A", "c", "scale_exponent", "n_samples", "column_scale"):
                a, b = getattr(fast, name), getattr(slow, name)
                if b is None:
                    assert a is None, name
                else:
                    np.testing.assert_allclose(a, b, rtol=1e-15, atol=0, err_msg=name)
    # a model without an output (a custom margin): the model's own Jacobian
    custom = lm.Model("custom", [lm.Block.array("w", 4, 1)], input_dim=4, margin=lambda p, x, y: y * (p.w @ x))
    assert np.array_equal(D.linear_margins(custom, Dataset(X, y)).A, LinearMargins(custom, Dataset(X, y)).A)


@pytest.mark.parametrize("sign", ["both", "positive"])
def test_svm_bias_stage_hessian_is_the_diagonal_of_the_stage_nlps_own(sign):
    from lexmargin.problems.depth import stage_nlp
    from lexmargin.problems.svm_bias import BiasModelFunctions, _diagonal_stage

    data = planted(20, 3, seed=3)
    fns = BiasModelFunctions(data, sign)
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(fns.n_params)
    lam = rng.random(20)
    for free, objective in ((np.arange(fns.n_params), np.arange(3)), (np.arange(3, fns.n_params),
                                                                      np.arange(3, fns.n_params))):
        nlp = stage_nlp(fns, data, free, objective, theta)
        diagonal = _diagonal_stage(nlp, fns, data, free, objective)
        assert diagonal.hessian_diagonal and not nlp.hessian_diagonal
        full = nlp.hessian(theta[free], None, lam)
        np.testing.assert_array_equal(np.diag(diagonal.hessian(theta[free], None, lam)), full)
