"""numeric.geometry: steepest directions against brute force over the unit ball, mirror steps, the trainer in a
geometry (coordinate descent's incremental margins, exact resume, rule round trips)."""

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from resume_helpers import interrupted_then_resumed, separable

from lexmargin.numeric import (
    Adaptive,
    Constant,
    Hypentropy,
    LayeredNetKernel,
    LinearKernel,
    MirrorLp,
    Normalized,
    Reference,
    Steepest,
    Trainer,
    get_geometry,
    train,
)
from lexmargin.numeric import geometry as geo
from lexmargin.numeric.steps import rule_from_dict


def same_history(a, b):
    for name in ("steps", "log_loss", "norm", "min_margin", "normalized_margin", "eta", "direction", "theta",
                 "angle", "margin_ratio"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# ---- directions against a brute-force argmax over the unit ball ---------------------------------------------
def ball_vertices(name, P):
    """Every vertex of the l1 / linf unit ball: the argmax of a linear function over the ball is one of them."""
    if name == "l1":
        return np.concatenate([np.eye(P), -np.eye(P)])
    return np.array(list(itertools.product((-1.0, 1.0), repeat=P)))


def sphere_samples(p, P, count=4000, seed=0):
    """Points on the l_p unit sphere: random directions rescaled, plus the coordinate vectors."""
    v = np.random.default_rng(seed).standard_normal((count, P))
    v = np.concatenate([v, np.eye(P), -np.eye(P)])
    return v / geo.lp_norm(v, p)[:, None]


vectors = st.integers(1, 5).flatmap(lambda P: arrays(np.float64, (3, P), elements=st.floats(-1e3, 1e3, width=64)))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(d=vectors, name=st.sampled_from(["l1", "linf"]))
def test_polyhedral_directions_are_the_argmax_over_the_ball(d, name):
    g = get_geometry(name)
    u = g.unit_direction(d)
    best = (d @ ball_vertices(name, d.shape[1]).T).max(axis=1)      # the exact maximum over the ball
    np.testing.assert_allclose((d * u).sum(axis=1), best, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(g.dual_norm(d), best, rtol=1e-12, atol=1e-9)
    assert np.all(g.norm(u) <= 1 + 1e-12)
    delta = g.direction(d)                                            # Delta = ||d||_* u: <d, Delta> = ||d||_*^2
    np.testing.assert_allclose((d * delta).sum(axis=1), best ** 2, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(g.norm(delta), best, rtol=1e-12, atol=1e-9)
    if name == "l1":
        assert np.all(np.count_nonzero(delta, axis=1) <= 1)           # one coordinate moves


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(d=vectors, p=st.sampled_from([1.1, 1.5, 2.0, 3.0, 7.0, 40.0]))
def test_lp_direction_is_the_argmax_over_the_ball(d, p):
    g = get_geometry("lp", p)
    u = g.unit_direction(d)
    nonzero = np.abs(d).max(axis=1) > 0
    np.testing.assert_allclose(g.norm(u)[nonzero], 1.0, rtol=1e-10)
    value = (d * u).sum(axis=1)
    np.testing.assert_allclose(value, g.dual_norm(d), rtol=1e-10, atol=1e-9)   # Hoelder's equality
    sampled = (d @ sphere_samples(p, d.shape[1]).T).max(axis=1)
    assert np.all(value >= sampled - 1e-9 * (1 + np.abs(sampled)))


def test_lp_direction_has_no_overflow_and_is_one_homogeneous():
    rng = np.random.default_rng(1)
    d = rng.standard_normal((4, 6))
    for p in (1.01, 1.5, 3.0, 100.0):
        g = get_geometry("lp", p)
        base = g.direction(d)
        for c in (1e-200, 1e-20, 1e20, 1e200):
            scaled = g.direction(d * c)
            assert np.all(np.isfinite(scaled))
            np.testing.assert_allclose(scaled / c, base, rtol=1e-9, atol=1e-12 * np.abs(base).max())  # underflow
    np.testing.assert_array_equal(get_geometry("lp", 3.0).direction(np.zeros((2, 3))), 0.0)


def test_l2_and_lp2_are_gradient_descent():
    d = np.random.default_rng(2).standard_normal((3, 5))
    np.testing.assert_array_equal(get_geometry("l2").direction(d), d)
    np.testing.assert_allclose(get_geometry("lp", 2.0).direction(d), d, rtol=1e-13)


def test_coordinate_ties_take_the_first_coordinate_and_unit_scale_moves_by_m():
    d = np.array([[1.0, -3.0, 3.0], [0.0, 0.0, 0.0]])
    theta, change = get_geometry("l1").step(np.zeros((2, 3)), d, np.array([0.5, 0.5]))
    np.testing.assert_array_equal(theta, [[0, -1.5, 0], [0, 0, 0]])
    np.testing.assert_array_equal(change[0], [1, 0])
    theta, _ = get_geometry("linf", scale="unit").step(np.zeros((2, 3)), d, np.array([0.5, 0.5]))
    np.testing.assert_array_equal(theta, [[0.5, -0.5, 0.5], [0, 0, 0]])      # sign descent


def test_mirror_steps():
    rng = np.random.default_rng(3)
    theta, d, m = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(MirrorLp(2.0).step(theta, d, m)[0], theta + m[:, None] * d, rtol=1e-13)
    p = 3.0
    new, _ = MirrorLp(p).step(theta, d, m)
    np.testing.assert_allclose(np.sign(new) * np.abs(new) ** (p - 1),
                               np.sign(theta) * np.abs(theta) ** (p - 1) + m[:, None] * d, rtol=1e-10, atol=1e-12)
    # EG+-: theta = u - v with u v = beta^2, u <- u exp(m d), v <- v exp(-m d)
    beta = 0.7
    u = (theta + np.sqrt(theta ** 2 + 4 * beta ** 2)) / 2
    v = u - theta
    expected = u * np.exp(m[:, None] * d) - v * np.exp(-m[:, None] * d)
    np.testing.assert_allclose(Hypentropy(beta).step(theta, d, m)[0], expected, rtol=1e-12, atol=1e-12)


def test_bad_geometries():
    with pytest.raises(ValueError, match="needs p"):
        get_geometry("lp")
    with pytest.raises(ValueError, match="p must be"):
        get_geometry("lp", 1.0)
    with pytest.raises(ValueError, match="unknown geometry"):
        get_geometry("l7")
    with pytest.raises(ValueError, match="scale"):
        get_geometry("l1", scale="half")
    with pytest.raises(TypeError, match="step-size rule"):
        Steepest("l1", Steepest("l1"))
    kernel = LayeredNetKernel(*separable(), hidden=(3,))
    with pytest.raises(ValueError, match="Path-SGD"):
        Trainer(kernel, kernel.random_theta([0], 1.0), rule=Steepest("l1"), path_sgd=True)


# ---- rules: round trips, the trainer -----------------------------------------------------------------------
RULES = [Steepest("l1", Constant(0.05)), Steepest("linf", Normalized((0.1, 0.2))), Steepest("lp", Adaptive(0.3), p=3),
         Steepest("linf", Normalized(0.1), scale="unit"), Steepest(MirrorLp(3.0), Normalized(0.1)),
         Steepest(Hypentropy(0.5), Adaptive(0.2, grow=1.2, max_eta=4.0))]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.geometry.name)
def test_rule_round_trips_through_strict_json(rule):
    assert rule_from_dict(json.loads(json.dumps(rule.to_dict()))) == rule


def test_l2_geometry_is_gradient_descent_on_both_paths():
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0, 1], 1.0)
    kw = {"n_steps": 200, "checkpoints": 8}
    plain = train(kernel, theta, rule=Normalized(0.2), fused=False, **kw)
    generic = train(kernel, theta, rule=Steepest("l2", Normalized(0.2)), fused=False, **kw)
    fused = train(kernel, theta, rule=Steepest("l2", Normalized(0.2)), **kw)
    np.testing.assert_array_equal(generic.theta, plain.theta)
    np.testing.assert_allclose(fused.theta, plain.theta, rtol=1e-11)
    assert fused.meta["fused"] is True and generic.meta["fused"] is False


