"""K-output PyTorch / numpy MLPs as K-output lexmargin models (issue 16, front doors): margin rows
f_{n,j} = g_{y_n}(x_n) - g_j(x_n) and their gradients against torch's forward and autograd in float64, the
state_dict way back, a max-margin certificate of a bare Linear(d, K) read back into torch, and the stationarity
report of a K-output ReLU net trained in PyTorch."""

import numpy as np
import pytest

import lexmargin as lm
from lexmargin.interop.torch import from_arrays, to_arrays
from lexmargin.numeric import kernel_for
from lexmargin.numeric.multiclass import MulticlassLayeredNetKernel, MulticlassLinearKernel

torch = pytest.importorskip("torch")
nn = torch.nn
RTOL = 1e-12


def rel_close(actual, expected, rtol=RTOL):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    assert float(np.max(np.abs(actual - expected), initial=0.0)) <= rtol * scale, (actual, expected)


def classes_data(d, K, n=12, seed=0):
    rng = np.random.default_rng(seed)
    return lm.Dataset(rng.standard_normal((n, d)), np.arange(n) % K, n_classes=K)


def torch_rows(net, data):
    """f_{n,j} = g_{y_n} - g_j (sample-major, j increasing) and their gradients (R, P) in theta's order, from
    torch's forward and autograd only."""
    X = torch.tensor(data.X, dtype=torch.float64)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    params = [linears[0].weight] + ([linears[0].bias] if linears[0].bias is not None else []) + \
        [m.weight for m in linears[1:]]
    g = net(X)
    rows = [(n, j) for n, label in enumerate(data.labels) for j in range(g.shape[1]) if j != label]
    f = torch.stack([g[n, int(data.labels[n])] - g[n, j] for n, j in rows])
    grads = [torch.cat([p.reshape(-1) for p in torch.autograd.grad(f[r], params, retain_graph=True)])
             for r in range(len(rows))]
    return f.detach().numpy(), torch.stack(grads).numpy(), np.array(rows)


def _nets():
    F = nn.functional

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.out = nn.Linear(4, 5), nn.Linear(5, 3, bias=False)

        def forward(self, x):
            return self.out(F.relu(self.fc1(x)))

    return {
        "linear": (nn.Linear(4, 3, bias=False), "multiclass_linear"),
        "relu": (nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3, bias=False)), "mlp_relu"),
        "leaky_deep": (nn.Sequential(nn.Linear(4, 5, bias=False), nn.LeakyReLU(0.1), nn.Linear(5, 3, bias=False),
                                     nn.LeakyReLU(0.1), nn.Linear(3, 4, bias=False)), "mlp_leaky_relu"),
        "mixed": (nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3, bias=False), nn.LeakyReLU(0.3),
                                nn.Linear(3, 3, bias=False)), "mlp_mixed"),
        "no_activation": (nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3, bias=False)), "mlp_linear"),
        "functional_fx": (Functional(), "mlp_relu"),
    }


@pytest.mark.parametrize("name", ["linear", "relu", "leaky_deep", "mixed", "no_activation", "functional_fx"])
def test_k_output_margins_and_gradients_equal_torch(name):
    torch.manual_seed(0)
    net, model_name = _nets()[name]
    net = net.double()
    for p in net.parameters():
        nn.init.normal_(p)
    model, theta = lm.from_torch(net)
    K = int([m for m in net.modules() if isinstance(m, nn.Linear)][-1].out_features)
    assert model.name == model_name and model.n_outputs == K and theta.dtype == np.float64
    data = classes_data(4, K, seed=1)
    f, J, rows = torch_rows(net, data)
    rel_close(model.margins(theta, data), f)
    rel_close(model.margin_jacobian(theta, data), J)
    rel_close(model.decision_function(theta, data.X), net(torch.tensor(data.X)).detach().numpy())
    assert np.array_equal(lm.MarginRows.of(data).pairs, rows)
    kernel = kernel_for(model, data)
    if model_name == "multiclass_linear":
        assert isinstance(kernel, MulticlassLinearKernel)
    if model_name in ("mlp_relu", "mlp_leaky_relu"):
        assert isinstance(kernel, MulticlassLayeredNetKernel)
    rel_close(kernel.margins(theta), f)
    rel_close(kernel.margin_jacobian(theta), J)
    state = lm.to_state_dict(model, theta, net)
    assert list(state) == list(net.state_dict())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_k_output_arrays_round_trip_and_binary_data_is_refused():
    rng = np.random.default_rng(2)
    layers = [{"weight": rng.standard_normal((5, 3)), "bias": rng.standard_normal(5)},
              {"weight": rng.standard_normal((4, 5))}]
    model, theta = from_arrays(layers, activation="leaky_relu", slope=0.2)
    assert model.n_outputs == 4 and model.degree == 2
    back = to_arrays(model, theta)
    assert all(np.array_equal(got[k], want[k]) for got, want in zip(back, layers) for k in want)
    W = rng.standard_normal((3, 2))
    linear, theta_w = from_arrays([{"weight": W}])
    assert linear.name == "multiclass_linear" and np.array_equal(to_arrays(linear, theta_w)[0]["weight"], W)
    binary = lm.Dataset(rng.standard_normal((6, 3)), np.where(rng.random(6) < 0.5, 1.0, -1.0))
    with pytest.raises(lm.ClassCountError):
        model.margins(theta, binary)


