"""The bundled declaration files in models/: build, formulas, homogeneity, options and loading."""

import importlib
from pathlib import Path

import numpy as np
import pytest

from lexmargin import Model, ModelError, check_homogeneity, load_model
from lexmargin.modeling.loading import BUNDLED

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

# (file, options, block degrees, joint degree, n_params(D))
CASES = [
    ("linear", {}, [1], 1, lambda D: D),
    ("svm_bias", {}, [1, 2], None, lambda D: D + 1),
    ("svm_bias", {"sign": "both"}, [1, 2], None, lambda D: D + 2),
    ("deep_linear", {"depth": 1}, [1], 1, lambda D: D),
    ("deep_linear", {"depth": 2, "width": 3}, [1, 1], 2, lambda D: 3 * D + 3),
    ("deep_linear", {"depth": 4, "width": 2}, [1, 1, 1, 1], 4, lambda D: 2 * D + 4 + 4 + 2),
    ("two_layer", {"activation": "square", "width": 2}, [2, 1], 3, lambda D: 2 * D + 2),
    ("two_layer", {"activation": "squared_relu", "width": 2}, [2, 1], 3, lambda D: 2 * D + 2),
    ("two_layer", {"activation": "relu", "width": 2}, [1, 1], 2, lambda D: 2 * D + 2),
    ("two_layer", {"activation": "leaky_relu", "width": 2, "slope": 0.2}, [1, 1], 2, lambda D: 2 * D + 2),
    ("mlp", {"hidden": (2,)}, [1, 1], 2, lambda D: 2 * D + 2),
    ("mlp", {"hidden": (2, 3), "bias": True}, [1, 1, 1], 3, lambda D: 2 * D + 2 + 6 + 3),
    ("mlp", {"hidden": (2,), "activation": "leaky_relu", "slope": 0.3, "bias": True}, [1, 1], 2,
     lambda D: 2 * D + 2 + 2),
    ("mlp", {"hidden": ()}, [1], 1, lambda D: D),
    ("ensemble", {"widths": 2}, [1, 2, 3], None, lambda D: D + (2 * D + 2) + (2 * D + 4 + 2)),
    ("ensemble", {"depths": (2, 3), "widths": {2: 1, 3: 1}, "activation": "relu"}, [2, 3], None,
     lambda D: (D + 1) + (D + 1 + 1)),
    ("ensemble", {"depths": (1,)}, [1], 1, lambda D: D),
    ("log_predictor", {}, [None], None, lambda D: D),
    ("log_predictor", {"eps": 0.5}, [None], None, lambda D: D),
    ("multiclass_linear", {}, [1], 1, lambda D: 3 * D),           # K outputs: a scalar label probes y * sum_k g_k
    ("multiclass_linear", {"n_classes": 5}, [1], 1, lambda D: 5 * D),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in opts.items()) or 'default'}" for name, opts, *_ in CASES]


def _data(D, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 1.0, size=(4, D)), np.array([1.0, -1.0, 1.0, -1.0])


