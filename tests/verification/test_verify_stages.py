"""Staged problems: lexicographic max-margin (lexmargin.problems.lexicographic) fixes the samples with a
positive multiplier at their level as equality rows, and depth-sensitive stages (lexmargin.problems.depth)
keep earlier blocks exactly; every stage NLP's numpy evaluation is the NLP IPOPT solves."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from verify_helpers import assert_nlp_matches_expressions, three_class_points

import lexmargin as lm
from lexmargin import Block, Model, ops
from lexmargin.errors import LexmarginError, ModelError, SolverError
from lexmargin.nlp.norms import BALL, get_norm
from lexmargin.nlp.status import Status
from lexmargin.problems import depth as D
from lexmargin.problems import lexicographic as L

LINEAR2 = lm.load_model("linear", input_dim=2)
LINEAR3 = lm.load_model("linear", input_dim=3)
LINEAR4 = lm.load_model("linear", input_dim=4)
DEEP = lm.load_model("deep_linear", input_dim=2, depth=2, width=2)
# linf ball, f = w . x: margins w1, 2 + w2, 2.5 - 2 w2; lexicographic solution w = (1, 1/6), levels 1, 13/6
LINF_X = np.array([[1.0, 0.0], [2.0, 1.0], [2.5, -2.0]])
LINF = lm.Dataset(LINF_X, np.ones(3))


@pytest.fixture      # not module-scoped: mutation testing associates a test with the code it runs
def linf_lex():
    return L.lexicographic_max_margin(LINEAR2, LINF, norm="linf")


def test_stages_fix_samples_at_their_levels(linf_lex):
    first, second = linf_lex.stages
    assert (first.k, first.fixed, second.k, second.fixed) == (1, (0,), 2, (1, 2))
    assert first.level == pytest.approx(1.0, abs=1e-8) and second.level == pytest.approx(13 / 6, abs=1e-8)
    np.testing.assert_allclose(linf_lex.theta, [1.0, 1 / 6], atol=1e-8)
    np.testing.assert_allclose(linf_lex.levels, [1.0, 13 / 6], atol=1e-8)
    np.testing.assert_allclose(linf_lex.sorted_margins, [1.0, 13 / 6, 13 / 6], atol=1e-8)
    for stage in linf_lex.stages:
        cert = stage.certificate
        assert cert.status == Status.OPTIMAL and cert.kkt.max <= 1e-8
        np.testing.assert_allclose(cert.margins[list(stage.fixed)], stage.level, atol=1e-8)
        np.testing.assert_allclose(cert.objective, stage.level, rtol=1e-15)
    # the second stage holds sample 0 at level 1 as an equality row, not as "value - tol"
    cert = second.certificate
    rows = {r.kind: r for r in cert.rows}
    assert rows["fixed_margin"].size == 1 and rows["fixed_margin"].equality and rows["fixed_margin"].active == 1
    assert rows["margin"].size == 2
    assert cert.margins[0] == pytest.approx(1.0, abs=1e-8)
    d = cert.diagnostics
    assert (d.rho, d.fixed_before, d.fixed_now) == (1.0, (0,), (1, 2))
    assert d.margin_scale == pytest.approx(1.0, abs=1e-8)          # |tau_1*| of the margin path
    assert d.level == pytest.approx(13 / 6) and first.certificate.diagnostics.fixed_before == ()
    assert cert.problem == "lexicographic_stage_2" and first.certificate.problem == "lexicographic_stage_1"
    assert cert.norm == "linf" and "held at their levels (equalities)" in cert.constraints
    assert linf_lex.success and linf_lex.unique and linf_lex.norm == "linf" and linf_lex.rho == 1.0


def test_stage_multipliers_sum_to_one(linf_lex):
    """max tau: d tau / d tau = 1 = sum of the free rows' multipliers (in scaled margins)."""
    for stage in linf_lex.stages:
        cert = stage.certificate
        free = [n for n in range(3) if n not in cert.diagnostics.fixed_before]
        assert sum(cert.multipliers[free]) == pytest.approx(1.0, abs=1e-10)
        assert set(stage.fixed) == {n for n in free if cert.multipliers[n] > 1e-9}


def test_width_of_the_remaining_solution_set(linf_lex):
    """After stage 1 the solutions are {w1 = 1, -1 <= w2 <= 3/4}: its ends along the random direction are the
    segment's end points, 1.75 apart in theta; the margin 2.5 - 2 w2 moves by 3.5 between them (sigma = 1)."""
    first = linf_lex.stages[0]
    assert first.width == pytest.approx(3.5, abs=1e-8)
    assert not first.unique and np.isnan(linf_lex.stages[1].width)      # every sample fixed: not measured


def test_uniqueness_tolerance_and_stage_limit():
    loose = L.lexicographic_max_margin(LINEAR2, LINF, norm="linf", uniqueness_tol=10.0)
    assert len(loose.stages) == 1 and loose.unique and loose.stages[0].width < 10.0
    one = L.lexicographic_max_margin(LINEAR2, LINF, norm="linf", max_stages=1)
    assert len(one.stages) == 1 and not one.unique


def test_a_strict_second_order_stage_is_unique():
    l2 = L.lexicographic_max_margin(LINEAR2, LINF, norm="l2")
    (stage,) = l2.stages
    assert stage.unique and stage.certificate.second_order.strict is True and np.isnan(stage.width)
    np.testing.assert_allclose(l2.theta @ l2.theta, 1.0, atol=1e-8)


def test_stage_at_another_rho_and_margin_scale():
    big = lm.Dataset(LINF_X * 100.0, np.ones(3))
    r = L.lexicographic_max_margin(LINEAR2, big, norm="linf", rho=2.0)
    assert r.rho == 2.0 and r.stages[0].certificate.diagnostics.margin_scale == pytest.approx(200.0)
    np.testing.assert_allclose(r.theta, [1.0, 1 / 6], atol=1e-8)
    np.testing.assert_allclose(r.levels, [200.0, 200.0 * 13 / 6], rtol=1e-8)
    for stage in r.stages:
        d = stage.certificate.diagnostics
        assert d.level == pytest.approx(stage.level, rel=1e-15) and d.rho == 2.0
        cert = stage.certificate
        # margins are f(rho theta); the normalized margin is min f(theta) / ||theta||_2 (degree 1)
        assert cert.normalized_margin == pytest.approx(LINEAR2.margins(cert.theta, big).min()
                                                       / np.linalg.norm(cert.theta), rel=1e-12)