def separable(d=3, K=3, n=24, seed=0, gap=0.3):
    """Samples labelled by argmax of a random W x, kept where the best class wins by ``gap``."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, d))
    X = rng.standard_normal((6 * n, d))
    scores = X @ W.T
    ordered = np.sort(scores, axis=1)
    keep = np.flatnonzero(ordered[:, -1] - ordered[:, -2] > gap)[:n]
    return lm.Dataset(X[keep], np.argmax(scores[keep], axis=1), n_classes=K)


def test_certificate_of_a_torch_linear_layer_agrees_with_torch():
    data = separable()
    net = nn.Linear(3, 3, bias=False).double()
    model, _ = lm.from_torch(net)
    cert = lm.max_margin(model, data)
    native = lm.max_margin(lm.load_model("multiclass_linear", input_dim=3, n_classes=3), data)
    assert cert.status == "optimal" and native.status == "optimal"
    rel_close(cert.theta, native.theta, 1e-10)
    assert np.array_equal(cert.margin_rows, native.margin_rows)
    net.load_state_dict(lm.to_state_dict(model, cert.theta, net))
    f, J, rows = torch_rows(net, data)
    assert np.array_equal(cert.margin_rows, rows)
    rel_close(cert.margins, f)                                        # the certificate's rows are torch's
    # stationarity of the l2 objective ||W||^2, recomputed from torch's gradients: 2 W = sum lambda_r grad f_r
    rel_close(J.T @ cert.multipliers, 2.0 * cert.theta, 1e-8)
    assert np.min(f) >= 1.0 - 1e-9


def test_certificate_of_a_deep_linear_k_output_net_agrees_with_torch():
    """A 3-4-3 linear net (nonconvex in theta): max_margin from the torch weights certifies a KKT point; read back
    into torch, its margins are the certificate's and 2 theta = sum lambda_nj grad f_nj holds with torch's own
    gradients (measured 1.8e-15 and 3e-10 absolute)."""
    data = separable()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 3, bias=False)).double()
    model, theta0 = lm.from_torch(net)
    assert model.name == "mlp_linear" and model.n_outputs == 3 and model.degree == 2
    cert = lm.max_margin(model, data, init=theta0)
    assert cert.status == "optimal"
    net.load_state_dict(lm.to_state_dict(model, cert.theta, net))
    f, J, rows = torch_rows(net, data)
    assert np.array_equal(cert.margin_rows, rows)
    rel_close(cert.margins, f)
    rel_close(J.T @ cert.multipliers, 2.0 * cert.theta, 1e-8)


def train_in_torch(net, data, steps=3000, lr=0.5):
    """Full-batch GD on torch's mean cross-entropy (float64, deterministic)."""
    X = torch.tensor(data.X, dtype=torch.float64)
    y = torch.tensor(data.labels, dtype=torch.long)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(X), y)
        loss.backward()
        opt.step()
    return float(loss.detach())


def test_stationarity_report_of_a_trained_k_output_torch_net(tmp_path):
    from lexmargin.report import stationarity_report

    torch.manual_seed(0)
    data = separable(d=2, K=3, n=18, seed=3)
    net = nn.Sequential(nn.Linear(2, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False)).double()
    loss = train_in_torch(net, data, steps=1500)
    model, theta = lm.from_torch(net)
    f, _, _ = torch_rows(net, data)
    assert loss < 0.05 and np.min(f) > 0                      # the trained net separates its data
    report = stationarity_report(model, data, theta)
    R = data.n_samples * 2
    assert report.model == "mlp_relu" and report.degree == 2 and report.n_samples == data.n_samples
    assert report.margins.shape == report.multipliers.shape == (R,)
    rel_close(report.margins * report.scale ** 2, f)           # theta_hat = theta / scale, degree 2
    assert report.kkt.primal_violation <= 1e-9 and np.isfinite(report.kkt.epsilon)
    assert 0 < report.kkt.relative_epsilon < 1 and report.support.size >= 1
    assert np.all(report.multipliers >= 0) and np.all(report.multipliers[np.setdiff1d(np.arange(R),
                                                                                      report.support)] == 0)
    assert np.allclose(report.normalized_margin, np.min(f) / np.linalg.norm(theta) ** 2, rtol=1e-12)
    report.save(tmp_path / "r")
    assert (tmp_path / "r" / "report.json").is_file()
