"""End to end: a ReLU MLP trained to zero loss in PyTorch on two digits, then examined with lexmargin.

1. PyTorch: a bias-free 64-8-1 ReLU MLP, float64, fixed seed, full-batch GD on the logistic loss, until
   it separates scikit-learn's digits 0 and 1 (the first 30 of each class: the exact solve below grows fast
   with N x width, docs/torch.md) and the mean loss is below 1e-3.
2. ``lm.from_torch``: the net as a lexmargin model and its flat parameter vector.
3. ``stationarity_report``: how close the trained net is to a KKT point of the max-margin problem.
4. ``lm.max_margin(model, data, init=theta)``: the exact solve from the trained net, in its activation
   region, with a time limit and progress records on stderr; its status says how far it got.
5. lexmargin's own normalized GD (``lexmargin.numeric``) on the same model and data, from the same
   initialization as PyTorch, compared by normalized margin min_n f_n / ||theta||^L.

Run: ``python docs/examples/torch_digits.py`` (about 30 s on 2 cores; see docs/torch.md).
"""
# requires: torch, sklearn

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import lexmargin as lm
from lexmargin.numeric import Normalized, kernel_for, train
from lexmargin.report import stationarity_report

# the honest outcomes of max_margin (lexmargin.nlp.status.Status); only "optimal" is a certified optimum
STATUSES = ("optimal", "region_boundary", "inaccurate", "max_time", "max_iterations", "failed", "infeasible",
            "no_separating_point")


def digits(classes=(0, 1), per_class: int | None = None):
    """scikit-learn's digits of two classes, pixels / 16, labels +1 (first class) and -1; ``per_class``: the
    first that many samples of each class (None: all)."""
    d = load_digits()
    keep = np.concatenate([np.nonzero(d.target == c)[0][:per_class] for c in classes])
    return d.data[keep] / 16.0, np.where(d.target[keep] == classes[0], 1.0, -1.0)


def make_net(input_dim: int, hidden: int, seed: int) -> nn.Module:
    """64-H-1 ReLU MLP in float64; bias-free, so the net is homogeneous of degree 2 (docs/torch.md)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(input_dim, hidden, bias=False), nn.ReLU(),
                         nn.Linear(hidden, 1, bias=False)).double()


def train_torch(net: nn.Module, X, y, lr: float = 1.0, max_steps: int = 2000, target_loss: float = 1e-3):
    """Full-batch GD on the mean logistic loss until every margin is positive and the loss < target_loss.
    Returns the steps taken and the final loss."""
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        margins = yt * net(Xt).squeeze(1)
        loss = nn.functional.softplus(-margins).mean()
        loss.backward()
        opt.step()
        if float(margins.detach().min()) > 0 and loss.item() < target_loss:
            break
    with torch.no_grad():
        margins = yt * net(Xt).squeeze(1)
        return step, float(nn.functional.softplus(-margins).mean())


def main(hidden: int = 8, per_class: int | None = 30, classes=(0, 1), seed: int = 0, gd_steps: int = 2000,
         time_limit: float = 20.0, verbose: bool = True, show: bool = True) -> dict:
    """Run the example; returns every number it prints (the test runs it with smaller settings)."""
    torch.set_num_threads(1)
    X, y = digits(classes, per_class)
    data = lm.Dataset(X, y)
    net = make_net(X.shape[1], hidden, seed)
    model, theta0 = lm.from_torch(net)               # the untrained net: the start of both GD runs

    t = time.perf_counter()
    steps, loss = train_torch(net, X, y)
    torch_seconds = time.perf_counter() - t
    model, theta = lm.from_torch(net)
    trained_margin = model.normalized_margin(theta, data)

    t = time.perf_counter()
    report = stationarity_report(model, data, theta)
    report_seconds = time.perf_counter() - t

    t = time.perf_counter()
    cert = lm.max_margin(model, data, init=theta, time_limit=time_limit, verbose=verbose, raise_on_failure=False)
    solve_seconds = time.perf_counter() - t

    t = time.perf_counter()
    history = train(kernel_for(model, data), theta0[None], rule=Normalized(0.05), n_steps=gd_steps, checkpoints=2,
                    store_direction=False)
    gd_seconds = time.perf_counter() - t
    gd_theta = history.theta[0]
    gd_margin = model.normalized_margin(gd_theta, data)

    rows = [("PyTorch GD (logistic)", trained_margin, f"loss {loss:.1e} after {steps} steps", torch_seconds),
            ("max_margin(init=trained)", cert.normalized_margin, str(cert.status), solve_seconds),
            (f"lexmargin normalized GD ({gd_steps} steps)", gd_margin,
             f"min f_n {'> 0' if np.min(model.margins(gd_theta, data)) > 0 else '<= 0'}", gd_seconds)]
    if show:
        print(f"digits {classes[0]} vs {classes[1]}: N = {data.n_samples}, d = {data.n_features}; "
              f"MLP {data.n_features}-{hidden}-1, P = {model.n_params}")
        print(f"stationarity report of the trained net ({report_seconds:.1f} s): normalized margin "
              f"{report.normalized_margin:.4g}, near-support set {report.support.size} samples, relative eps "
              f"{report.kkt.relative_epsilon:.3g}, delta {report.kkt.delta:.3g}, LICQ "
              f"{'holds' if report.licq.holds else 'fails'} (rank {report.licq.rank})")
        print(cert.summary())
        print()
        print(f"| {'method':<36} | {'normalized margin':>17} | {'status':<28} | {'time (s)':>8} |")
        print(f"|{'-' * 38}|{'-' * 19}|{'-' * 30}|{'-' * 10}|")
        for name, margin, status, seconds in rows:
            print(f"| {name:<36} | {margin:>17.6g} | {status:<28} | {seconds:>8.2f} |")
    return {"data": data, "model": model, "theta0": theta0, "theta": theta, "torch_steps": steps, "torch_loss": loss,
            "trained_margin": trained_margin, "report": report, "certificate": cert, "gd_theta": gd_theta,
            "gd_margin": gd_margin, "rows": rows}


if __name__ == "__main__":
    main()
