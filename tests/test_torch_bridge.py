"""PyTorch / numpy MLPs as lexmargin models: margins and gradients against torch's forward and autograd in
float64, state_dict round trips, every refusal, reports and the CLI's --state-dict.

The numpy tests (from_arrays, .npz state dicts) run without PyTorch; the others skip when it is missing.
"""

import json
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lexmargin as lm
from lexmargin import DataError, HomogeneityError, ModelError
from lexmargin.cli import main
from lexmargin.interop.torch import from_arrays, load_state_dict, to_arrays
from lexmargin.numeric import LayeredNetKernel, kernel_for

RTOL = 1e-12


def rel_close(actual, expected, rtol=RTOL):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    assert float(np.max(np.abs(actual - expected), initial=0.0)) <= rtol * scale, (actual, expected)


def dataset(d, n=12, seed=0):
    rng = np.random.default_rng(seed)
    return lm.Dataset(rng.standard_normal((n, d)), np.where(rng.random(n) < 0.5, 1.0, -1.0))


def numpy_forward(layers, X, activation="relu", slope=0.01):
    """g(x) of a list of {"weight", "bias"} layers written out in numpy (an independent reference)."""
    h = X.T
    for i, layer in enumerate(layers):
        h = layer["weight"] @ h + (layer["bias"][:, None] if "bias" in layer else 0.0)
        if i < len(layers) - 1:
            h = {"relu": np.maximum(h, 0), "leaky_relu": np.maximum(h, slope * h), "identity": h}[activation]
    return h[0]


def random_layers(widths, bias=False, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    layers = [{"weight": scale * rng.standard_normal((o, i))} for i, o in pairwise(widths)]
    if bias:
        layers[0]["bias"] = rng.standard_normal(widths[1])
    return layers


# ---- numpy / JAX front door (no PyTorch) ---------------------------------------------------------------
@pytest.mark.parametrize("widths, activation, bias", [
    ((3, 5, 1), "relu", False),
    ((3, 5, 1), "relu", True),
    ((3, 4, 3, 1), "leaky_relu", True),
    ((3, 2, 4, 3, 1), "relu", True),
    ((3, 4, 1), "identity", True),
    ((3, 1), "relu", False),
])
def test_from_arrays_margins_and_kernel(widths, activation, bias):
    layers = random_layers(widths, bias, seed=len(widths))
    model, theta = from_arrays(layers, activation=activation, slope=0.2)
    data = dataset(widths[0])
    expected = data.y * numpy_forward(layers, data.X, activation, 0.2)
    rel_close(model.margins(theta, data), expected)
    kernel = kernel_for(model, data)
    rel_close(kernel.margins(theta), expected)
    rel_close(kernel.margin_jacobian(theta), model.margin_jacobian(theta, data))
    if len(widths) > 2 and activation != "identity":
        assert isinstance(kernel, LayeredNetKernel) and kernel.first_bias == bias
        assert model.name == f"mlp_{activation}"
    assert model.degree == len(widths) - 1
    back = to_arrays(model, theta)
    assert len(back) == len(layers)
    for got, want in zip(back, layers):
        assert set(got) == set(want) and all(np.array_equal(got[k], want[k]) for k in want)


def test_from_arrays_reads_a_state_dict_mapping_in_order():
    layers = random_layers((4, 3, 2, 1), bias=True, seed=3)
    mapping = {"net.0.weight": layers[0]["weight"], "net.0.bias": layers[0]["bias"],
               "net.2.weight": layers[1]["weight"], "net.4.weight": layers[2]["weight"]}
    model, theta = from_arrays(mapping, activation="leaky_relu", slope=0.1)
    model2, theta2 = from_arrays(layers, activation="leaky_relu", slope=0.1)
    assert np.array_equal(theta, theta2) and model.layout == model2.layout


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(1, 3), width=st.integers(1, 4), bias=st.booleans(), log_scale=st.floats(-3, 3),
       leaky=st.booleans(), seed=st.integers(0, 2**16))
def test_from_arrays_equals_numpy_at_any_scale(depth, width, bias, log_scale, leaky, seed):
    widths = (3,) + (width,) * depth + (1,)
    layers = random_layers(widths, bias, seed=seed, scale=10.0 ** log_scale)
    activation = "leaky_relu" if leaky else "relu"
    model, theta = from_arrays(layers, activation=activation, slope=0.3)
    data = dataset(3, n=6, seed=seed)
    rel_close(model.margins(theta, data), data.y * numpy_forward(layers, data.X, activation, 0.3), rtol=1e-11)