def test_stage_options_and_failures_are_reported():
    """IPOPT's iteration limit reaches every stage: 7 iterations are enough for the margin path and stage 1,
    not for stage 2 (measured)."""
    with pytest.raises(lm.SolverError, match="^lexicographic stage 2 ended max_iterations"):
        L.lexicographic_max_margin(LINEAR2, LINF, norm="linf", max_iter=7)
    r = L.lexicographic_max_margin(LINEAR2, LINF, norm="linf", max_iter=7, raise_on_failure=False)
    assert r.stages[-1].certificate.status == Status.MAX_ITERATIONS and not r.success
    # the width solves get the same limit: they stop short, and an unsettled width is nan (not shown unique)
    assert r.stages[0].certificate.success and np.isnan(r.stages[0].width) and not r.stages[0].unique


def test_final_stage_without_strict_second_order_is_unique_because_all_are_fixed():
    """l1 ball, margins w1 + w2 and 2 w1 + w2: stage 1 fixes sample 0 on a face (not strict), stage 2 fixes
    sample 1: every sample fixed, so the stages end unique without a width measurement."""
    r = L.lexicographic_max_margin(LINEAR2, lm.Dataset(np.array([[1.0, 1.0], [2.0, 1.0]]), np.ones(2)), norm="l1")
    last = r.stages[-1]
    assert last.unique and np.isnan(last.width) and set(sum((s.fixed for s in r.stages), ())) == {0, 1}
    np.testing.assert_allclose(r.theta, [1.0, 0.0], atol=1e-8)


def test_width_below_one_and_along_a_polygon():
    """A short segment: w1 = 1, -0.2 <= w2 <= 0.75, 0.95 long in theta; the margin 2.5 - 2 w2 moves by 1.9 along
    it (relative to the first level 1): the width is the larger."""
    X = np.array([[1.0, 0.0], [1.2, 1.0], [2.5, -2.0]])
    r = L.lexicographic_max_margin(LINEAR2, lm.Dataset(X, np.ones(3)), norm="linf", max_stages=1)
    assert r.stages[0].width == pytest.approx(1.9, abs=1e-8)
    loose = L.lexicographic_max_margin(LINEAR2, lm.Dataset(X, np.ones(3)), norm="linf", uniqueness_tol=1.899)
    assert not loose.stages[0].unique
    loose = L.lexicographic_max_margin(LINEAR2, lm.Dataset(X, np.ones(3)), norm="linf", uniqueness_tol=1.901)
    assert loose.stages[0].unique and len(loose.stages) == 1
    # 3-d: w1 = 1 and (w2, w3) in the square cut by w2 + w3 >= -1 (a pentagon): the ends along d are the vertices
    # minimizing and maximizing d . w; the width is their distance or the largest move of a margin between them
    X3 = np.array([[1.0, 0.0, 0.0], [2.0, 1.0, 1.0], [5.0, 0.0, 0.0]])
    linear3 = lm.load_model("linear", input_dim=3)
    r = L.lexicographic_max_margin(linear3, lm.Dataset(X3, np.ones(3)), norm="linf", max_stages=1, seed=1)
    d = np.random.default_rng(1).standard_normal(3)
    d /= np.linalg.norm(d)
    vertices = np.array([[1, 1, 1], [1, 1, -1], [1, -1, 1], [1, 0, -1], [1, -1, 0]], dtype=float)
    low, high = vertices[np.argmin(vertices @ d)], vertices[np.argmax(vertices @ d)]
    expected = max(np.linalg.norm(high - low), np.max(np.abs(X3 @ (high - low))))
    assert r.stages[0].width == pytest.approx(expected, abs=1e-7)


def test_sum_smallest():
    assert L.sum_smallest([3.0, 1.0, 2.0, -1.0], 2) == 0.0 and L.sum_smallest([3, 1], 5) == 4.0
    assert L.sum_smallest([], 1) == 0.0


DEEP3 = lm.load_model("deep_linear", input_dim=2, depth=3, width=2)     # trilinear: a theta-dependent Hessian


@pytest.mark.parametrize("norm", ["l2", "linf", "l1"])
def test_stage_and_width_nlps_match_their_expressions(norm):
    lift = get_norm(norm).lift(BALL, DEEP3.n_params)
    DEEP = DEEP3
    stages = L._Stages(DEEP, lm.Dataset(LINF_X, np.ones(3)), lift, 1.5, 2.0)
    rng = np.random.default_rng(0)
    z = np.abs(rng.standard_normal(lift.n)) * 0.3
    free, fixed, levels = np.array([0, 2]), np.array([1]), np.array([0.7])
    nlp = stages.nlp(free, fixed, levels)
    assert nlp.name == "lex_stage" and nlp.n == lift.n + 1 and nlp.parameters == 0
    assert [(r.kind, r.size, r.equality) for r in nlp.rows][:2] == [("margin", 2, False), ("fixed_margin", 1, True)]
    assert nlp.rows[0].samples.tolist() == [0, 2] and nlp.rows[1].samples.tolist() == [1]
    assert np.isinf(nlp.lower[-1]) and np.isinf(nlp.upper[-1])
    tau = 0.25
    point = assert_nlp_matches_expressions(nlp, np.append(z, tau), rng.standard_normal(nlp.m))
    F = DEEP.margins(1.5 * lift.theta(z), stages.data) / 2.0
    np.testing.assert_allclose(point.values[:3], [F[0] - tau, F[2] - tau, F[1] - 0.7])
    np.testing.assert_allclose(stages.scaled_margins(lift.theta(z)), F)
    # each margin row's level: its own terms (|F_n|, the epigraph variable or fixed level, |dF_n| . |z|), at least
    # LEVEL_FLOOR of the rows' common scale
    dF = lift.pull_back(1.5 * DEEP.margin_jacobian(1.5 * lift.theta(z), stages.data) / 2.0)
    order = [0, 2, 1]                                  # the rows: free samples 0, 2, then the fixed sample 1
    own = np.maximum(np.maximum(np.abs(F), np.abs(dF) @ np.abs(z))[order], [tau, tau, 0.7])
    np.testing.assert_allclose(point.levels[:3], own, rtol=1e-12)
    high = nlp.evaluate(np.append(z, 50.0), None)
    assert high.levels[0] == high.levels[1] == 50.0      # the epigraph variable's size counts
    assert high.levels[2] == point.levels[2]
    assert nlp.theta(np.append(z, tau)).tolist() == lift.theta(z).tolist()
    width = stages.nlp(free, fixed, levels, width=True, tau=tau)
    assert width.name == "lex_width" and width.n == lift.n and width.parameters == DEEP.n_params
    r = rng.standard_normal(DEEP.n_params)
    point = assert_nlp_matches_expressions(width, z, rng.standard_normal(width.m), p=r)
    assert point.objective == pytest.approx(r @ lift.theta(z))
    np.testing.assert_allclose(point.values[:2], F[[0, 2]] - tau)


