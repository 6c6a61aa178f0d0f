"""The structured decisions of max_margin (lexmargin/problems/maxmargin.py): the deep linear closed form is used
only where it applies and only when certified, its multipliers map exactly (mu = lambda s^(2 - 2L): no finish
needed, equal to multipliers fitted independently), its status is decided by its own certificate; the Hessian
diagonal of linear sources, and margin_nlp's shortcuts (all rows of a linear source, identity lifts) evaluate
to the general definitions."""

import numpy as np
import pytest

import lexmargin as lm
from lexmargin import Dataset
from lexmargin.nlp.finish import fit_multipliers
from lexmargin.nlp.norms import OBJECTIVE, PartialL2, get_norm
from lexmargin.problems import maxmargin as M
from lexmargin.problems.margins import end_to_end


def separable(n=30, d=3, seed=0, gap=0.3):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    X = rng.standard_normal((n, d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    return Dataset(X + gap * y[:, None] * w, y)


# ---- the deep linear closed form -------------------------------------------------------------------------------
@pytest.mark.parametrize("depth,width", [(2, 2), (3, 2)])
def test_deep_linear_closed_form_is_exact_and_certified(depth, width):
    data = separable(seed=depth)
    model = lm.load_model("deep_linear", input_dim=3, depth=depth, width=width)
    cert = lm.max_margin(model, data)
    assert cert.status == "optimal" and cert.solver.name == "closed_form" and cert.solver.status == "optimal"
    assert cert.solver.message == M.DEEP_LINEAR_MESSAGE and cert.solver.return_status == M.CLOSED_FORM
    assert cert.kkt.max <= 1e-10 and not cert.finish.applied           # the multipliers map exactly
    linear = lm.max_margin(lm.load_model("linear", input_dim=3), data)
    beta = end_to_end(model, cert.theta)
    np.testing.assert_allclose(beta, linear.theta, rtol=1e-12, atol=1e-12 * np.max(np.abs(linear.theta)))
    s = np.linalg.norm(linear.theta) ** (1.0 / depth)
    np.testing.assert_allclose(cert.multipliers, linear.multipliers * s ** (2 - 2 * depth), rtol=1e-9,
                               atol=1e-12 * np.max(linear.multipliers))
    # and they are the multipliers the NNLS fit finds on the model's own NLP
    problem = lm.MaxMarginProblem(model, data)
    nlp = M.margin_nlp(problem.source, problem.lift, np.arange(data.n_samples))
    fitted = fit_multipliers(nlp, problem.lift.start(problem.source.to_scaled(cert.theta)))[:data.n_samples]
    assert cert.objective == pytest.approx(depth * np.linalg.norm(linear.theta) ** (2 / depth), rel=1e-12)
    assert cert.objective == pytest.approx(float(cert.theta @ cert.theta), rel=1e-12)
    starts = cert.diagnostics.starts
    assert len(starts) == 1 and starts[0].status == "optimal" and starts[0].iterations == 0
    assert starts[0].objective == pytest.approx(cert.objective, rel=1e-12)
    assert starts[0].kkt_max == cert.kkt.max
    np.testing.assert_allclose(fitted, cert.multipliers, rtol=1e-8, atol=1e-10 * np.max(cert.multipliers))


def test_deep_linear_multipliers_in_the_models_units():
    data = separable(seed=4)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    base = lm.max_margin(model, data)
    for scale in (2.0 ** -20, 2.0 ** 20):
        cert = lm.max_margin(model, Dataset(data.X * scale, data.y))
        assert cert.solver.name == "closed_form" and cert.success
        # margins are homogeneous of degree 2 in theta and 1 in x: theta ~ scale^-1/2, lambda ~ scale^-1
        np.testing.assert_allclose(cert.multipliers * scale, base.multipliers, rtol=1e-8,
                                   atol=1e-10 * base.multipliers.max())


def test_closed_form_applies_only_to_deep_linear_l2_without_init_or_starts():
    data = separable(seed=6)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    problem = lm.MaxMarginProblem(model, data)
    assert problem._deep_linear_widths(lm.SolveOptions()) == (2,)
    assert problem._deep_linear_widths(lm.SolveOptions(starts=2)) is None
    assert problem._deep_linear_widths(lm.SolveOptions(init=np.ones(model.n_params))) is None
    assert lm.MaxMarginProblem(model, data, norm="l1")._deep_linear_widths(lm.SolveOptions()) is None
    assert lm.MaxMarginProblem(model, data, structure="general")._deep_linear_widths(lm.SolveOptions()) is None
    deeper = lm.MaxMarginProblem(lm.load_model("deep_linear", input_dim=3, depth=3, width=4), data)
    assert deeper._deep_linear_widths(lm.SolveOptions()) == (4, 4)
    two_layer = lm.MaxMarginProblem(lm.load_model("two_layer", input_dim=3, width=2), data)
    assert two_layer._deep_linear_widths(lm.SolveOptions()) is None
    fast = lm.max_margin(model, data)
    for kwargs in ({"starts": 2}, {"init": fast.theta * 3.0}, {"structure": "general"}):
        cert = lm.max_margin(model, data, **kwargs)
        assert cert.solver.name == "ipopt" and cert.success
        assert cert.objective == pytest.approx(fast.objective, rel=1e-8)


def test_closed_form_is_used_only_when_certified(monkeypatch):
    data = separable(seed=5)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    right = lm.max_margin(model, data)
    real = M.balanced_factorization
    monkeypatch.setattr(M, "balanced_factorization", lambda *a: 1.3 * real(*a))
    problem = lm.MaxMarginProblem(model, data)
    candidate = problem._deep_linear((2,), lm.SolveOptions(finish=False), 0.0)
    assert candidate.status == "inaccurate" and candidate.solver.name == "closed_form"
    cert = lm.max_margin(model, data)
    assert cert.success and cert.solver.name == "ipopt" and len(cert.diagnostics.starts) == 5
    assert cert.objective == pytest.approx(right.objective, rel=1e-8)


def test_closed_form_needs_an_optimal_nonzero_linear_solution(monkeypatch):
    data = separable(seed=7)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    problem = lm.MaxMarginProblem(model, data)
    solve = lm.MaxMarginProblem.solve
    calls = []

    def zero(self, *args, **kwargs):
        cert = solve(self, *args, **kwargs)
        calls.append(cert)
        from dataclasses import replace
        return replace(cert, theta=np.zeros_like(cert.theta))

    monkeypatch.setattr(lm.MaxMarginProblem, "solve", zero)
    assert problem._deep_linear((2,), lm.SolveOptions(), 0.0) is None and calls and calls[0].success


def test_not_separable_deep_linear_is_reported_without_the_closed_form():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 2))
    data = Dataset(X, np.sign(X[:, 0] * X[:, 1] + 1e-12))
    problem = lm.MaxMarginProblem(lm.load_model("deep_linear", input_dim=2, depth=2, width=2), data)
    assert problem._deep_linear((2,), lm.SolveOptions(), 0.0) is None
    with pytest.raises(lm.NoSeparatingPointError):
        lm.max_margin(lm.load_model("deep_linear", input_dim=2, depth=2, width=2), data, max_iter=200)