@pytest.mark.parametrize("layers, kwargs, error, fragment", [
    ([{"weight": np.ones((4, 3))}, {"weight": np.ones((2, 4)), "bias": np.ones(2)}], {}, HomogeneityError,
     "output layer '1' has a bias"),                   # K outputs: the output bias is refused as for one
    ([{"weight": np.ones((4, 3))}, {"weight": np.ones((0, 4))}], {}, ModelError, "has no outputs"),
    ([{"weight": np.ones((4, 3))}, {"weight": np.ones((1, 5))}], {}, ModelError, "takes 5 inputs"),
    ([{"weight": np.ones((4, 3))}, {"weight": np.ones((1, 4)), "bias": np.ones(1)}], {}, HomogeneityError,
     "output layer '1' has a bias"),
    ([{"weight": np.ones((1, 3)), "bias": np.ones(1)}], {}, HomogeneityError, "output layer"),
    ([{"weight": np.ones((4, 3))}, {"weight": np.ones((2, 4)), "bias": np.ones(2)}, {"weight": np.ones((1, 2))}],
     {}, HomogeneityError, "hidden layer '1' has a bias"),
    (random_layers((3, 4, 1)), {"activation": "tanh"}, ModelError, "activation must be one of"),
    (random_layers((3, 4, 1)), {"activation": "leaky_relu", "slope": 1.5}, ModelError, "not in [0, 1]"),
    (random_layers((3, 4, 1)), {"input_dim": 5}, ModelError, "input_dim=5"),
    ([{"weight": np.ones(3)}], {}, ModelError, "must be 2-D"),
    ([{"weight": np.ones((4, 3)), "bias": np.ones(3)}, {"weight": np.ones((1, 4))}], {}, ModelError, "shape (4,)"),
    ([{"weight": np.full((1, 3), np.nan)}], {}, DataError, "non-finite"),
    ([{"w": np.ones((1, 3))}], {}, ModelError, "'weight'"),
    ({"0.weight": np.ones((4, 3)), "0.running_mean": np.ones(4)}, {}, ModelError, "0.running_mean"),
    ([], {}, ModelError, "no Linear layer"),
    ("layers", {}, ModelError, "layers must be"),
])
def test_from_arrays_refusals(layers, kwargs, error, fragment):
    with pytest.raises(error) as info:
        from_arrays(layers, **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_later_bias_is_a_homogeneity_error_for_a_reason():
    """f(c theta) with a second-layer bias is not c^L f(theta): the refusal is not a matter of taste."""
    x = np.array([0.3, 0.1])
    W1, W2, b2, a = np.array([[1.0, -0.5]]), np.array([[1.5]]), np.array([0.7]), np.array([2.0])

    def f(c):
        return float((c * a) @ np.maximum((c * W2) @ np.maximum((c * W1) @ x, 0) + c * b2, 0))

    assert not np.isclose(f(2.0), 2.0 ** 3 * f(1.0))


def test_to_arrays_refuses_models_of_other_layouts():
    with pytest.raises(ModelError, match="not an MLP"):
        to_arrays(lm.load_model("two_layer", input_dim=2), np.zeros(6))


# ---- PyTorch -----------------------------------------------------------------------------------------
def _torch():
    return pytest.importorskip("torch")


def _nets():
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.out = nn.Linear(6, 5), nn.Linear(5, 4, bias=False), nn.Linear(4, 1, bias=False)

        def forward(self, x):
            x = torch.flatten(x, 1)
            return self.out(F.relu(self.fc2(torch.relu(self.fc1(x)).relu())))

    class Leaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2))
            self.head = nn.Linear(4, 1, bias=False)

        def forward(self, x):
            return self.head(F.leaky_relu(self.body(x).flatten(1), negative_slope=1.0))   # slopes compose: 0.2

    return {
        "relu_1": (nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1, bias=False)), (3,), "mlp_relu"),
        "leaky_2": (nn.Sequential(nn.Linear(3, 4, bias=False), nn.LeakyReLU(0.1), nn.Linear(4, 3, bias=False),
                                  nn.LeakyReLU(0.1), nn.Linear(3, 1, bias=False)), (3,), "mlp_leaky_relu"),
        "flatten_identity_3": (nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.ReLU(), nn.Identity(),
                                             nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU()),
                                             nn.Linear(3, 3, bias=False), nn.ReLU(), nn.Identity(),
                                             nn.Linear(3, 1, bias=False)), (2, 3), "mlp_relu"),
        "mixed": (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3, bias=False), nn.LeakyReLU(0.3),
                                nn.Linear(3, 1, bias=False)), (3,), "mlp_mixed"),
        "no_activation": (nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1, bias=False)), (3,), "mlp_linear"),
        "functional_fx": (Functional(), (2, 3), "mlp_relu"),
        "leaky_fx": (Leaky(), (3,), "mlp_leaky_relu"),
    }