@pytest.mark.parametrize("rule", [Steepest("l1", Constant(0.002)), Steepest("linf", Normalized(0.05)),
                                  Steepest("lp", Normalized((0.1, 0.2)), p=1.5), Steepest(MirrorLp(3.0), Normalized(0.1)),
                                  Steepest(Hypentropy(0.5), Constant(0.002)), Steepest("linf", Normalized(0.02), scale="unit")],
                         ids=lambda r: r.geometry.name)
def test_fused_geometry_steps_agree_with_the_generic_path(rule):
    """The fused lane (compiled weights, shift predicted from <d, dtheta>) agrees with the generic path to rounding."""
    kernel = LinearKernel(*separable(60, 5))
    theta = kernel.random_theta([0, 1], [0.5, 2.0])
    kw = {"rule": rule, "n_steps": 400, "checkpoints": 6}
    fused, generic = train(kernel, theta, **kw), train(kernel, theta, fused=False, **kw)
    assert fused.meta["fused"] is True
    np.testing.assert_allclose(fused.theta, generic.theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fused.log_loss, generic.log_loss, rtol=1e-9, atol=1e-12)


def test_incremental_coordinate_margins_match_exact_ones(monkeypatch):
    """O(N) margin updates of coordinate descent agree with margins recomputed at every step."""
    X, y = separable(60, 5)
    kernel = LinearKernel(X, y)
    theta = kernel.random_theta([0, 1, 2], [0.1, 1.0, 3.0])
    kw = {"rule": Steepest("l1", Normalized(0.3)), "n_steps": 2500, "checkpoints": 10, "fused": False}
    trainer = Trainer(kernel, theta, **kw)
    assert trainer._incremental
    fast = trainer.run()
    np.testing.assert_allclose(fast.margins, fast.theta @ kernel.A, rtol=1e-10, atol=1e-10)
    monkeypatch.setattr("lexmargin.numeric.trainer.EXACT_EVERY", 1)       # every step recomputed exactly
    exact = Trainer(kernel, theta, **kw).run()
    np.testing.assert_allclose(fast.theta, exact.theta, rtol=1e-10)
    np.testing.assert_allclose(fast.history().log_loss, exact.history().log_loss, rtol=1e-10)