# ---- the Hessian of linear sources and margin_nlp's shortcuts -----------------------------------------------------
def test_objective_hessian_diagonal_equals_the_lifts_hessian():
    z = np.array([0.5, -1.0, 2.0])
    for norm in (get_norm("l2"), PartialL2(free=(1,)), get_norm("l1"), get_norm("linf"), get_norm("lp", 3.0)):
        lift = norm.lift(OBJECTIVE, 3)
        zz = lift.start(z)
        np.testing.assert_array_equal(M._objective_hessian_diagonal(lift, zz), np.diag(lift.objective_hessian(zz)))
    assert M._objective_hessian_diagonal(PartialL2(free=(1,)).lift(OBJECTIVE, 3), z).tolist() == [2.0, 0.0, 2.0]
    assert M._objective_hessian_diagonal(get_norm("l2").lift(OBJECTIVE, 3), z).tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("norm", ["l2", "l1", "linf"])
def test_margin_nlp_on_all_rows_equals_its_definition(norm):
    data = separable(n=8, d=3, seed=2)
    problem = lm.MaxMarginProblem(lm.load_model("linear", input_dim=3), data, norm=norm)
    source, lift = problem.source, problem.lift
    rng = np.random.default_rng(0)
    z = lift.start(rng.standard_normal(3))
    everything = M.margin_nlp(source, lift, np.arange(8))
    permuted = M.margin_nlp(source, lift, np.array([3, 1, 0, 2, 4, 5, 6, 7]))
    a, b = everything.evaluate(z), permuted.evaluate(z)
    order = np.array([3, 1, 0, 2, 4, 5, 6, 7])
    theta = lift.theta(z)
    np.testing.assert_allclose(a.values[:8], source.A @ theta - 1.0, rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(b.values[:8], a.values[order])
    np.testing.assert_array_equal(b.values[8:], a.values[8:])
    np.testing.assert_array_equal(b.jacobian[:8], a.jacobian[order])
    np.testing.assert_array_equal(b.jacobian[8:], a.jacobian[8:])
    np.testing.assert_array_equal(a.jacobian[:8], lift.pull_back(source.A))
    assert a.jacobian.shape == (everything.m, lift.n)
    np.testing.assert_array_equal(a.levels, b.levels)
    lam = rng.random(everything.m)
    np.testing.assert_array_equal(everything.hessian(z, None, lam), np.diag(lift.objective_hessian(z)))
    assert everything.hessian_diagonal


def test_deep_linear_certificate_field_by_field():
    from lexmargin.nlp.finish import NOT_NEEDED

    data = separable(seed=2)
    model = lm.load_model("deep_linear", input_dim=3, depth=2, width=2)
    cert = lm.max_margin(model, data)
    assert cert.solver.name == "closed_form"
    assert cert.finish.reason == NOT_NEEDED and cert.diagnostics.working_set_rounds == 1
    assert cert.diagnostics.working_set_size == data.n_samples
    assert cert.solver.iterations == 0 and 0.0 <= cert.solver.seconds < 60.0
    # the inner linear solve gets the caller's options: with no iteration and no finish it fails, and the closed form
    # with it (the finish alone, from IPOPT's starting point, reaches the vertex here)
    problem = lm.MaxMarginProblem(model, data)
    assert problem._deep_linear((2,), lm.SolveOptions(max_iter=0, finish=False), 0.0) is None
    assert problem._deep_linear((2,), lm.SolveOptions(max_iter=0), 0.0).status == "optimal"