def torch_reference(net, shape, data):
    """Margins y_n g(x_n) and their gradients (N, P) in theta's order, from torch's forward and autograd."""
    torch = _torch()
    X = torch.tensor(data.X.reshape((-1,) + shape), dtype=torch.float64)
    y = torch.tensor(data.y)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    params = [linears[0].weight] + ([linears[0].bias] if linears[0].bias is not None else []) + \
        [m.weight for m in linears[1:]]
    f = y * net(X).squeeze(-1)
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(f[n], params, retain_graph=True)])
            for n in range(f.shape[0])]
    return f.detach().numpy(), torch.stack(rows).numpy()


@pytest.mark.parametrize("name", ["relu_1", "leaky_2", "flatten_identity_3", "mixed", "no_activation",
                                  "functional_fx", "leaky_fx"])
def test_margins_and_gradients_equal_torch(name):
    torch = _torch()
    torch.manual_seed(0)
    net, shape, model_name = _nets()[name]
    net = net.double()
    for p in net.parameters():
        torch.nn.init.normal_(p)
    model, theta = lm.from_torch(net)
    assert model.name == model_name and theta.dtype == np.float64
    data = dataset(int(np.prod(shape)), seed=1)
    f, J = torch_reference(net, shape, data)
    rel_close(model.margins(theta, data), f)
    rel_close(model.margin_jacobian(theta, data), J)
    kernel = kernel_for(model, data)
    if model_name in ("mlp_relu", "mlp_leaky_relu", "mlp_linear"):
        assert isinstance(kernel, LayeredNetKernel)
    rel_close(kernel.margins(theta), f)
    rel_close(kernel.margin_jacobian(theta), J)
    state = lm.to_state_dict(model, theta, net)
    assert list(state) == list(net.state_dict())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(widths=st.lists(st.integers(1, 5), min_size=0, max_size=3), bias=st.booleans(), leaky=st.booleans(),
       log_scale=st.floats(-2, 2), seed=st.integers(0, 2**16))
def test_random_architectures_equal_torch(widths, bias, leaky, log_scale, seed):
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)
    dims = [3] + widths + [1]
    modules = []
    for i, (n_in, n_out) in enumerate(pairwise(dims)):
        modules.append(nn.Linear(n_in, n_out, bias=bias and i == 0 and len(dims) > 2))
        if i < len(dims) - 2:
            modules.append(nn.LeakyReLU(0.05) if leaky else nn.ReLU())
    net = nn.Sequential(*modules).double()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_().mul_(10.0 ** log_scale)
    model, theta = lm.from_torch(net)
    data = dataset(3, n=8, seed=seed)
    f, J = torch_reference(net, (3,), data)
    rel_close(model.margins(theta, data), f)
    rel_close(kernel_for(model, data).margin_jacobian(theta), J)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_state_dict_round_trip_is_exact(dtype):
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1, bias=False)).to(getattr(torch, dtype))
    net.register_buffer("calls", torch.tensor([7]))          # not a weight: copied through unchanged
    model, theta = lm.from_torch(net, input_dim=3)
    state = lm.to_state_dict(model, theta, net)
    assert all(torch.equal(state[k], v) and state[k].dtype == v.dtype for k, v in net.state_dict().items())
    fresh = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1, bias=False)).to(getattr(torch, dtype))
    fresh.register_buffer("calls", torch.tensor([0]))
    scaled = lm.to_state_dict(model, 2.0 * theta, fresh)
    fresh.load_state_dict(scaled)
    x = torch.randn(5, 3, dtype=getattr(torch, dtype))
    assert torch.allclose(fresh(x), 4.0 * net(x))          # degree 2: theta -> 2 theta scales g by 4
    assert int(fresh.calls) == 0                             # the target module's buffer stays its own
    _, theta_back = lm.from_torch(fresh)
    assert np.array_equal(theta_back, 2.0 * theta)


