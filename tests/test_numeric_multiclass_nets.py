"""K-output layered nets in the numeric module (issue 16): the batched kernel against CasADi, cross-entropy
minibatches of whole samples, AdaGrad (exact resume), node rescalings (balanced / unbalanced initializations) and
Path-SGD's invariance to them on multi-output nets."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lexmargin as lm
from lexmargin.numeric import AdaGrad, Constant, Trainer, kernel_for, train
from lexmargin.numeric.initialization import balance, he_init, rescale_units, unbalance, unit_norms
from lexmargin.numeric.kernels import check_kernel_against_model
from lexmargin.numeric.multiclass import CrossEntropyLoss, MulticlassLayeredNetKernel
from lexmargin.numeric.steps import rule_from_dict


def data(seed, N=15, d=4, K=3):
    rng = np.random.default_rng(seed)
    return lm.Dataset(rng.standard_normal((N, d)), rng.integers(0, K, N) if N > K else np.arange(N) % K,
                      n_classes=K)


def net(d=4, K=3, hidden=(5, 6), **kw):
    return lm.load_model("mlp", input_dim=d, hidden=hidden, n_classes=K, **kw)


@pytest.mark.parametrize("activation,bias", [("relu", False), ("relu", True), ("leaky_relu", False)])
def test_kernel_for_a_k_output_mlp_matches_casadi(activation, bias):
    ds = data(0)
    model = net(activation=activation, bias=bias)
    kernel = kernel_for(model, ds)
    assert isinstance(kernel, MulticlassLayeredNetKernel) and kernel.n_samples == 15 * 2
    assert kernel.activation == activation and kernel.first_bias == bias and kernel.degree == 3
    assert check_kernel_against_model(kernel, model, points=3) < 1e-12
    rng = np.random.default_rng(1)
    theta = rng.standard_normal((4, model.n_params))
    f = kernel.margins(theta)
    c = rng.standard_normal((4, kernel.n_samples))
    g = kernel.gradient(theta, c)
    for r in range(4):               # R runs at once = one at a time = CasADi
        np.testing.assert_allclose(f[r], model.margins(theta[r], ds), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g[r], c[r] @ model.margin_jacobian(theta[r], ds), rtol=1e-12, atol=1e-12)
    G = model.decision_function(theta[2], ds.X)
    np.testing.assert_allclose(kernel.outputs(theta)[2].T, G, rtol=1e-12, atol=1e-12)


@settings(max_examples=8, deadline=None)
@given(K=st.integers(2, 4), hidden=st.lists(st.integers(1, 4), min_size=1, max_size=3), bias=st.booleans(),
       seed=st.integers(0, 1000))
def test_any_depth_and_width_is_the_layered_kernel_and_agrees_with_casadi(K, hidden, bias, seed):
    ds = data(seed, N=9, d=3, K=K)
    model = net(d=3, K=K, hidden=tuple(hidden), bias=bias)
    kernel = kernel_for(model, ds)
    assert isinstance(kernel, MulticlassLayeredNetKernel) and kernel.hidden == tuple(hidden)
    assert check_kernel_against_model(kernel, model, points=2, seed=seed) < 1e-12


def test_cross_entropy_minibatches_take_whole_samples():
    ds = data(2, N=12, K=4)
    kernel = kernel_for(net(K=4), ds)
    trainer = Trainer(kernel, he_init(kernel, [0, 1]), loss=CrossEntropyLoss(4), rule=Constant(0.01),
                      batch_size=5, n_steps=3)
    idx = trainer._sample_minibatches()
    assert idx.shape == (2, 15)
    samples = kernel.rows.sample[idx]
    for r in range(2):       # 5 distinct samples, each with all its K - 1 = 3 rows
        assert len(set(samples[r])) == 5
        assert sorted(kernel.rows.other[idx[r]].tolist()) == sorted(
            j for n in set(samples[r]) for j in range(4) if j != ds.labels[n])
    with pytest.raises(ValueError):
        Trainer(kernel, he_init(kernel, [0]), loss=CrossEntropyLoss(4), batch_size=13)
    history = train(kernel, he_init(kernel, [0]), loss=CrossEntropyLoss(4), rule=Constant(0.05),
                    batch_size=4, n_steps=50, checkpoints=2)
    assert history.log_loss[-1, 0] < history.log_loss[0, 0]


def test_adagrad_step_and_exact_resume(tmp_path):
    ds = data(3)
    kernel = kernel_for(net(), ds)
    theta0 = he_init(kernel, [0, 1, 2])
    rule = AdaGrad(eta=(0.05, 0.1, 0.02))
    assert rule_from_dict(rule.to_dict()) == rule
    # one step by hand: G = g^2, step = eta g / (|g| + eps)
    trainer = Trainer(kernel, theta0, loss=CrossEntropyLoss(3), rule=rule, n_steps=1)
    f, cache = kernel.forward(theta0)
    log_L, w = CrossEntropyLoss(3).value_and_weights(f)
    g = -np.exp(log_L)[:, None] * kernel.vjp(theta0, cache, w)
    trainer.run()
    expected = theta0 - np.array(rule.eta)[:, None] * g / (np.abs(g) + rule.eps)
    np.testing.assert_allclose(trainer.theta, expected, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(trainer.rule_state["sum_sq"], g ** 2, rtol=1e-12)
    kw = {"loss": CrossEntropyLoss(3), "rule": rule, "n_steps": 40, "batch_size": 6, "seed": 5}
    full = Trainer(kernel, theta0, **kw)
    full.run()
    half = Trainer(kernel, theta0, **kw)
    half.run(until=17)
    half.save(tmp_path / "c.npz")
    resumed = Trainer.load(tmp_path / "c.npz", kernel)
    assert resumed.rule == rule and resumed.loss == CrossEntropyLoss(3)
    np.testing.assert_array_equal(resumed.rule_state["sum_sq"], half.rule_state["sum_sq"])
    resumed.run()
    np.testing.assert_array_equal(resumed.theta, full.theta)
    np.testing.assert_array_equal(resumed.rule_state["sum_sq"], full.rule_state["sum_sq"])
    lanes = Trainer(kernel, theta0, workers=2, **kw)       # two lanes: each keeps its own runs' accumulators
    lanes.run()
    np.testing.assert_allclose(lanes.theta, full.theta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lanes.rule_state["sum_sq"], full.rule_state["sum_sq"], rtol=1e-12)
    with pytest.raises(ValueError):
        Trainer(kernel, theta0, rule=rule, path_sgd=True)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), log_c=st.lists(st.floats(-3, 3), min_size=11, max_size=11),
       bias=st.booleans())
def test_node_rescalings_leave_outputs_unchanged(seed, log_c, bias):
    ds = data(seed % 7)
    kernel = kernel_for(net(bias=bias), ds)
    theta = np.random.default_rng(seed).standard_normal((1, kernel.n_params))
    c = np.exp(np.asarray(log_c))
    moved = rescale_units(kernel, theta, [c[:5], c[5:]])
    assert np.allclose(moved, theta) == np.allclose(c, 1)
    np.testing.assert_allclose(kernel.outputs(moved), kernel.outputs(theta), rtol=1e-11, atol=1e-11)
    for other in (balance(kernel, theta), unbalance(kernel, theta, seed=seed, fraction=0.3, factor=10.0)):
        np.testing.assert_allclose(kernel.outputs(other), kernel.outputs(theta), rtol=1e-11, atol=1e-11)
    n_in, n_out = unit_norms(kernel, balance(kernel, moved))
    for a, b in zip(n_in, n_out):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_path_sgd_on_multi_output_nets_is_invariant_to_rescaling_and_sgd_is_not():
    ds = data(4, N=20)
    kernel = kernel_for(net(bias=True), ds)
    theta = he_init(kernel, [3])
    skewed = unbalance(kernel, theta, seed=1, fraction=0.4, factor=20.0)
    kw = {"loss": CrossEntropyLoss(3), "rule": Constant(0.02), "n_steps": 30, "checkpoints": [30], "batch_size": 7,
          "seed": 2}
    a = Trainer(kernel, theta, path_sgd=True, **kw)
    b = Trainer(kernel, skewed, path_sgd=True, **kw)
    a.run()
    b.run()
    assert np.max(np.abs(a.theta - theta)) > 1e-2
    np.testing.assert_allclose(kernel.outputs(b.theta), kernel.outputs(a.theta), rtol=1e-9, atol=1e-9)
    s, t = Trainer(kernel, theta, **kw), Trainer(kernel, skewed, **kw)
    s.run()
    t.run()
    assert np.max(np.abs(kernel.outputs(s.theta) - kernel.outputs(t.theta))) > 1e-2
