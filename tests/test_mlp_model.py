"""The bundled MLP (models/mlp.py) and LayeredNetKernel with a first-layer bias, against CasADi."""

import numpy as np
import pytest

from lexmargin import Dataset, HomogeneityError, ModelError, check_homogeneity, load_model
from lexmargin.numeric import (
    CasadiKernel,
    Constant,
    LayeredNetKernel,
    LinearKernel,
    Trainer,
    check_kernel_against_model,
    kernel_for,
    path_norm_squared,
    path_scales_bruteforce,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((14, 3))
    return Dataset(X, np.where(rng.random(14) < 0.5, 1.0, -1.0))


MLPS = [
    {"hidden": (4,)},
    {"hidden": (4,), "bias": True},
    {"hidden": (3, 2), "activation": "leaky_relu", "slope": 0.3},
    {"hidden": (3, 2), "activation": "leaky_relu", "slope": 0.05, "bias": True},
    {"hidden": (2, 3, 2), "bias": True},
]


@pytest.mark.parametrize("options", MLPS)
def test_kernel_for_recognizes_the_bundled_mlp(data, options):
    model = load_model("mlp", input_dim=3, **options)
    kernel = kernel_for(model, data)
    assert type(kernel) is LayeredNetKernel
    assert kernel.activation == options.get("activation", "relu")
    assert kernel.first_bias == options.get("bias", False)
    assert kernel.hidden == options["hidden"] and kernel.degree == model.degree == len(options["hidden"]) + 1
    if kernel.activation == "leaky_relu":
        assert kernel.slope == options["slope"]
    assert [a.name for a in kernel.arrays] == list(model.layout.names)
    rng = np.random.default_rng(1)
    theta = rng.standard_normal((3, model.n_params))
    c = rng.standard_normal((3, data.n_samples))
    f, g = kernel.margins(theta), kernel.gradient(theta, c)
    for r in range(3):
        np.testing.assert_allclose(f[r], model.margins(theta[r], data), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(g[r], c[r] @ model.margin_jacobian(theta[r], data), rtol=1e-12, atol=1e-12)


def test_no_hidden_layer_is_the_linear_model(data):
    model = load_model("mlp", input_dim=3, hidden=())
    assert model.degree == 1 and isinstance(kernel_for(model, data), LinearKernel)


def test_bias_is_a_weight_on_a_constant_input(data):
    """[W1, b1] on [x; 1] without a bias gives the same margins as W1, b1 on x."""
    biased = LayeredNetKernel(data, hidden=(3, 2), first_bias=True)
    augmented = LayeredNetKernel(np.hstack([data.X, np.ones((data.n_samples, 1))]), data.y, hidden=(3, 2))
    theta = biased.random_theta([0, 1], 3.0)
    p = biased.unflatten(theta)
    W1b = np.concatenate([p["W1"], p["b1"][:, :, None]], axis=2)
    flat = augmented.flatten({"W1": W1b, "W2": p["W2"], "a": p["a"]})
    np.testing.assert_allclose(biased.margins(theta), augmented.margins(flat), rtol=1e-13)
    kappa = biased.unflatten(biased.path_scales(theta))
    kappa_aug = augmented.unflatten(augmented.path_scales(flat))
    np.testing.assert_allclose(kappa["W1"], kappa_aug["W1"][:, :, :-1], rtol=1e-13)
    np.testing.assert_allclose(kappa["b1"], kappa_aug["W1"][:, :, -1], rtol=1e-13)
    np.testing.assert_allclose(kappa["W2"], kappa_aug["W2"], rtol=1e-13)


def test_bias_path_scales_are_brute_force_path_derivatives(data):
    kernel = LayeredNetKernel(data, hidden=(3, 2), first_bias=True)
    theta = kernel.random_theta([4], 2.0)
    p = {k: v[0] for k, v in kernel.unflatten(theta).items()}
    weights = [np.hstack([p["W1"], p["b1"][:, None]]), p["W2"], p["a"][None, :]]
    brute = path_scales_bruteforce(weights)
    kappa = {k: v[0] for k, v in kernel.unflatten(kernel.path_scales(theta)).items()}
    np.testing.assert_allclose(kappa["b1"], brute[0][:, -1], rtol=1e-12)
    np.testing.assert_allclose(kappa["W1"], brute[0][:, :-1], rtol=1e-12)
    # kappa_e = d pi^2 / d(w_e^2): setting b1[1] from 0 to 1 raises the path norm by kappa of that edge
    zero = [w[None].copy() for w in weights]
    zero[0][0, 1, -1] = 0.0
    one = [w.copy() for w in zero]
    one[0][0, 1, -1] = 1.0
    np.testing.assert_allclose(path_norm_squared(one)[0] - path_norm_squared(zero)[0], kappa["b1"][1], rtol=1e-12)


def test_path_sgd_runs_on_a_biased_net(data):
    kernel = LayeredNetKernel(data, hidden=(3,), first_bias=True)
    theta = kernel.random_theta([0], 1.0)
    run = Trainer(kernel, theta, rule=Constant(0.01), n_steps=20, checkpoints=[20], path_sgd=True).run()
    assert np.all(np.isfinite(run.theta))


def test_describe_names_the_bias_only_when_present(data):
    assert "first_bias" not in LayeredNetKernel(data, hidden=(3,)).describe()
    assert LayeredNetKernel(data, hidden=(3,), first_bias=True).describe()["first_bias"] is True
    with pytest.raises(ValueError, match="output bias"):
        LayeredNetKernel(data, hidden=(), first_bias=True)


def test_bias_model_is_homogeneous_symbolically():
    model = load_model("mlp", input_dim=2, hidden=(2, 2), bias=True)
    report = check_homogeneity(model, symbolic=True, raise_on_failure=True)
    assert all(b.numeric_ok and b.symbolic_ok for b in report.blocks)


@pytest.mark.parametrize("options, fragment", [
    ({"hidden": (3,), "bias": (False, True)}, "bias in layer 2"),
    ({"hidden": (3, 3), "bias": [True, True, False]}, "bias in layer 2"),
    ({"hidden": (), "bias": True}, "output layer"),
])
def test_later_biases_are_refused_with_a_homogeneity_error(options, fragment):
    with pytest.raises(HomogeneityError, match=fragment) as info:
        load_model("mlp", input_dim=3, **options)
    assert "\n" not in str(info.value) and "not homogeneous" in str(info.value)


def test_a_wrong_hint_is_not_trusted(data):
    """numeric_structure only orders the guesses: a false hint still ends at a verified kernel."""
    model = load_model("mlp", input_dim=3, hidden=(3,), activation="leaky_relu", slope=0.2)
    model.numeric_structure = {"activation": "relu", "slope": 0.7, "first_bias": True}
    kernel = kernel_for(model, data)
    assert isinstance(kernel, CasadiKernel) or check_kernel_against_model(kernel, model) < 1e-10


def test_numpy_integer_widths_are_accepted():
    model = load_model("mlp", input_dim=3, hidden=np.array([3, 2]))
    assert model.layout.shapes[:2] == ((3, 3), (2, 3))


def test_bad_mlp_options_are_model_errors():
    with pytest.raises(ModelError, match="bias must be"):
        load_model("mlp", input_dim=3, bias="yes")
