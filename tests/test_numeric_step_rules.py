"""The step-rule protocol (optax-style ``init`` / ``update``): every rule's update against its formula, the
registry and exact resume, a new rule written in a few lines, and momentum's limit against the l2 certificate."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from resume_helpers import interrupted_then_resumed, separable

from lexmargin import Dataset, load_model, max_margin
from lexmargin.numeric import (
    AdaGrad,
    Adaptive,
    Constant,
    LayeredNetKernel,
    LinearKernel,
    Normalized,
    Reference,
    Trainer,
    train,
)
from lexmargin.numeric.geometry import Steepest
from lexmargin.numeric.steps import (
    RULES,
    CoordinateUpdate,
    Momentum,
    StepRule,
    apply_update,
    register_rule,
    rule_from_dict,
)


def direction_and_loss(R=3, P=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((R, P)), rng.standard_normal(R) - 2.0


ALL_RULES = [Constant((0.1, 0.2, 0.3)), Normalized(0.3), Adaptive(0.5, grow=1.5, shrink=0.25, max_eta=4.0),
             Adaptive(0.5, normalized=False), AdaGrad(0.05, eps=1e-6), Momentum((0.1, 0.2, 0.4), beta=0.5),
             Momentum(0.1, normalized=False), Steepest("linf", Constant(0.2)), Steepest("l1", Adaptive(0.3)),
             Steepest("lp", Normalized(0.1), p=3.0)]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: repr(r)[:40])
def test_every_rule_round_trips_through_the_registry(rule):
    assert isinstance(rule, StepRule) and RULES[rule.name] is type(rule)
    assert rule_from_dict(rule.to_dict()) == rule
    state = rule.init(3, 4)
    assert all(v.shape[0] == 3 for v in state.values())
    np.testing.assert_array_equal(rule.step_sizes(state), np.broadcast_to(np.asarray(rule.eta, dtype=float), (3,)))


@pytest.mark.parametrize("rule, m", [
    (Constant((0.1, 0.2, 0.3)), lambda L: np.array([0.1, 0.2, 0.3]) * L),
    (Normalized(0.3), lambda L: np.full(3, 0.3)),
    (Adaptive(0.5), lambda L: np.full(3, 0.5)),
    (Adaptive(0.5, normalized=False), lambda L: 0.5 * L),
])
def test_scalar_rules_move_by_their_multiplier_along_the_direction(rule, m):
    d, log_L = direction_and_loss()
    state = rule.init(3, 4)
    delta, after = rule.update(d, state, log_L, np.zeros_like(d))
    np.testing.assert_allclose(delta, m(np.exp(log_L))[:, None] * d, rtol=1e-14)
    np.testing.assert_allclose(rule.multiplier(state, log_L), m(np.exp(log_L)), rtol=1e-14)
    assert after is state and rule.fusable


def test_only_fixed_rules_have_a_compiled_form():
    state = Constant((0.1, 0.2, 0.3)).init(3)
    eta, loss_scaled = Constant((0.1, 0.2, 0.3)).compiled_form(state)
    np.testing.assert_array_equal(eta, [0.1, 0.2, 0.3])
    assert eta.dtype == np.float64 and loss_scaled
    assert Normalized(0.1).compiled_form(Normalized(0.1).init(2))[1] is False
    for rule in (Adaptive(0.1), AdaGrad(0.1), Momentum(0.1)):
        assert rule.compiled_form(rule.init(2, 3)) is None


def test_adagrad_update_is_its_formula():
    d, log_L = direction_and_loss()
    rule = AdaGrad((0.1, 0.2, 0.3), eps=1e-3)
    state = rule.init(3, 4)
    state["sum_sq"] += 0.5
    delta, after = rule.update(d, state, log_L)
    g = np.exp(log_L)[:, None] * d
    np.testing.assert_allclose(after["sum_sq"], 0.5 + g ** 2, rtol=1e-14)
    np.testing.assert_allclose(delta, np.array([0.1, 0.2, 0.3])[:, None] * g / (np.sqrt(0.5 + g ** 2) + 1e-3),
                               rtol=1e-13)
    np.testing.assert_array_equal(state["sum_sq"], 0.5)            # the input state is not changed


def test_momentum_accumulates_velocity():
    d, log_L = direction_and_loss()
    rule = Momentum((0.1, 0.2, 0.4), beta=0.5)
    state = rule.init(3, 4)
    delta1, state = rule.update(d, state, log_L)
    delta2, state = rule.update(2 * d, state, log_L)
    eta = np.array([0.1, 0.2, 0.4])[:, None]
    np.testing.assert_allclose(delta1, eta * d, rtol=1e-14)
    np.testing.assert_allclose(delta2, 0.5 * eta * d + eta * 2 * d, rtol=1e-14)
    np.testing.assert_array_equal(state["velocity"], delta2)
    scaled = Momentum(0.1, beta=0.0, normalized=False)
    np.testing.assert_allclose(scaled.update(d, scaled.init(3, 4), log_L)[0], 0.1 * np.exp(log_L)[:, None] * d,
                               rtol=1e-14)
    with pytest.raises(ValueError, match="beta"):
        Momentum(0.1, beta=1.0)


def test_momentum_with_beta_zero_is_normalized_gd():
    kernel = LayeredNetKernel(*separable(), hidden=(4,))
    theta = kernel.random_theta([0, 1], [1.0, 2.0])
    a = train(kernel, theta, rule=Momentum(0.05, beta=0.0), n_steps=60, checkpoints=4)
    b = train(kernel, theta, rule=Normalized(0.05), n_steps=60, checkpoints=4)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("options", [{"rule": Momentum((0.02, 0.05), beta=0.8)},
                                     {"rule": Momentum(0.02, beta=0.6), "batch_size": 9, "loss": "logistic"}])
def test_momentum_resumes_exactly(tmp_path, options):
    kernel = LayeredNetKernel(*separable(), hidden=(4,))
    theta = kernel.random_theta([0, 1], [1.0, 3.0])
    kw = dict(n_steps=200, checkpoints=10, seed=3, **options)
    full = train(kernel, theta, **kw)
    resumed = interrupted_then_resumed(kernel, theta, tmp_path / "run.npz", 70, **kw)
    np.testing.assert_array_equal(resumed.theta, full.theta)
    np.testing.assert_array_equal(resumed.log_loss, full.log_loss)


def test_momentum_converges_to_the_l2_max_margin_direction():
    """GD with momentum keeps GD's implicit bias on separable data (Wang et al. 2022): its angle to the certified
    direction falls like normalized GD's with the effective step eta / (1 - beta), to the same values late on."""
    X, y = separable(n=30, d=3, seed=4)
    cert = max_margin(load_model("linear", input_dim=3), Dataset(X, y))
    assert cert.status == "optimal"
    kernel = LinearKernel(X, y)
    kw = {"n_steps": 20000, "checkpoints": 10, "reference": Reference.from_certificate(cert)}
    heavy = train(kernel, np.zeros((1, 3)), rule=Momentum(0.05, beta=0.9), **kw)
    plain = train(kernel, np.zeros((1, 3)), rule=Normalized(0.5), **kw)
    late = heavy.steps >= 400
    assert np.all(np.diff(heavy.angle[late, 0]) < 0) and heavy.angle[-1, 0] < 2e-3
    np.testing.assert_allclose(heavy.angle[late, 0], plain.angle[late, 0], rtol=0.01)
    assert 0.998 < heavy.margin_ratio[-1, 0] <= 1 + 1e-12


