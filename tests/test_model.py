"""Core model machinery: ops on every backend, CasADi evaluation vs numpy, parameters, declarations."""

import casadi as ca
import numpy as np
import pytest
import sympy as sp

from lexmargin import Block, DataError, Dataset, Model, ModelError, load_model, ops

pyo = pytest.importorskip("pyomo.environ")


# ---- ops: numpy, CasADi, SymPy and Pyomo agree -------------------------------------------------------
def _object_array(items):
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def _to_float(value, kind):
    value = np.asarray(value, dtype=object).reshape(-1) if isinstance(value, np.ndarray) else [value]
    if kind == "sympy":
        return np.array([float(v) for v in value])
    if kind == "pyomo":
        return np.array([pyo.value(v) for v in value])
    return np.array([float(v) for v in value])


def _evaluate(fn, arrays, kind):
    """fn(*arrays) on one backend, returned as a float vector."""
    if kind == "numpy":
        return np.atleast_1d(np.asarray(fn(*arrays), dtype=float)).reshape(-1)
    if kind == "casadi":
        syms = [ca.SX.sym(f"a{i}", a.size) for i, a in enumerate(arrays)]
        args = [_object_array([s[j] for j in range(a.size)]).reshape(a.shape) for s, a in zip(syms, arrays)]
        out = np.asarray(fn(*args), dtype=object).reshape(-1)
        f = ca.Function("f", syms, [ca.vertcat(*[ca.SX(v) for v in out])])
        return np.array(f(*[a.reshape(-1) for a in arrays])).reshape(-1)
    if kind == "sympy":
        args, subs = [], {}
        for i, a in enumerate(arrays):
            syms = [sp.Symbol(f"a{i}_{j}", real=True) for j in range(a.size)]
            subs.update(zip(syms, a.reshape(-1).tolist()))
            args.append(_object_array(syms).reshape(a.shape))
        out = np.asarray(fn(*args), dtype=object).reshape(-1)
        return np.array([float(sp.sympify(v).subs(subs)) for v in out])
    m = pyo.ConcreteModel()
    args = []
    for i, a in enumerate(arrays):
        var = pyo.Var(range(a.size), initialize=dict(enumerate(a.reshape(-1).tolist())))
        m.add_component(f"a{i}", var)
        args.append(_object_array([var[j] for j in range(a.size)]).reshape(a.shape))
    return _to_float(fn(*args), "pyomo")