def test_every_bundled_name_has_a_file_and_vice_versa():
    files = {p.stem for p in MODELS_DIR.glob("*.py") if p.stem != "__init__"}
    assert files == set(BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_files_document_formula_and_options(name):
    module = importlib.import_module(f"lexmargin.models.{name}")
    assert module.__doc__ and "f" in module.__doc__
    assert "Options:" in module.build.__doc__


@pytest.mark.parametrize("D", [1, 2, 5])
@pytest.mark.parametrize("name, options, degrees, joint, n_params", CASES, ids=IDS)
def test_builds_for_any_input_dim(name, options, degrees, joint, n_params, D):
    model = load_model(name, input_dim=D, **options)
    assert isinstance(model, Model) and model.input_dim == D
    assert [b.degree for b in model.blocks] == degrees
    assert model.degree == joint
    assert model.n_params == n_params(D)
    X, y = _data(D)
    theta = np.full(model.n_params, 0.7)  # w . (y x) > 0 for the log predictors
    margin = model.margin_numpy(theta, X[0], y[0])
    assert np.isfinite(margin)


@pytest.mark.parametrize("name, options, degrees, joint, n_params", CASES, ids=IDS)
def test_homogeneity_proved_symbolically(name, options, degrees, joint, n_params):
    model = load_model(name, input_dim=2, **options)
    report = check_homogeneity(model, symbolic=True, raise_on_failure=True)
    for check in report.blocks:
        if check.declared is None:
            assert check.numeric_ok is None
        else:
            assert check.numeric_ok and check.symbolic_ok, check


# ---- formulas, evaluated in numpy against hand-written code --------------------------------------
def _margin(model, theta, x, y):
    return model.margin_numpy(theta, x, y)


def test_svm_bias_formulas():
    x, y = np.array([0.5, -1.0]), -1.0
    pos = load_model("svm_bias", input_dim=2)
    assert _margin(pos, np.array([1.0, 2.0, 3.0]), x, y) == pytest.approx(y * (0.5 - 2.0 + 9.0))
    both = load_model("svm_bias", input_dim=2, sign="both")
    p = both.unflatten(np.array([1.0, 2.0, 3.0, 4.0]))
    assert list(p) == ["w", "b1", "b2"]
    assert _margin(both, np.array([1.0, 2.0, 3.0, 4.0]), x, y) == pytest.approx(y * (0.5 - 2.0 + 9.0 - 16.0))


def test_deep_linear_is_a_matrix_product():
    model = load_model("deep_linear", input_dim=3, depth=3, width=2)
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(model.n_params)
    p = model.unflatten(theta)
    x = rng.standard_normal(3)
    assert [b.name for b in model.blocks] == ["layer1", "layer2", "layer3"]
    assert _margin(model, theta, x, -1.0) == pytest.approx(-(p["W3"] @ p["W2"] @ p["W1"] @ x))


@pytest.mark.parametrize("activation, sigma", [
    ("square", lambda z: z ** 2), ("squared_relu", lambda z: np.maximum(z, 0) ** 2),
    ("relu", lambda z: np.maximum(z, 0)), ("leaky_relu", lambda z: np.where(z > 0, z, 0.1 * z)),
])
def test_two_layer_formula(activation, sigma):
    model = load_model("two_layer", input_dim=3, activation=activation, width=4)
    theta = np.random.default_rng(2).standard_normal(model.n_params)
    p = model.unflatten(theta)
    x = np.array([0.3, -1.2, 0.8])
    assert _margin(model, theta, x, 1.0) == pytest.approx(p["a"] @ sigma(p["V"] @ x))


def test_ensemble_is_the_sum_of_its_sub_models():
    model = load_model("ensemble", input_dim=2, widths={2: 3, 3: 2}, activation="relu")
    theta = np.random.default_rng(3).standard_normal(model.n_params)
    p = model.unflatten(theta)
    x = np.array([0.4, -0.9])

    def relu(z):
        return np.maximum(z, 0)

    expected = (p["w1"] @ x + p["u2"] @ relu(p["U2_1"] @ x)
                + p["u3"] @ relu(p["U3_2"] @ relu(p["U3_1"] @ x)))
    assert _margin(model, theta, x, -1.0) == pytest.approx(-expected)
    assert [b.name for b in model.blocks] == ["depth1", "depth2", "depth3"]
    assert model.is_sum_of_blocks


def test_log_predictors():
    x, y, w = np.array([1.0, -2.0]), -1.0, np.array([0.5, 1.5])
    z = w @ (y * x)  # 3.5
    assert _margin(load_model("log_predictor", input_dim=2), w, x, y) == pytest.approx(np.log(z))
    s = np.log(z)
    eps_model = load_model("log_predictor", input_dim=2, eps=0.5)
    assert _margin(eps_model, w, x, y) == pytest.approx(s * abs(s) ** 0.5)
    small = np.array([0.1, 0.1])  # s < 0: the odd extension keeps the sign
    s = np.log(small @ (y * x))
    assert s < 0 and _margin(eps_model, small, x, y) == pytest.approx(-abs(s) ** 1.5)
    with np.errstate(invalid="ignore"):
        assert np.isnan(_margin(load_model("log_predictor", input_dim=2), -w, x, y))


# ---- option errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options, message", [
    ("linear", {"width": 3}, "no options"),
    ("svm_bias", {"sign": "negative"}, "sign must be one of"),
    ("deep_linear", {"depth": 0}, "depth must be a positive integer"),
    ("deep_linear", {"depth": 2, "width": 1.5}, "width must be a positive integer"),
    ("two_layer", {"activation": "sigmoid"}, "activation must be one of"),
    ("two_layer", {"width": 0}, "width must be a positive integer"),
    ("two_layer", {"activation": "leaky_relu", "slope": 2.0}, "slope must be in"),
    ("mlp", {"activation": "tanh"}, "activation must be one of"),
    ("mlp", {"hidden": (2, 0)}, "hidden must be a sequence of positive integers"),
    ("mlp", {"activation": "leaky_relu", "slope": 1.5}, "slope must be in"),
    ("mlp", {"hidden": (2,), "bias": (True, True, False)}, "2 booleans"),
    ("ensemble", {"depths": (1, 1)}, "distinct"),
    ("ensemble", {"depths": ()}, "at least one"),
    ("ensemble", {"widths": {2: 2}}, r"no width for depths \[3\]"),
    ("ensemble", {"activation": "tanh"}, "activation must be one of"),
    ("log_predictor", {"eps": -0.1}, "eps must be a finite number >= 0"),
    ("log_predictor", {"eps": float("nan")}, "eps must be a finite number >= 0"),
])
def test_bad_options_raise_model_error(name, options, message):
    with pytest.raises(ModelError, match=message):
        load_model(name, input_dim=2, **options)