def test_momentum_never_takes_the_fused_path():
    kernel = LinearKernel(*separable())
    assert not Trainer(kernel, np.zeros((1, 3)), rule=Momentum(0.1), n_steps=1).fused
    assert Trainer(kernel, np.zeros((1, 3)), rule=Normalized(0.1), n_steps=1).fused


def test_coordinate_update_equals_its_dense_form():
    theta = np.arange(12.0).reshape(3, 4)
    up = CoordinateUpdate(np.array([0, 3, 3]), np.array([1.5, -2.0, 0.25]))
    dense = np.zeros_like(theta)
    dense[[0, 1, 2], [0, 3, 3]] = [1.5, -2.0, 0.25]
    np.testing.assert_array_equal(apply_update(theta, up), theta + dense)
    np.testing.assert_array_equal(apply_update(theta, dense), theta + dense)
    assert theta[0, 0] == 0.0                                      # not changed in place


@register_rule
@dataclass(frozen=True)
class HalfSteps(StepRule):
    """A new rule in a few lines: normalized steps whose size halves at every step (state: the step size)."""

    eta: float = 0.2
    name: ClassVar[str] = "test_half_steps"

    def update(self, direction, state, log_loss, params=None):
        return state["eta"][:, None] * direction, {**state, "eta": state["eta"] / 2}


def test_a_new_rule_runs_checkpoints_and_resumes(tmp_path):
    kernel = LinearKernel(*separable())
    theta = kernel.random_theta([0, 1], 1.0)
    kw = {"rule": HalfSteps(0.4), "n_steps": 30, "checkpoints": 6}
    hist = train(kernel, theta, **kw)
    np.testing.assert_allclose(hist.eta[-1], 0.4 / 2 ** 30)           # recorded through step_sizes
    expected = theta.copy()
    for k in range(30):                                              # by hand: theta <- theta + eta_k d(theta)
        f = expected @ kernel.A
        w = np.exp(-(f - f.min(axis=1, keepdims=True)))
        expected = expected + 0.4 / 2 ** k * (w @ kernel.A.T) / w.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(hist.theta, expected, rtol=1e-12)
    resumed = interrupted_then_resumed(kernel, theta, tmp_path / "run.npz", 10, **kw)
    np.testing.assert_array_equal(resumed.theta, hist.theta)


def test_the_registry_refuses_a_taken_or_empty_name():
    with pytest.raises(ValueError, match="taken"):
        register_rule(type("Again", (StepRule,), {"name": "constant"}))
    with pytest.raises(ValueError, match="empty"):
        register_rule(type("Nameless", (StepRule,), {}))
    with pytest.raises(ValueError, match="unknown step rule"):
        rule_from_dict({"rule": "no_such_rule", "eta": 0.1})


def test_the_trainer_refuses_what_is_not_a_step_rule():
    kernel = LinearKernel(*separable())
    with pytest.raises(TypeError, match="step rule"):
        Trainer(kernel, np.zeros((1, 3)), rule=lambda g: g, n_steps=1)
    with pytest.raises(TypeError, match="step-size rule"):
        Steepest("l1", Momentum(0.1))
    path_kernel = LayeredNetKernel(*separable(), hidden=(3,))
    with pytest.raises(ValueError, match="Path-SGD"):
        Trainer(path_kernel, path_kernel.random_theta([0], 1.0), rule=AdaGrad(0.1), path_sgd=True)
    Trainer(path_kernel, path_kernel.random_theta([0], 1.0), rule=Momentum(0.1), path_sgd=True, n_steps=1).run()