def test_lexicographic_argument_checks():
    with pytest.raises(LexmarginError, match="rho must be a finite positive number"):
        L.lexicographic_max_margin(LINEAR2, LINF, rho=0.0)
    with pytest.raises(LexmarginError, match="uniqueness_tol must be positive"):
        L.lexicographic_max_margin(LINEAR2, LINF, uniqueness_tol=0.0)
    with pytest.raises(LexmarginError, match="max_stages must be between 1 and N=3"):
        L.lexicographic_max_margin(LINEAR2, LINF, max_stages=4)


# ---- depth-sensitive stages -------------------------------------------------------------------------------
def svm_data():
    X = np.array([[2.0, 1.0], [3.0, 0.0], [1.0, 3.0], [0.0, 4.0]])
    return lm.Dataset(X, np.array([1.0, 1.0, -1.0, -1.0]))


@pytest.fixture
def svm():
    return D.svm_with_bias(svm_data())


def test_depth_stage_certificates_and_failures():
    model = lm.load_model("svm_bias", input_dim=2, sign="both")
    result = D.depth_sensitive(model, svm_data())
    first, second = (s.certificate for s in result.stages)
    assert (first.problem, second.problem) == ("depth_sensitive_w", "depth_sensitive_b")
    assert first.norm == second.norm == "l2" and first.normalized_margin is None
    assert first.constraints == "f_n(w) >= 1, shallower blocks fixed at their stage solutions; minimizing ||w||^2"
    two = shallow_plus_diagonal()
    grouped = D.depth_sensitive(Model("two", [Block.array("w", 2, degree=1), Block.array("u", 2, degree=2),
                                              Block.array("v", 2, degree=2)], input_dim=2, summands={
        "w": lambda p, x: ops.dot(p["w"], x), "u": lambda p, x: ops.dot(p["u"] * p["u"], x),
        "v": lambda p, x: ops.dot(p["v"] * p["v"], x)}), svm_data(), raise_on_failure=False)
    assert grouped.stages[1].certificate.problem == "depth_sensitive_u+v"
    assert grouped.stages[1].certificate.constraints.endswith("minimizing ||u+v||^2")
    assert two.n_params == 6
    with pytest.raises(lm.SolverError, match=r"^depth-sensitive stage for blocks \('w',\) ended max_iterations"):
        D.depth_sensitive(model, svm_data(), max_iter=0)
    stopped = D.depth_sensitive(model, svm_data(), options=lm.SolveOptions(max_iter=0, raise_on_failure=False))
    assert stopped.stages[0].certificate.status == Status.MAX_ITERATIONS


def test_svm_with_bias_is_the_hard_margin_svm(svm):
    """Support (2, 1) and (1, 3) on opposite sides: w = (1, -2) / 2.5, b = 0 ... checked against the KKT
    conditions of min ||w||^2 s.t. y_n (w.x_n + b) >= 1 directly."""
    w, b, result = svm
    data = svm_data()
    margins = data.y * (data.X @ w + b)
    assert margins.min() == pytest.approx(1.0, abs=1e-10)
    support = np.nonzero(margins < 1 + 1e-8)[0]
    # KKT: w = sum lam_n y_n x_n / 1 (2 w = sum 2 ... with f = y(w.x + b)), sum lam_n y_n = 0, lam >= 0
    A = np.vstack([(data.y[:, None] * data.X)[support].T, data.y[support]])
    lam = np.linalg.lstsq(A, np.append(2 * w, 0.0), rcond=None)[0]
    assert np.all(lam > -1e-9) and np.allclose(A @ lam, np.append(2 * w, 0.0), atol=1e-9)
    assert result.success and [s.blocks for s in result.stages] == [("w",), ("b",)]


def test_later_stages_keep_earlier_blocks_exactly(svm):
    _, _, result = svm
    model = lm.load_model("svm_bias", input_dim=2, sign="both")
    first, second = result.stages
    w_slice = model.block_slice("w")
    assert np.array_equal(first.certificate.theta[w_slice], second.certificate.theta[w_slice])
    d1, d2 = first.certificate.diagnostics, second.certificate.diagnostics
    assert (d1.blocks, d1.free_parameters, d1.fixed_blocks) == (("w",), 4, ())
    assert (d2.blocks, d2.free_parameters, d2.fixed_blocks) == (("b",), 2, ("w",))
    assert first.value == pytest.approx(first.certificate.theta[w_slice] @ first.certificate.theta[w_slice])
    assert first.degree == 1.0 and second.degree == 2.0 and not first.discarded
    for stage in result.stages:
        assert stage.certificate.status == Status.OPTIMAL and stage.certificate.kkt.max <= 1e-8
        assert stage.certificate.margins.min() >= 1 - 1e-9
    assert result.block_names == ("w", "b")
    theta = result.theta
    assert result.block_squared_norms == pytest.approx(tuple(float(np.sum(theta[model.block_slice(b)] ** 2))
                                                             for b in ("w", "b")))


def test_an_unneeded_block_is_discarded_exactly():
    """Symmetric data: the bias stage's optimum is b = 0, fixed at exactly 0."""
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    w, b, result = D.svm_with_bias(lm.Dataset(X, np.array([1.0, -1.0, 1.0, -1.0])))
    second = result.stages[1]
    assert second.discarded and result.discarded == ("b",) and b == 0.0
    model = lm.load_model("svm_bias", input_dim=2, sign="both")
    assert np.all(result.theta[model.block_slice("b")] == 0.0)
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-9)
    kept = D.depth_sensitive(model, lm.Dataset(X, np.array([1.0, -1.0, 1.0, -1.0])), zero_tol=0.0)
    assert kept.stages[1].value <= 1e-10
    with pytest.raises(LexmarginError, match="zero_tol must be >= 0"):
        D.depth_sensitive(model, lm.Dataset(X, np.array([1.0, -1.0, 1.0, -1.0])), zero_tol=-1.0)