VEC = np.array([0.7, -1.3, 0.0, 2.1])
POS = np.array([0.7, 1.3, 0.2, 2.1])
MAT = np.array([[1.0, -2.0, 0.5, 0.0], [0.3, 0.1, -1.0, 2.0]])
UNARY = {
    "exp": (ops.exp, VEC), "log": (ops.log, POS), "sqrt": (ops.sqrt, POS), "tanh": (ops.tanh, VEC),
    "abs": (ops.abs, VEC), "square": (ops.square, VEC), "power3": (lambda a: ops.power(a, 3), VEC),
    "power_half": (lambda a: ops.power(a, 0.5), POS), "relu": (ops.relu, VEC),
    "squared_relu": (ops.squared_relu, VEC), "leaky_relu": (lambda a: ops.leaky_relu(a, 0.2), VEC),
    "softplus": (ops.softplus, VEC), "sum": (ops.sum, VEC),
}
BINARY = {
    "maximum": (ops.maximum, VEC, POS - 1), "minimum": (ops.minimum, VEC, POS - 1),
    "dot": (ops.dot, VEC, POS), "matmul": (ops.matmul, MAT, VEC), "matmul_operator": (lambda a, b: a @ b, MAT, VEC),
    "arithmetic": (lambda a, b: (a * b - a / b + 2.0) ** 2, VEC, POS),
}
BACKENDS = ("casadi", "sympy", "pyomo")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops_agree_with_numpy(name, backend):
    fn, a = UNARY[name]
    expected = _evaluate(fn, [a], "numpy")
    np.testing.assert_allclose(_evaluate(fn, [a], backend), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_agree_with_numpy(name, backend):
    fn, a, b = BINARY[name]
    expected = _evaluate(fn, [a, b], "numpy")
    np.testing.assert_allclose(_evaluate(fn, [a, b], backend), expected, rtol=1e-12, atol=1e-14)


def test_backend_detection():
    x = ca.SX.sym("x")
    assert ops.backend_of(np.ones(2)) == "numpy"
    assert ops.backend_of(1.0, x) == "casadi"
    assert ops.backend_of(np.array([sp.Symbol("s")], dtype=object)) == "sympy"
    # an object array whose first entry is a plain number is still symbolic
    assert ops.backend_of(_object_array([0.0, x])) == "casadi"
    m = pyo.ConcreteModel()
    m.v = pyo.Var()
    assert ops.backend_of(_object_array([m.v])) == "pyomo"


def test_leaky_relu_rejects_slopes_outside_unit_interval():
    with pytest.raises(ValueError, match="slope"):
        ops.leaky_relu(VEC, 1.5)


# ---- margins, Jacobian and Hessian vs numpy and finite differences --------------------------------
RNG = np.random.default_rng(7)
X5 = RNG.uniform(0.2, 1.5, size=(5, 3)) * np.array([[1], [-1], [1], [-1], [1]])
Y5 = np.array([1.0, -1.0, 1.0, -1.0, 1.0])  # y_n x_n has positive entries: log predictors are defined
DATA5 = Dataset(X5, Y5)
MODELS = {
    "linear": {},
    "svm_bias_both": {"spec": "svm_bias", "sign": "both"},
    "deep_linear_3": {"spec": "deep_linear", "depth": 3, "width": 2},
    "two_layer_square": {"spec": "two_layer", "activation": "square", "width": 3},
    "two_layer_squared_relu": {"spec": "two_layer", "activation": "squared_relu", "width": 3},
    "ensemble": {"widths": 2},
    "log_predictor_eps": {"spec": "log_predictor", "eps": 0.5},
}


def _build(key):
    options = dict(MODELS[key])
    return load_model(options.pop("spec", key), input_dim=3, **options)


def _theta(model, seed=0):
    if model.name.startswith("log_predictor"):
        return np.array([0.9, 1.4, 0.6])  # <w, y x> in (1.1, 3.9): s = log(.) away from 0
    return np.random.default_rng(seed).standard_normal(model.n_params)


def _numpy_margins(model, theta):
    return np.array([model.margin_numpy(theta, x, y) for x, y in zip(X5, Y5)])


def _central_difference(fn, theta, h=1e-6):
    cols = [(fn(theta + h * e) - fn(theta - h * e)) / (2 * h) for e in np.eye(theta.size)]
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_casadi_margins_match_numpy(key):
    model = _build(key)
    theta = _theta(model)
    np.testing.assert_allclose(model.margins(theta, DATA5), _numpy_margins(model, theta), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_jacobian_matches_finite_differences(key):
    model = _build(key)
    theta = _theta(model)
    J = model.margin_jacobian(theta, DATA5)
    assert J.shape == (5, model.n_params)
    np.testing.assert_allclose(J, _central_difference(lambda t: _numpy_margins(model, t), theta),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("key", sorted(MODELS))
def test_weighted_hessian_matches_finite_differences(key):
    model = _build(key)
    theta = _theta(model)
    w = np.array([0.5, 1.0, 0.0, 2.0, 0.25])
    H = model.weighted_hessian(theta, DATA5, w)
    fd = _central_difference(lambda t: w @ model.margin_jacobian(t, DATA5), theta, h=1e-5)
    assert H.shape == (model.n_params, model.n_params)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    np.testing.assert_allclose(H, fd, rtol=1e-5, atol=1e-6)


def test_margin_form_can_multiply_y_and_x():
    """y * x inside margin= must stay elementwise on CasADi (SX * array used to become an SX matrix)."""
    model = Model("yx", [Block.array("w", 3)], input_dim=3, margin=lambda p, x, y: ops.dot(p["w"], y * x) ** 3)
    theta = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(model.margins(theta, DATA5), (Y5 * (X5 @ theta)) ** 3, rtol=1e-12)


def test_linear_model_helpers():
    model = load_model("linear", input_dim=3)
    w = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(model.decision_function(w, X5), X5 @ w)
    np.testing.assert_array_equal(model.predict(w, X5), np.where(X5 @ w >= 0, 1.0, -1.0))
    expected = np.min(Y5 * (X5 @ w)) / np.linalg.norm(w)
    assert model.normalized_margin(w, DATA5) == pytest.approx(expected, rel=1e-12)
    assert model.normalized_margin(3.0 * w, DATA5) == pytest.approx(expected, rel=1e-12)
    assert model.is_linear_in_params
    assert not _build("svm_bias_both").is_linear_in_params


def test_normalized_margin_is_homogeneous_of_degree_zero():
    model = _build("deep_linear_3")
    theta = _theta(model)
    assert model.normalized_margin(2.5 * theta, DATA5) == pytest.approx(model.normalized_margin(theta, DATA5))


def test_evaluation_errors_are_readable():
    model = load_model("linear", input_dim=3)
    with pytest.raises(ModelError, match="not homogeneous"):
        _build("log_predictor_eps").normalized_margin(np.ones(3), DATA5)
    with pytest.raises(ModelError, match="theta = 0"):
        model.normalized_margin(np.zeros(3), DATA5)
    with pytest.raises(DataError, match="expects 2 features"):
        load_model("linear", input_dim=2).margins(np.ones(2), DATA5)
    with pytest.raises(DataError, match="Dataset"):
        model.margins(np.ones(3), X5)
    with pytest.raises(ModelError, match="3 entries"):
        model.margins(np.ones(4), DATA5)
    with pytest.raises(ModelError, match="no raw output"):
        _build("log_predictor_eps").decision_function(np.ones(3), X5)
    with pytest.raises(DataError, match="expects 3 features"):
        model.decision_function(np.ones(3), np.ones((2, 2)))


# ---- parameters ---------------------------------------------------------------------------------
def test_flatten_unflatten_round_trip_and_order():
    model = load_model("two_layer", input_dim=3, activation="relu", width=2)
    theta = np.arange(model.n_params, dtype=float)
    p = model.unflatten(theta)
    assert list(p) == ["V", "a"]
    np.testing.assert_array_equal(p.V, np.arange(6.0).reshape(2, 3))  # C order
    np.testing.assert_array_equal(p["a"], [6.0, 7.0])
    np.testing.assert_array_equal(model.flatten(p), theta)
    assert model.block_slice("a") == slice(6, 8)
    np.testing.assert_array_equal(model.scale_block(theta, "a", 2.0)[6:], [12.0, 14.0])
    with pytest.raises(AttributeError):
        _ = p.missing


def test_flatten_unflatten_errors():
    model = load_model("two_layer", input_dim=3, activation="relu", width=2)
    with pytest.raises(ModelError, match=r"shape \(8,\)"):
        model.unflatten(np.zeros(7))
    with pytest.raises(ModelError, match=r"missing parameter arrays \['a'\]"):
        model.flatten({"V": np.zeros((2, 3))})
    with pytest.raises(ModelError, match=r"must have shape \(2, 3\)"):
        model.flatten({"V": np.zeros((3, 2)), "a": np.zeros(2)})
    with pytest.raises(ModelError, match="no block 'c'"):
        model.block_slice("c")
    with pytest.raises(ModelError, match="no block 'c'"):
        model.block("c")


def test_degrees_of_product_and_sum_forms():
    assert load_model("deep_linear", input_dim=2, depth=4).degree == 4
    assert load_model("two_layer", input_dim=2, activation="square").degree == 3
    assert load_model("svm_bias", input_dim=2).degree is None
    same = Model("same", [Block.array("u", 2, 1), Block.array("v", 2, 1)], input_dim=2,
                 summands={"u": lambda p, x: ops.dot(p["u"], x), "v": lambda p, x: ops.dot(p["v"], x)})
    assert same.degree == 1
    assert load_model("log_predictor", input_dim=2).degree is None


# ---- declarations -------------------------------------------------------------------------------
def _linear(p, x):
    return ops.dot(p["w"], x)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of"),
    ({"output": _linear, "margin": lambda p, x, y: y}, "exactly one of"),
    ({"summands": {"other": _linear}}, "one function per block"),
])
def test_declaration_must_be_unambiguous(kwargs, message):
    with pytest.raises(ModelError, match=message):
        Model("m", [Block.array("w", 2, 1)], input_dim=2, **kwargs)


def test_declaration_errors():
    with pytest.raises(ModelError, match="duplicate block"):
        Model("m", [Block.array("w", 2, 1), Block("w", {"v": 2}, 1)], input_dim=2, output=_linear)
    with pytest.raises(ModelError, match="duplicate array"):
        Model("m", [Block.array("w", 2, 1), Block("u", {"w": 2}, 1)], input_dim=2, output=_linear)
    with pytest.raises(ModelError, match="at least one parameter block"):
        Model("m", [], input_dim=2, output=_linear)
    with pytest.raises(ModelError, match="input_dim"):
        Model("m", [Block.array("w", 2, 1)], input_dim=0, output=_linear)
    with pytest.raises(ModelError, match="scalar per sample"):
        Model("m", [Block.array("w", 2, 1)], input_dim=2, output=lambda p, x: p["w"] * x)
    with pytest.raises(ModelError, match="non-positive dimension"):
        Block.array("w", (2, 0))
    with pytest.raises(ModelError, match="no parameter arrays"):
        Block("w", {})
    with pytest.raises(ModelError, match="must be positive"):
        Block.array("w", 2, degree=0)


# ---- formulas -----------------------------------------------------------------------------------
def test_linear_formula_and_latex():
    model = load_model("linear", input_dim=2)
    p, x, y = model.sympy_symbols()
    expected = y * (p["w"][0] * x[0] + p["w"][1] * x[1])
    assert sp.simplify(model.formula() - expected) == 0
    assert str(model.formula()) == "y*(w_0*x_0 + w_1*x_1)"
    latex = model.latex()
    assert "w_{0} x_{0}" in latex and "w_{1} x_{1}" in latex and latex.startswith("y")


def test_describe_is_plain_data():
    info = _build("ensemble").describe()
    assert info["form"] == "sum" and info["degree"] is None
    assert [b["degree"] for b in info["blocks"]] == [1, 2, 3]