# ---- loading ------------------------------------------------------------------------------------
def test_load_by_path_name_module_and_callable():
    by_path = load_model(str(MODELS_DIR / "two_layer.py"), input_dim=3, activation="square")
    by_name = load_model("two_layer", input_dim=3, activation="square")
    by_module_name = load_model("lexmargin.models.two_layer", input_dim=3, activation="square")
    module = importlib.import_module("lexmargin.models.two_layer")
    by_module = load_model(module, input_dim=3, activation="square")
    by_callable = load_model(module.build, input_dim=3, activation="square")
    by_pathlib = load_model(MODELS_DIR / "two_layer.py", input_dim=3, activation="square")
    for model in (by_path, by_module_name, by_module, by_callable, by_pathlib):
        assert model.describe() == by_name.describe()
    assert load_model(by_name) is by_name


def test_load_user_file(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "from lexmargin import Block, Model, ops\n"
        "def build(input_dim, scale=1.0):\n"
        "    return Model('mine', [Block.array('w', input_dim, 2)], input_dim=input_dim,\n"
        "                 output=lambda p, x: scale * ops.dot(p['w'], x) * ops.dot(p['w'], p['w']) ** 0.5)\n")
    model = load_model(str(path), input_dim=2, scale=2.0)
    assert model.name == "mine" and model.degree == 2
    assert model.margin_numpy(np.array([3.0, 4.0]), np.array([1.0, 0.0]), 1.0) == pytest.approx(30.0)


def test_user_file_may_define_dataclasses(tmp_path):
    path = tmp_path / "with_dataclass.py"
    path.write_text(
        "from __future__ import annotations\n"
        "from dataclasses import dataclass\n"
        "from lexmargin.models import linear\n"
        "@dataclass(frozen=True)\n"
        "class Options:\n"
        "    scale: float = 1.0\n"
        "def build(input_dim):\n"
        "    return linear.build(input_dim)\n")
    assert load_model(str(path), input_dim=2).name == "linear"


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        load_model(str(tmp_path / "absent.py"), input_dim=2)
    with pytest.raises(ModelError, match="cannot find model 'no_such_model'"):
        load_model("no_such_model", input_dim=2)
    nobuild = tmp_path / "nobuild.py"
    nobuild.write_text("x = 1\n")
    with pytest.raises(ModelError, match=r"defines no build\(input_dim, \*\*options\) function"):
        load_model(str(nobuild), input_dim=2)
    text = tmp_path / "model.txt"
    text.write_text("def build(input_dim): pass\n")
    with pytest.raises(ModelError, match=r"must be a Python file \(.py\)"):
        load_model(str(text), input_dim=2)
    with pytest.raises(ModelError, match=r"must be a Python file \(.py\)"):
        load_model(str(tmp_path), input_dim=2)
    notmodel = tmp_path / "notmodel.py"
    notmodel.write_text("def build(input_dim):\n    return 42\n")
    with pytest.raises(ModelError, match="returned int, not a lexmargin Model"):
        load_model(str(notmodel), input_dim=2)