def shallow_plus_diagonal(d=2):
    return Model("linear+diagonal", [Block.array("w", d, degree=1), Block("deep", {"u": (d,), "v": (d,)}, degree=2)],
                 input_dim=d, summands={"w": lambda p, x: ops.dot(p["w"], x),
                                        "deep": lambda p, x: ops.dot(p["u"] * p["v"], x)})


def cubic_blocks(d=2):
    return Model("linear+cubic", [Block.array("w", d, degree=1), Block("deep", {"u": (d,), "v": (d,)}, degree=3)],
                 input_dim=d, summands={"w": lambda p, x: ops.dot(p["w"], x),
                                        "deep": lambda p, x: ops.dot(p["u"] * p["v"] * p["v"], x)})


def test_stage_nlp_matches_its_expressions_and_fixes_the_other_parameters():
    model = cubic_blocks()
    data = svm_data()
    rng = np.random.default_rng(3)
    base = 0.1 * rng.standard_normal(model.n_params)       # every |theta_j| < 1: no floor at 1 in g~
    free = np.array([2, 3, 4, 5])
    objective = np.array([2, 4])
    nlp = D.stage_nlp(model, data, free, objective, base)
    assert nlp.n == 4 and nlp.m == 4 and nlp.rows[0].samples.tolist() == [0, 1, 2, 3]
    assert nlp.name == "depth_stage" and nlp.rows[0].kind == "margin"
    z = 0.1 * rng.standard_normal(4)
    point = assert_nlp_matches_expressions(nlp, z, rng.standard_normal(4))
    theta = nlp.theta(z)
    assert theta[:2].tolist() == base[:2].tolist() and theta[2:].tolist() == z.tolist()
    assert point.objective == pytest.approx(theta[2] ** 2 + theta[4] ** 2)
    np.testing.assert_allclose(point.values, model.margins(theta, data) - 1.0)
    # g~: the size of grad ||w_k||^2 at the scale of the parameters (zero outside the objective's entries)
    np.testing.assert_allclose(point.gradient_scale, 2 * np.max(np.abs(theta)) * np.array([1.0, 0.0, 1.0, 0.0]))
    assert point.levels.tolist() == [1.0] * 4


def test_block_groups_and_indices():
    model = shallow_plus_diagonal()
    assert D.block_groups(model) == [(1, ("w",)), (2, ("deep",))]
    svm_model = lm.load_model("svm_bias", input_dim=2, sign="both")
    assert D.block_groups(svm_model) == [(1, ("w",)), (2, ("b",))]
    assert D._indices(svm_model, ("b",)).tolist() == [2, 3]
    assert D._indices(svm_model, ("b", "w")).tolist() == [2, 3, 0, 1]
    three = Model("three", [Block.array("a", 1, degree=2), Block.array("w", 2, degree=1),
                            Block.array("c", 1, degree=2)],
                  input_dim=2, summands={"a": lambda p, x: p["a"][0] ** 2 * x[0], "w": lambda p, x: ops.dot(p["w"], x),
                                         "c": lambda p, x: p["c"][0] ** 2 * x[1]})
    assert D.block_groups(three) == [(1, ("w",)), (2, ("a", "c"))]
    assert D._indices(model, ("deep",)).tolist() == [2, 3, 4, 5]
    with pytest.raises(ModelError, match="is not declared as a sum of blocks"):
        D.block_groups(LINEAR2)
    nodeg = Model("nodeg", [Block.array("w", 2, degree=1), Block.array("c", 1)], input_dim=2,
                  summands={"w": lambda p, x: ops.dot(p["w"], x), "c": lambda p, x: p["c"][0] * 1.0})
    with pytest.raises(ModelError, match=r"blocks \['c'\] of model 'nodeg' have no homogeneity degree"):
        D.block_groups(nodeg)


def test_depth_sensitive_on_a_deep_block():
    """f = y (w.x + (u*v).x): the diagonal block separates the data on its own, so min ||w||^2 = 0 in stage 1:
    w is discarded (exactly 0) and held there while stage 2 minimizes ||(u, v)||^2."""
    model = shallow_plus_diagonal()
    result = D.depth_sensitive(model, svm_data())
    first, second = result.stages
    assert [s.blocks for s in result.stages] == [("w",), ("deep",)] and result.success
    assert first.discarded and not second.discarded and result.discarded == ("w",)
    assert np.all(second.certificate.theta[:2] == 0.0) and np.all(result.theta[:2] == 0.0)
    assert second.certificate.margins.min() == pytest.approx(1.0, abs=1e-9)
    assert second.value == pytest.approx(float(result.theta[2:] @ result.theta[2:]))


def test_three_stages_keep_every_earlier_level():
    """linf ball, f = w.x with x = (1,0,0), (2,1,0), (3,0,1): levels 1, 3, 4; after stage 1 the solutions are the
    square w = (1, s, t), |s|, |t| <= 1 (ends along d: opposite corners, 2 sqrt 2 apart); after stage 2 the segment
    w = (1, 1, t), 0 <= t <= 1 (length 1, margin 3 + t moves by 1), measured with sample 0 held at its own, lower,
    level."""
    linear3 = lm.load_model("linear", input_dim=3)
    X = np.array([[1.0, 0.0, 0.0], [2.0, 1.0, 0.0], [3.0, 0.0, 1.0]])
    r = L.lexicographic_max_margin(linear3, lm.Dataset(X, np.ones(3)), norm="linf")
    assert [s.fixed for s in r.stages] == [(0,), (1,), (2,)]
    np.testing.assert_allclose(r.levels, [1.0, 3.0, 4.0], atol=1e-8)
    assert r.stages[0].width == pytest.approx(2 * np.sqrt(2), abs=1e-7)
    assert r.stages[1].width == pytest.approx(1.0, abs=1e-7)
    third = r.stages[2].certificate
    np.testing.assert_allclose(third.margins, [1.0, 3.0, 4.0], atol=1e-8)
    assert {k.kind: k.size for k in third.rows}["fixed_margin"] == 2
    np.testing.assert_allclose(r.theta, [1.0, 1.0, 1.0], atol=1e-8)