def test_a_bare_linear_module_is_the_linear_model():
    torch = _torch()
    net = torch.nn.Linear(3, 1, bias=False).double()
    model, theta = lm.from_torch(net)
    assert model.degree == 1 and model.n_params == 3
    data = dataset(3)
    rel_close(model.margins(theta, data), torch_reference(net, (3,), data)[0])
    state = lm.to_state_dict(model, theta, net)
    assert list(state) == ["weight"] and torch.equal(state["weight"], net.weight)


def test_to_state_dict_refuses_a_model_of_another_net():
    torch = _torch()
    nn = torch.nn
    model, theta = lm.from_torch(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1, bias=False)))
    with pytest.raises(ModelError, match="does not match"):
        lm.to_state_dict(model, theta, nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(),
                                                     nn.Linear(4, 1, bias=False)))
    with pytest.raises(ModelError, match="has 2 layers"):
        lm.to_state_dict(model, theta, nn.Sequential(nn.Linear(3, 1, bias=False)))


def test_from_arrays_of_a_state_dict_equals_from_torch():
    torch = _torch()
    nn = torch.nn
    net = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1, bias=False)).double()
    model, theta = lm.from_torch(net)
    arrays = {k: v.numpy() for k, v in net.state_dict().items()}
    model2, theta2 = lm.from_arrays(arrays, activation="leaky_relu", slope=0.2)
    assert model.name == model2.name and np.array_equal(theta, theta2)


def _refusals():
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.out = nn.Linear(3, 3), nn.Linear(3, 1, bias=False)

        def forward(self, x):
            return self.out(x + self.fc(x))

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(3, 1, bias=False)

        def forward(self, x):
            return self.out(x) if x.sum() > 0 else -self.out(x)

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.out = nn.Linear(3, 3), nn.Linear(3, 1, bias=False)

        def forward(self, x):
            return self.out(F.relu(self.fc(F.relu(self.fc(x)))))

    class RawWeight(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1, 3))

        def forward(self, x):
            return F.linear(x, self.w)

    class Tanh(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.out = nn.Linear(3, 3), nn.Linear(3, 1, bias=False)

        def forward(self, x):
            return self.out(torch.tanh(self.fc(x)))

    out = nn.Linear(4, 1, bias=False)
    return [
        (nn.Sequential(nn.Linear(3, 4), nn.Tanh(), out), ModelError, "unsupported layer '1' (Tanh)"),
        (nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.1), out), ModelError, "(Dropout)"),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)), HomogeneityError, "output layer '2' has a bias"),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)), HomogeneityError, "output layer '2' has a bias"),
        (nn.Sequential(nn.Linear(3, 1)), HomogeneityError, "has a bias"),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), out), HomogeneityError,
         "hidden layer '2' has a bias"),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), out, nn.ReLU()), ModelError, "follows the output layer"),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 4), nn.ReLU(), out), ModelError, "before the first Linear"),
        (nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(1.5), out), ModelError, "not in [0, 1]"),
        (nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(-0.1), out), ModelError, "not in [0, 1]"),
        (nn.Sequential(nn.Flatten(0), nn.Linear(3, 4), nn.ReLU(), out), ModelError, "start_dim=0"),
        (nn.Sequential(nn.LazyLinear(4), nn.ReLU(), out), ModelError, "uninitialized lazy Linear"),
        (Residual(), ModelError, "not a plain chain"),
        (Branchy(), ModelError, "cannot trace Branchy.forward"),
        (Shared(), ModelError, "applied more than once"),
        (RawWeight(), ModelError, "tensor 'w'"),
        (Tanh(), ModelError, "unsupported call tanh"),
        ("not a module", ModelError, "takes a torch.nn.Module"),
    ]


@pytest.mark.parametrize("index", range(18))
def test_refusals_name_the_layer_on_one_line(index):
    net, error, fragment = _refusals()[index]
    with pytest.raises(error) as info:
        lm.from_torch(net)
    assert fragment in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_input_dim_and_non_finite_weights():
    torch = _torch()
    nn = torch.nn
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 2), nn.ReLU(), nn.Linear(2, 1, bias=False))
    assert lm.from_torch(net, input_dim=6)[0].input_dim == 6
    with pytest.raises(ModelError, match="input_dim=5"):
        lm.from_torch(net, input_dim=5)
    with torch.no_grad():
        net[1].weight[0, 0] = float("nan")
    with pytest.raises(DataError, match="non-finite"):
        lm.from_torch(net)