@pytest.mark.parametrize("case", ["l1_linear", "l1_fused", "lp_fused", "linf_adaptive", "lp_sgd", "mirror_net",
                                  "hypentropy"])
def test_resume_in_a_geometry_is_bit_identical(tmp_path, case):
    kernel = LinearKernel(*separable())
    kw = {"l1_linear": {"rule": Steepest("l1", Constant(0.05)), "n_steps": 2100, "fused": False},  # incremental margins
          "l1_fused": {"rule": Steepest("l1", Constant(0.05))},
          "lp_fused": {"rule": Steepest("lp", Normalized((0.1, 0.3)), p=3), "workers": 2},
          "linf_adaptive": {"rule": Steepest("linf", Adaptive(0.05, grow=1.5)), "loss": "logistic"},
          "lp_sgd": {"rule": Steepest("lp", Normalized(0.1), p=1.5), "batch_size": 7, "seed": 4},
          "mirror_net": {"rule": Steepest(MirrorLp(3.0), Normalized(0.05))},
          "hypentropy": {"rule": Steepest(Hypentropy(0.3), Normalized(0.1))}}[case]
    if case == "mirror_net":
        kernel = LayeredNetKernel(*separable(), hidden=(4,))
    kw = {"n_steps": 300, "checkpoints": 12, **kw}
    theta = kernel.random_theta([0, 1], [1.0, 3.0])
    same_history(train(kernel, theta, **kw),
                 interrupted_then_resumed(kernel, theta, tmp_path / "run.npz", kw["n_steps"] // 3, **kw))


def test_resume_from_mid_interval_save_keeps_incremental_margins(tmp_path):
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0, 1, 2], 1.0)
    kw = {"rule": Steepest("l1", Normalized(0.2)), "n_steps": 1500, "checkpoints": 6, "fused": False}
    full = Trainer(kernel, theta, **kw).run()
    part = Trainer(kernel, theta, **kw).run(until=1037)
    part.save(tmp_path / "s.npz")
    resumed = Trainer.load(tmp_path / "s.npz", kernel).run()
    same_history(full.history(), resumed.history())
    np.testing.assert_array_equal(full.margins, resumed.margins)


def test_reference_in_another_norm_measures_margin_ratios_in_it():
    X, y = separable(40, 3)
    kernel = LinearKernel(X, y)
    direction = np.array([1.0, 2.0, 3.0])
    nm = float(np.min((y[:, None] * X) @ direction) / np.abs(direction).sum())
    ref = Reference(direction, nm, "l1")
    hist = train(kernel, direction[None] * 2.0, rule=Steepest("l1", Normalized(1e-12)), n_steps=1, checkpoints=[0],
                 reference=ref)
    np.testing.assert_allclose(hist.margin_ratio[0], 1.0, rtol=1e-9)
    assert Reference(direction, nm).to_dict().keys() == {"direction", "normalized_margin"}
    assert ref.to_dict()["norm"] == "l1"

    class Cert:
        theta, normalized_margin, norm = direction, 0.5, "l1.5"

    assert (Reference.from_certificate(Cert).norm, Reference.from_certificate(Cert).p) == ("lp", 1.5)
    with pytest.raises(ValueError):
        Reference(direction, nm, "lp")
    assert math.isinf(Reference(direction, nm, "linf").exponent)


def test_a_loss_is_what_the_trainer_calls():
    """get_loss accepts any object with the Loss protocol's methods and refuses one the trainer could not call."""
    from lexmargin.numeric import ExponentialLoss, get_loss

    class Scaled:
        name = "scaled_exp"

        def scaled_weights(self, f, out=None):
            return ExponentialLoss().scaled_weights(f, out=out)

        def to_dict(self):
            return {"name": self.name}

    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0], 1.0)
    custom = train(kernel, theta, loss=get_loss(Scaled()), rule=Steepest("linf", Normalized(0.01)), n_steps=30)
    builtin = train(kernel, theta, loss="exp", rule=Steepest("linf", Normalized(0.01)), n_steps=30, fused=False)
    np.testing.assert_array_equal(custom.theta, builtin.theta)

    class OnlyWeights:
        def value_and_weights(self, f):
            return ExponentialLoss().value_and_weights(f)

    with pytest.raises(TypeError, match="scaled_weights"):
        get_loss(OnlyWeights())