def test_all_samples_fixed_ends_unique_even_with_free_directions_left():
    """3-d linf ball, two samples: after stage 2 every sample is fixed but w3 is still free (the stage is not
    strict): the lexicographic vector is determined, so the result is unique; no width is measured."""
    linear3 = lm.load_model("linear", input_dim=3)
    r = L.lexicographic_max_margin(linear3, lm.Dataset(np.array([[1.0, 0.0, 0.0], [2.0, 1.0, 0.0]]), np.ones(2)),
                                   norm="linf")
    last = r.stages[-1]
    assert [s.fixed for s in r.stages] == [(0,), (1,)] and last.certificate.second_order.strict is not True
    assert last.unique and r.unique and np.isnan(last.width)


def test_lexicographic_stages_of_a_multiclass_model_name_each_rows_sample_and_class():
    """K = 3 classes: every stage certificate has one row per (n, j != y_n), in the order of margin_rows; the
    binary stages have none."""
    model, data, X, y, pairs = three_class_points()
    result = L.lexicographic_max_margin(model, data)
    assert result.stages
    for stage in result.stages:
        cert = stage.certificate
        assert cert.status == Status.OPTIMAL and cert.margin_rows.tolist() == pairs
        assert cert.multipliers.size == cert.margins.size == len(pairs)
        W = cert.theta.reshape(3, 2)
        np.testing.assert_allclose(cert.margins, [(W[y[n]] - W[j]) @ X[n] for n, j in pairs], rtol=1e-9, atol=1e-12)
    assert all(s.certificate.margin_rows is None for s in L.lexicographic_max_margin(LINEAR2, LINF, norm="linf").stages)


def test_stage_nlps_mark_margins_linear_in_theta_so_the_finish_always_runs():
    """``NLP.linear_margins``: True for a model linear in theta (degree 1: the finish runs on every IPOPT point of
    its stages), False for a deep net; the same for the width NLP."""
    for model, linear in ((lm.load_model("linear", input_dim=2), True), (DEEP3, False)):
        lift = get_norm("l2").lift(BALL, model.n_params)
        stages = L._Stages(model, lm.Dataset(LINF_X, np.ones(3)), lift, 1.5, 2.0)
        for width in (False, True):
            nlp = stages.nlp(np.array([0, 2]), np.array([1]), np.array([0.7]), width=width)
            assert nlp.linear_margins is linear


@pytest.mark.parametrize("fixed_row", [0, 1, 2])
def test_stage_margin_rows_share_one_common_scale(fixed_row):
    """Rows whose own terms vanish (theta = 0, tau = 0, a fixed level 0) are judged at LEVEL_FLOOR of the common scale
    of ALL margin rows, free and fixed alike (as on the margin path): the largest row gradient, whichever group it is
    in (here the sample 100 times longer than the others)."""
    from lexmargin.problems.paths import LEVEL_FLOOR
    X = np.array([[1.0, 0.0], [100.0, 0.0], [0.0, 1.0]])
    lift = get_norm("l2").lift(BALL, LINEAR2.n_params)
    stages = L._Stages(LINEAR2, lm.Dataset(X, np.ones(3)), lift, 1.0, 1.0)
    free = np.array([n for n in range(3) if n != fixed_row])
    nlp = stages.nlp(free, np.array([fixed_row]), np.array([0.0]))
    point = nlp.evaluate(np.zeros(nlp.n), None)
    np.testing.assert_allclose(point.levels[:3], LEVEL_FLOOR * 100.0, rtol=1e-12)


def test_a_stage_point_hidden_by_cancelling_multipliers_is_not_certified():
    """l1 lexicographic max-margin, 8 integer samples in R^3 (found by the 2026-12-02 hunt): stage 3 holds samples 1,
    4, 6 at level 1 by three equality rows of rank 2; IPOPT left multipliers of +-8e16, -4e16, 1.3e17 on them, whose
    terms hid a residual of 0.9 of the objective's gradient, and the stage's worst point (level -3 where 1.5 is
    attained at theta = (1/2, -1/2, 0)) was certified optimal.  Measured with the multipliers without their rows'
    exact dependency, it is not; any stage certified optimal reaches the best level."""
    X = np.array([[-2., 2, 0], [-1, -3, 1], [-2, 1, 3], [3, -3, 0], [-2, 0, -1], [3, -1, 1], [0, -2, 1], [-3, 1, -3]])
    y = np.array([-1., 1, -1, 1, -1, 1, 1, -1])
    result = L.lexicographic_max_margin(LINEAR3, lm.Dataset(X, y), norm="l1", max_stages=3,
                                        options=lm.SolveOptions(raise_on_failure=False))
    third = result.stages[2]
    assert third.certificate.status != "optimal" or third.level >= 1.5 - 1e-9
    assert [s.certificate.status for s in result.stages[:2]] == ["optimal", "optimal"]


def test_stage_gradient_scale_stops_at_the_size_that_moves_a_margin():
    """g~_j = 2 max(|z_j|, ||z_B||_inf, min(size, 1 / max_n |J_nj|)) on the objective's columns B, 0 elsewhere."""
    J = np.array([[4.0, -0.5, 0.0, 3.0, 1e-3],
                  [-2.0, 0.25, 0.0, 1.0, 0.0]])
    objective = np.array([0, 1, 2, 4])
    # the block at rounding level (||z_B||_inf = 1e-9): unit 1/4 below the size: 2/4; unit 2: 2 * 2; zero column
    # (unit inf): the size; unit 1000 above the size 100: the size; column 3 is not in the objective
    z = np.array([1e-9, -1e-9, 1e-9, 7.0, 1e-9])
    scale = D.stage_gradient_scale(z, J, objective, 100.0)
    np.testing.assert_allclose(scale, [0.5, 4.0, 200.0, 0.0, 200.0], rtol=0, atol=0)
    # the block's own size 5 lifts every component of it (units 1/4 and 2 below it); the others as before
    z = np.array([0.1, 0.1, 1e-9, 7.0, -5.0])
    scale = D.stage_gradient_scale(z, J, objective, 100.0)
    np.testing.assert_allclose(scale, [10.0, 10.0, 200.0, 0.0, 200.0], rtol=0, atol=0)
    # |z_j| above every floor counts as itself
    assert D.stage_gradient_scale(np.array([9.0]), np.array([[4.0]]), np.array([0]), 1.0).tolist() == [18.0]
    # no rows: the size, as before any Jacobian exists
    assert D.stage_gradient_scale(np.array([0.5]), np.zeros((0, 1)), np.array([0]), 3.0).tolist() == [6.0]
    assert D.stage_gradient_scale(np.array([0.5]), np.array([[1.0]]), np.array([], dtype=int), 3.0).tolist() == [0.0]
    # a non-finite Jacobian makes the scale NaN (its stationarity then reads NaN: never optimal)
    assert np.isnan(D.stage_gradient_scale(np.array([0.5]), np.array([[np.nan]]), np.array([0]), 3.0)[0])