def test_stationarity_report_of_a_torch_net():
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1, bias=False)).double()
    model, theta = lm.from_torch(net)
    X = np.random.default_rng(4).standard_normal((20, 2))
    y = np.where(model.decision_function(theta, X) >= 0, 1.0, -1.0)     # separated by the net itself
    from lexmargin.report import stationarity_report

    report = stationarity_report(model, lm.Dataset(X, y), theta)
    assert report.model == "mlp_relu" and report.n_params == theta.size == 2 * 6 + 6 + 6
    assert report.degree == 2 and report.kkt.primal_violation <= 1e-9 and np.isfinite(report.kkt.epsilon)


# ---- CLI: lexmargin report --state-dict ---------------------------------------------------------------
@pytest.fixture()
def saved(tmp_path):
    layers = random_layers((2, 4, 3, 1), bias=True, seed=5)
    model, theta = from_arrays(layers)
    rng = np.random.default_rng(6)
    X = rng.standard_normal((15, 2))
    y = np.where(model.decision_function(theta, X) >= 0, 1.0, -1.0)
    lm.Dataset(X, y).save(tmp_path / "data.npz")
    np.savez(tmp_path / "net.npz", **{"0.weight": layers[0]["weight"], "0.bias": layers[0]["bias"],
                                      "2.weight": layers[1]["weight"], "4.weight": layers[2]["weight"]})
    return tmp_path, model, theta


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:            # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_reports_an_npz_state_dict(saved, capsys):
    tmp, model, theta = saved
    code, _, err = run(["report", "--state-dict", tmp / "net.npz", tmp / "data.npz", "--out", tmp / "r",
                          "--no-progress"], capsys)
    assert code == 0, err
    report = json.loads((tmp / "r" / "report.json").read_text())
    assert report["model"] == "mlp_relu" and report["n_params"] == model.n_params
    assert np.allclose(report["theta"], theta, rtol=0, atol=0)


def test_cli_reports_a_torch_state_dict(saved, capsys):
    torch = _torch()
    tmp = saved[0]
    arrays = load_state_dict(tmp / "net.npz")
    torch.save({k: torch.tensor(v) for k, v in arrays.items()}, tmp / "net.pt")
    code, _, err = run(["report", "--state-dict", tmp / "net.pt", "--activation", "leaky_relu", "--slope", "0.1",
                          tmp / "data.npz", "--out", tmp / "r", "--no-progress"], capsys)
    assert code == 0, err
    assert json.loads((tmp / "r" / "report.json").read_text())["model"] == "mlp_leaky_relu"


@pytest.mark.parametrize("argv, fragment", [
    (["--state-dict", "{tmp}/net.npz"], "the following arguments are required: ARG"),
    (["--state-dict", "{tmp}/net.npz", "mlp", "{tmp}/data.npz"], "takes DATA only; got 2"),
    (["--state-dict", "{tmp}/net.npz", "-"], "give the data file"),
    (["--state-dict", "{tmp}/net.npz", "{tmp}/data.npz", "-o", "hidden=3"], "-o does not apply"),
    (["--state-dict", "{tmp}/net.npz", "{tmp}/data.npz", "--run", "1"], "--run does not apply"),
    (["--state-dict", "{tmp}/net.npz", "{tmp}/data.npz", "--slope", "0.2"], "--slope is the negative slope"),
    (["--state-dict", "{tmp}/net.npz", "{tmp}/data.npz", "--activation", "leaky_relu", "--slope", "2"],
     "not in [0, 1]"),
    (["--state-dict", "{tmp}/missing.npz", "{tmp}/data.npz"], "state_dict file not found"),
    (["--state-dict", "{tmp}/data.npz", "{tmp}/data.npz"], "neither <layer>.weight nor <layer>.bias"),
    (["--state-dict", "{tmp}/bad.pt", "{tmp}/data.npz"], "not a lexmargin state_dict file"),
    (["--state-dict", "{tmp}/biased.npz", "{tmp}/data.npz"], "output layer '2' has a bias"),
    (["mlp", "{tmp}/data.npz", "{tmp}/t.npz", "--activation", "relu"], "--activation and --slope describe"),
    (["mlp", "{tmp}/data.npz"], "takes MODEL DATA THETA"),
])
def test_cli_state_dict_errors_are_one_line(saved, capsys, argv, fragment):
    tmp = saved[0]
    (tmp / "bad.pt").write_bytes(b"not a torch file")
    np.savez(tmp / "biased.npz", **{"0.weight": np.ones((3, 2)), "2.weight": np.ones((1, 3)), "2.bias": np.ones(1)})
    if "bad.pt" in " ".join(argv):
        _torch()
    code, _, err = run(["report"] + [a.format(tmp=tmp) for a in argv] + ["--out", tmp / "o"], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err
