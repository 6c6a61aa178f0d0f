"""The kernel registry: model families declare their kernel; no shape reading for them; no silent CasADi fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lexmargin import Block, Dataset, Model, load_model, ops
from lexmargin.numeric import kernels as kernels_module
from lexmargin.numeric import registry
from lexmargin.numeric.kernels import (
    CasadiKernel,
    LayeredNetKernel,
    LinearKernel,
    SumKernel,
    SVMBiasKernel,
    check_kernel_against_model,
    kernel_for,
)
from lexmargin.numeric.multiclass import MulticlassLayeredNetKernel, MulticlassLinearKernel
from lexmargin.numeric.registry import (
    KernelFallbackWarning,
    KernelUnavailable,
    declaration,
    register_kernel,
    registered_families,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    return Dataset(X, np.where(X[:, 0] - X[:, 2] > 0, 1.0, -1.0))


@pytest.fixture
def multiclass_data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((15, 3))
    return Dataset(X, np.argmax(X @ rng.standard_normal((3, 3)), axis=1), n_classes=3)


@pytest.fixture
def no_shape_reading(monkeypatch):
    """Reading a kernel from the arrays' shapes fails the test: declared families must not need it."""
    def refuse(*args, **kwargs):
        raise AssertionError("kernel_for read the arrays' shapes for a declared family")
    monkeypatch.setattr(kernels_module, "_candidates", refuse)


BUNDLED = [
    ("linear", {}, LinearKernel),
    ("svm_bias", {"sign": "positive"}, SVMBiasKernel),
    ("svm_bias", {"sign": "both"}, SVMBiasKernel),
    ("deep_linear", {"depth": 1}, LinearKernel),
    ("deep_linear", {"depth": 3, "width": 2}, LayeredNetKernel),
    ("two_layer", {"activation": "square", "width": 3}, LayeredNetKernel),
    ("two_layer", {"activation": "leaky_relu", "slope": 0.3}, LayeredNetKernel),
    ("mlp", {"hidden": (3, 2), "bias": True}, LayeredNetKernel),
    ("mlp", {"hidden": ()}, LinearKernel),
    ("ensemble", {"depths": (1, 2, 3)}, SumKernel),
    ("ensemble", {"depths": (2, 3), "activation": "relu"}, SumKernel),
    ("log_predictor", {}, CasadiKernel),
]


@pytest.mark.parametrize("name, options, kind", BUNDLED, ids=[f"{b[0]}-{i}" for i, b in enumerate(BUNDLED)])
def test_bundled_families_get_their_declared_kernel_without_warning(data, no_shape_reading, name, options, kind):
    model = load_model(name, input_dim=3, **options)
    assert declaration(model) is not None and declaration(model)[0] in registered_families()
    with warnings.catch_warnings():
        warnings.simplefilter("error", KernelFallbackWarning)
        kernel = kernel_for(model, data)
    assert type(kernel) is kind
    if kind is not CasadiKernel:
        assert check_kernel_against_model(kernel, model, points=2, seed=4) < 1e-10


@pytest.mark.parametrize("name, options, kind", [
    ("multiclass_linear", {"n_classes": 3}, MulticlassLinearKernel),
    ("mlp", {"hidden": (4,), "bias": True, "n_classes": 3}, MulticlassLayeredNetKernel),
])
def test_k_output_families(multiclass_data, no_shape_reading, name, options, kind):
    model = load_model(name, input_dim=3, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KernelFallbackWarning)
        kernel = kernel_for(model, multiclass_data)
    assert type(kernel) is kind
    assert check_kernel_against_model(kernel, model) < 1e-10


def test_the_declared_activation_is_built_not_guessed(data, no_shape_reading):
    """square and relu nets have the same arrays: the declaration, not the shapes, decides."""
    kernel = kernel_for(load_model("two_layer", input_dim=3, activation="square", width=2), data)
    assert kernel.activation == "square"


def _tanh_model():
    return Model("tanh", [Block.array("w", (3,), None)], input_dim=3, output=lambda p, x: ops.tanh(p["w"] @ x))


def test_an_unregistered_family_warns_and_names_it(data):
    model = _tanh_model()
    model.numeric_structure = {"family": "tanh_net"}
    with pytest.warns(KernelFallbackWarning, match=r"model 'tanh'.*family 'tanh_net'.*no registered kernel"):
        kernel = kernel_for(model, data)
    assert isinstance(kernel, CasadiKernel)


def test_a_declaration_the_kernel_cannot_serve_says_what_is_missing(data):
    model = load_model("mlp", input_dim=3, hidden=(2,))
    model.numeric_structure = {"family": "layered_net", "activation": "relu"}      # no hidden widths
    with pytest.warns(KernelFallbackWarning, match="no hidden widths"):
        assert isinstance(kernel_for(model, data), CasadiKernel)
    model.numeric_structure = {"family": "layered_net", "hidden": (2,), "activation": "tanh"}
    with pytest.warns(KernelFallbackWarning, match="activation 'tanh' has no batched kernel"):
        assert isinstance(kernel_for(model, data), CasadiKernel)


def test_a_wrong_declaration_is_caught_by_the_verification(data):
    model = _tanh_model()
    model.numeric_structure = {"family": "linear"}
    with pytest.warns(KernelFallbackWarning, match=r"'linear' kernel does not reproduce.*relative"):
        assert isinstance(kernel_for(model, data), CasadiKernel)


def test_an_undeclared_unknown_model_warns(data):
    with pytest.warns(KernelFallbackWarning, match="declares no kernel family"):
        assert isinstance(kernel_for(_tanh_model(), data), CasadiKernel)


def test_an_undeclared_known_layout_is_still_read_from_its_arrays(data):
    model = Model("plain", [Block.array("v", (3,), 1)], input_dim=3, output=lambda p, x: p["v"] @ x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KernelFallbackWarning)
        assert isinstance(kernel_for(model, data), LinearKernel)


def test_a_family_registered_by_user_code(data, monkeypatch):
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))     # undone after the test
    calls = []

    @register_kernel("row_linear")
    def factory(request):
        calls.append(request)
        if request.options.get("orientation") != "row":
            raise KernelUnavailable("only a row vector w (1, d) is implemented")
        return [lambda dtype: LinearKernel(request.data, dtype=dtype)]

    model = Model("row", [Block.array("w", (1, 3), 1)], input_dim=3, output=lambda p, x: ops.dot(p["w"][0, :], x))
    model.numeric_structure = {"family": "row_linear", "orientation": "row"}
    assert "row_linear" in registered_families()
    kernel = kernel_for(model, data)
    assert isinstance(kernel, LinearKernel) and calls[0].options == {"orientation": "row"}
    assert calls[0].arrays == [("w", (1, 3))]
    model.numeric_structure = {"family": "row_linear", "orientation": "column"}
    with pytest.warns(KernelFallbackWarning, match=r"only a row vector w \(1, d\) is implemented"):
        kernel_for(model, data)
    with pytest.raises(TypeError):
        register_kernel("")