def test_stage_gradient_scale_of_zero_and_subnormal_columns_raises_no_floating_point_error():
    """A zero column (1 / 0) and a subnormal one (1 / 1e-310 overflows) have unit inf: the size, without a floating-
    point error even where the caller has numpy raise on every one."""
    J = np.array([[0.0, 1e-310, 4.0], [0.0, -1e-310, 1.0]])
    with np.errstate(all="raise"):
        scale = D.stage_gradient_scale(np.array([1e-9, 1e-9, 1e-9]), J, np.array([0, 1, 2]), 3.0)
    np.testing.assert_array_equal(scale, [6.0, 6.0, 0.5])
@given(st.integers(-40, 40), st.lists(st.integers(-10 ** 6, 10 ** 6), min_size=6, max_size=6),
       st.integers(1, 10 ** 9))
def test_stage_gradient_scale_follows_the_data_scale_and_never_exceeds_the_size(exponent, values, size):
    """Columns of J in units 2^k and z in units 2^-k: g~ in units 2^-k exactly; never above 2 size nor below 2 ||z||."""
    J = np.array(values[:4], dtype=float).reshape(2, 2) / 1e3
    z = np.array(values[4:], dtype=float) / 1e3
    size = max(size / 1e3, float(np.max(np.abs(z))))
    columns = np.array([0, 1])
    scale = D.stage_gradient_scale(z, J, columns, size)
    assert np.all(scale <= 2 * size) and np.all(scale >= 2 * np.max(np.abs(z)))
    c = np.ldexp(1.0, exponent)
    np.testing.assert_array_equal(D.stage_gradient_scale(z / c, J * c, columns, size / c), scale / c)


def test_stage_gradient_scale_is_the_stage_nlps():
    """A parameter far outside the objective (a diverging block) no longer lifts g~ of the objective's block."""
    model = cubic_blocks()
    data = svm_data()
    base = np.zeros(model.n_params)
    base[2:] = 1e12
    nlp = D.stage_nlp(model, data, np.arange(model.n_params), np.array([0, 1]), base)
    z = np.concatenate([[0.03, -0.02], base[2:]])
    point = nlp.evaluate(z, None)
    reach = np.max(np.abs(point.jacobian[:, :2]), axis=0)
    assert np.all(1 / reach > 0.03)
    np.testing.assert_allclose(point.gradient_scale[:2], 2 / reach)
    assert np.all(point.gradient_scale[2:] == 0)


def test_a_segment_nearly_orthogonal_to_the_random_direction_is_not_unique():
    """12 integer samples in R^4 (linf, hunt of 2026-12-02): after stage 1 (level 9/7 on samples 2, 3, 10) the
    remaining set is a segment whose extent along the random direction is 4.5e-4; its ends are 0.01 apart, and the
    next level reaches 19/14 (an LP), where stopping there left the fourth-smallest margin at 1.3356."""
    X = np.array([[-2., 3, 0, 3], [1, 2, -2, -3], [0, 0, -3, -3], [2, -2, -3, 3], [1, -1, 3, 0], [-2, 1, 1, 0],
                  [-3, 1, -3, -3], [2, 1, -1, -3], [-2, -1, 3, -3], [3, 0, 2, 0], [-2, 2, 1, -2], [2, 3, 3, 0]])
    y = np.array([1., 1, 1, 1, -1, 1, 1, -1, -1, -1, 1, -1])
    r = L.lexicographic_max_margin(LINEAR4, lm.Dataset(X, y), norm="linf")
    first = r.stages[0]
    assert first.fixed == (2, 3, 10) and first.level == pytest.approx(9 / 7, abs=1e-9)
    assert not first.unique and first.width > 1e-3
    assert r.levels[1] == pytest.approx(19 / 14, abs=1e-8)
    margins = np.sort(y * (X @ r.theta))
    np.testing.assert_allclose(margins[:5], [9 / 7] * 3 + [19 / 14] * 2, atol=1e-8)


def test_a_set_narrow_in_theta_but_wide_in_the_margins_is_not_unique():
    """Columns in units 2e-2 and 3e4 (linf): the set keeping level 0.02 is 2.4e-7 wide in theta, but the margins move
    by a third of that level across it; the lexicographic solution raises the other three margins to 0.025."""
    X = np.array([[2e-2, 0.0], [3e-2, 3e4], [-2e-2, 3e4], [-3e-2, -3e4]])
    y = np.array([-1., -1., 1., 1.])
    r = L.lexicographic_max_margin(LINEAR2, lm.Dataset(X, y), norm="linf")
    assert not r.stages[0].unique and r.stages[0].width > 0.3
    np.testing.assert_allclose(np.sort(y * (X @ r.theta)), [0.02, 0.025, 0.025, 0.025], rtol=1e-8)


def test_spread_of_two_points_is_their_distance_or_the_largest_margin_move():
    stages = L._Stages(LINEAR2, lm.Dataset(np.array([[1.0, 0.0], [0.0, 4.0]]), np.ones(2)),
                       get_norm("linf").lift(BALL, 2), 1.0, 0.5)
    low, high = np.array([0.5, 0.1]), np.array([0.5, 0.2])
    # theta 0.1 apart; margin 2 moves by 4 * 0.1 / sigma = 0.8
    assert L.spread(stages, low, high) == pytest.approx(0.8, abs=1e-15)
    low, high = np.array([0.1, 0.0]), np.array([0.4, 0.0])
    assert L.spread(stages, low, high) == pytest.approx(0.6, abs=1e-15)      # margin 1 moves by 0.3 / 0.5
    assert L.spread(stages, low, low) == 0.0
    stages = L._Stages(LINEAR2, lm.Dataset(np.array([[1e-3, 0.0]]), np.ones(1)), get_norm("linf").lift(BALL, 2),
                       1.0, 1.0)
    assert L.spread(stages, np.array([0.0, -0.5]), np.array([0.0, 0.5])) == pytest.approx(1.0, abs=1e-15)



def fake_width(monkeypatch, vertices, verdicts=None):
    """_width with IPOPT replaced by a stand-in that returns the vertex minimizing p.theta (the LP over a polygon),
    ``verdicts``: (status, strict) of each end in turn; returns the starts and p's it was asked for."""
    from types import SimpleNamespace
    asked = []
    verdicts = list(verdicts or [("optimal", True)] * 2)
    monkeypatch.setattr(L, "IpoptSolver", lambda nlp, options: SimpleNamespace(nlp=nlp))

    def solve(solver, z0, opts, p=None):
        asked.append((np.array(z0), np.array(p)))
        status, strict = verdicts.pop(0)
        return SimpleNamespace(z=vertices[np.argmin(vertices @ p)], status=Status(status),
                               report=SimpleNamespace(second_order=SimpleNamespace(strict=strict)))

    monkeypatch.setattr(L, "solve", solve)
    return asked


def test_width_is_the_spread_of_the_ends_minimizing_and_maximizing_the_direction(monkeypatch):
    """The ends are the minimizer and the maximizer of r.theta (here vertices of a polygon); the width is their
    ``spread``; an end that is not a certified strict local minimum makes it nan (not shown unique)."""
    X = np.array([[1.0, 0.0, 0.0], [2.0, 3.0, 1.0], [5.0, 0.0, 0.0]])
    stages = L._Stages(LINEAR3, lm.Dataset(X, np.ones(3)), get_norm("linf").lift(BALL, 3), 1.0, 0.5)
    vertices = np.array([[1.0, 0.0, 0.0], [1.0, 0.3, 0.0], [1.0, 0.3, 0.7], [1.0, -0.2, 0.5]])
    r = np.array([0.5, 1.0, 0.2])           # r.vertices = 0.5, 0.8, 0.94, 0.4: ends vertices 3 and 2
    z = np.array([1.0, 0.1, 0.2, 0.9])      # [lift; tau]
    args = ([0, 1, 2], [], [], 0.9, z, r, lm.SolveOptions())
    asked = fake_width(monkeypatch, vertices)
    # ends (1, -0.2, 0.5) and (1, 0.3, 0.7): 0.54 apart in theta, margin 2 moves by (1.5 + 0.2) / sigma = 3.4
    assert L._width(stages, *args) == pytest.approx(3.4, abs=1e-14)
    assert len(asked) == 2 and all(np.array_equal(start, z[:3]) for start, _ in asked)
    # (along 1 / r the ends would be vertices 0 and 2, and the width 3.2)
    for verdicts in ([("optimal", True), ("inaccurate", True)], [("failed", True), ("optimal", True)],
                     [("optimal", None), ("optimal", True)], [("optimal", True), ("optimal", False)]):
        fake_width(monkeypatch, vertices, verdicts)
        assert np.isnan(L._width(stages, *args)), verdicts
class _Fake:
    """A stand-in for pipeline.Solved: z, status and the report's objective, as escape_saddles reads them."""

    def __init__(self, z, objective, status="optimal"):
        from types import SimpleNamespace
        self.z = np.asarray(z, dtype=float)
        self.status = Status(status)
        self.report = SimpleNamespace(extended=SimpleNamespace(point=SimpleNamespace(objective=objective)))


def fake_escape(monkeypatch, directions, outcomes):
    """escape_saddles with the curvature directions and the restarts' results given: ``directions`` is consumed per
    round (None: no negative curvature), ``outcomes(z0)`` gives the Solved of a restart from z0; returns the starts."""
    starts = []
    directions = list(directions)
    monkeypatch.setattr(D, "negative_curvature_direction", lambda nlp, z, report, tol: directions.pop(0))

    def solve(solver, z0, opts):
        starts.append(np.array(z0))
        return outcomes(np.asarray(z0))

    monkeypatch.setattr(D, "solve", solve)
    return starts


def test_escape_saddles_keeps_the_better_certified_restart_of_both_signs(monkeypatch):
    from types import SimpleNamespace
    solver = SimpleNamespace(nlp=None)
    opts = lm.SolveOptions()
    d = np.array([0.0, 1.0])
    # from z = (2, 0): steps of 0.1 * 2 along +-d; the restart from -d is the lower one, both are certified
    starts = fake_escape(monkeypatch, [d, None], lambda z0: _Fake(z0, 1.0 if z0[1] > 0 else 0.5))
    out = D.escape_saddles(solver, _Fake([2.0, 0.0], 3.0), opts)
    np.testing.assert_allclose(starts, [[2.0, 0.2], [2.0, -0.2]], atol=1e-15)
    assert out.report.extended.point.objective == 0.5 and out.z.tolist() == [2.0, -0.2]
    # a restart that is not certified optimal, or not lower, is not kept: the saddle point stays
    start = _Fake([2.0, 0.0], 3.0)
    fake_escape(monkeypatch, [d], lambda z0: _Fake(z0, 1.0, "inaccurate") if z0[1] > 0 else _Fake(z0, 3.0))
    assert D.escape_saddles(solver, start, opts) is start
    # no direction: nothing is solved
    starts = fake_escape(monkeypatch, [None], lambda z0: _Fake(z0, 0.0))
    assert D.escape_saddles(solver, start, opts) is start and starts == []
    # stopped by the time limit: not restarted, whatever the curvature (each restart would take the limit again)
    timed_out = _Fake([2.0, 0.0], 3.0, "max_time")
    starts = fake_escape(monkeypatch, [d, None], lambda z0: _Fake(z0, 0.5))
    assert D.escape_saddles(solver, timed_out, opts) is timed_out and starts == []
    # a point at 0 steps by 0.1 itself
    starts = fake_escape(monkeypatch, [d, None], lambda z0: _Fake(z0, 3.0))
    D.escape_saddles(solver, _Fake([0.0, 0.0], 1.0), opts)
    np.testing.assert_allclose(starts, [[0.0, 0.1], [0.0, -0.1]], atol=1e-15)


def test_escape_saddles_stops_after_its_rounds(monkeypatch):
    from types import SimpleNamespace
    d = np.array([1.0])
    value = iter(np.arange(100.0, 0.0, -1.0))
    starts = fake_escape(monkeypatch, [d] * 10, lambda z0: _Fake(z0, next(value)))
    out = D.escape_saddles(SimpleNamespace(nlp=None), _Fake([1.0], 1000.0), lm.SolveOptions())
    assert len(starts) == 2 * D.ESCAPES
    assert out.report.extended.point.objective == 100.0 - (2 * D.ESCAPES - 1)



def test_escape_saddles_asks_for_the_direction_at_the_current_point_with_the_callers_tolerances(monkeypatch):
    """Each round's direction is computed at the point kept so far (z of the last better restart) with the options'
    tolerances; the step is ESCAPE_STEP ||z||_inf also for ||z||_inf < 1 (z = (0.5, 0): steps of 0.05)."""
    from types import SimpleNamespace
    tol = lm.Tolerances(curvature=1e-6)
    opts = lm.SolveOptions(tolerances=tol)
    solver = SimpleNamespace(nlp=object())
    d = np.array([0.0, 1.0])
    asked, starts, directions = [], [], [d, d, None]
    monkeypatch.setattr(D, "negative_curvature_direction",
                        lambda nlp, z, report, tol: asked.append((nlp, np.array(z), report, tol)) or directions.pop(0))

    def solve(solver, z0, opts):
        starts.append(np.array(z0))
        return _Fake(z0, 1.0 - len(starts) / 10)

    monkeypatch.setattr(D, "solve", solve)
    start = _Fake([0.5, 0.0], 3.0)
    out = D.escape_saddles(solver, start, opts)
    np.testing.assert_allclose(starts[:2], [[0.5, 0.05], [0.5, -0.05]], rtol=0, atol=1e-15)
    assert [a[0] for a in asked] == [solver.nlp] * 3 and all(a[3] is tol for a in asked)
    assert asked[0][2] is start.report
    np.testing.assert_array_equal(asked[0][1], [0.5, 0.0])
    np.testing.assert_array_equal(asked[1][1], [0.5, -0.05])       # the lower of the first round's restarts
    np.testing.assert_array_equal(asked[2][1], out.z)
    assert len(starts) == 4 and out.report.extended.point.objective == pytest.approx(0.6)
def test_a_stage_left_by_diverging_iterates_is_not_certified():
    """f = y (w.x[:3] + (u v).x[3:]), columns in units 1e-3..3e3: IPOPT returns Diverging_Iterates (u = 1.4e20,
    v = 2e-22, every multiplier 0) and stage 1 (min ||w||^2, (u, v) free) was certified optimal at ||w||^2 = 3.6e9,
    where the convex stage (beta = u v free) attains 3.792e5 (Clarabel)."""
    X = np.array([[2., 2e-3, 10, 3e3], [-3, 2e-3, 20, 1e3], [3, 3e-3, -30, -2e3], [3, 1e-3, -10, 0],
                  [3, -1e-3, 0, -1e3], [3, -2e-3, 10, 3e3], [0, -2e-3, -30, 2e3]])
    y = np.array([1., -1, 1, 1, 1, -1, -1])
    model = Model("split", [Block.array("w", 3, degree=1), Block("uv", {"u": (1,), "v": (1,)}, degree=2)],
                  input_dim=4, summands={"w": lambda p, x: ops.dot(p["w"], x[:3]),
                                         "uv": lambda p, x: ops.dot(p["u"] * p["v"], x[3:])})
    stage = lm.depth_sensitive(model, lm.Dataset(X, y),
                               options=lm.SolveOptions(raise_on_failure=False, seed=124)).stages[0]
    w = model.unflatten(stage.certificate.theta)["w"]
    assert stage.certificate.status != "optimal" or float(w @ w) <= 3.792e5 * (1 + 1e-6)


def saddle_split():
    """f = y (w x_0 + (u v).x[1:]): w = 0 is feasible (beta = u v free), yet IPOPT stops stage 1 at a KKT point with
    ||w||^2 = 1e-4 that its own second-order check proves is not a local minimum (seed 85)."""
    X = np.array([[1e2, 0, -3e-3, 3e-3], [0, 2, -3e-3, -2e-3]])
    model = Model("split", [Block.array("w", 1, degree=1), Block("uv", {"u": (3,), "v": (3,)}, degree=2)],
                  input_dim=4, summands={"w": lambda p, x: ops.dot(p["w"], x[:1]),
                                         "uv": lambda p, x: ops.dot(p["u"] * p["v"], x[1:])})
    return model, lm.Dataset(X, np.array([-1.0, 1.0]))


def test_a_stage_at_a_saddle_is_left_along_its_negative_curvature():
    model, data = saddle_split()
    result = lm.depth_sensitive(model, data, options=lm.SolveOptions(raise_on_failure=False, seed=85))
    first = result.stages[0]
    assert first.discarded and first.value <= 1e-10 and first.certificate.status == "optimal"
    assert first.certificate.second_order.strict is not False and not first.not_a_minimum
    assert result.success and result.to_dict()["success"]


def test_a_stage_left_at_a_saddle_is_no_success(monkeypatch):
    """Without the restarts the saddle stays: certified a KKT point (``optimal``), but the stage and the result are
    no success, and raise_on_failure raises with the stage's certificate."""
    model, data = saddle_split()
    monkeypatch.setattr(D, "ESCAPES", 0)
    result = lm.depth_sensitive(model, data, options=lm.SolveOptions(raise_on_failure=False, seed=85))
    first = result.stages[0]
    assert first.certificate.status == "optimal" and first.value == pytest.approx(1e-4, rel=1e-3)
    assert first.not_a_minimum and not first.success
    assert not result.success and not result.to_dict()["success"]
    assert result.to_dict()["stages"][0]["not_a_minimum"] and not result.to_dict()["stages"][0]["success"]
    with pytest.raises(SolverError, match="not a local minimum") as raised:
        lm.depth_sensitive(model, data, options=lm.SolveOptions(seed=85))
    assert raised.value.certificate.second_order.strict is False
    assert raised.value.status == "optimal"                # the stage's certificate's status: a KKT point

