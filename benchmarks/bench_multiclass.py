"""Throughput of batched multi-class linear GD (numeric.fused_multiclass) against the matmul peak and PyTorch (CPU).

    python benchmarks/bench_multiclass.py [--runs 64] [--steps 30] [--repeats 9] [--dtype float64|float32]
                                          [--json out.json]

The issue's case: scikit-learn's digits (N = 1797 samples, d = 64 pixels scaled to [0, 1], K = 10 classes), R = 64
runs of normalized GD on the multi-class exponential loss  L = sum_n sum_{k != y_n} exp(-(g_{y_n} - g_k)),
g = W x.  One step does two matrix products (outputs G = W X^T and the gradient C X: 2 R K N d flops each);
GFLOP/s counts only those 4 R K N d flops, so the exponentials, the shift and the update lower the figure.  The
peak is the rate of a large square matrix product (numpy, same precision, one thread), timed in every round.

Every contender runs on one thread in this process (numpy's and scipy's BLAS and PyTorch limited to one):

* ``lexmargin``: the default trainer (the fused lane, on the weights kernel ``choose_weights_kernel`` picks);
  ``lexmargin_kernel_c`` / ``_numba`` / ``_numpy``: the fused lane on each weights kernel available here;
  ``lexmargin_generic``: the generic path on the N (K - 1) margin rows (``fused=False``);
* ``torch_one_exp``: lexmargin's dense scheme in PyTorch (outputs, the own class subtracted, the exact smallest
  margin as shift, one exp, the own entries, one product for the gradient);
* ``torch``: the usual PyTorch loop (masked log-sum-exp and softmax over the (k, n) entries);
* ``torch_autograd``: the masked log-sum-exp and autograd.

Rounds as in ``bench_numeric``: each round times every contender and the peak, interleaved; reported are the
best and median time per step, the fraction of the peak (best, and the per-round median) and
``speedup_vs_X`` (best over best, and the per-round median of the ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_numeric import (
    _blas_threads,
    _has_torch,
    _kernel_choice,
    _load_libraries,
    _summary,
    _torch_dtype,
    _trainer_runner,
    matmul_peak_timer,
    time_rounds,
)

from lexmargin.numeric import Normalized, Trainer
from lexmargin.numeric.fused_multiclass import KERNELS, weights_kernel_available
from lexmargin.numeric.multiclass import MulticlassLinearKernel

ETA = 0.01
TOTAL_STEPS = 10 ** 9


def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y.astype(np.int64)


def trainer(kernel, theta, kernel_name=None, fused=True) -> Trainer:
    with _kernel_choice(kernel_name):
        return Trainer(kernel, theta, rule=Normalized(ETA), n_steps=TOTAL_STEPS, checkpoints=2,
                       store_direction=False, fused=fused)


def _torch_state(X, y, theta, K, dtype):
    import torch
    tdtype = _torch_dtype(dtype)
    R, N, d = theta.shape[0], X.shape[0], X.shape[1]
    own = torch.zeros((K, N), dtype=torch.bool)
    own[torch.tensor(y), torch.arange(N)] = True
    return (torch.tensor(theta.reshape(R, K, d), dtype=tdtype), torch.tensor(X.T.copy(), dtype=tdtype),
            torch.tensor(X, dtype=tdtype), torch.tensor(y), own)


def torch_one_exp_loop(X, y, theta, K, dtype):
    """lexmargin's dense scheme in PyTorch, in place where PyTorch allows it."""
    import torch
    W, Xt, Xn, labels, own = _torch_state(X, y, theta, K, dtype)
    N = X.shape[0]
    samples = torch.arange(N)
    floor = -700.0 if np.dtype(dtype) == np.float64 else -87.0

    @torch.no_grad()
    def steps(n):
        for _ in range(n):
            G = torch.matmul(W, Xt)                              # (R, K, N)
            G -= G[:, labels, samples].unsqueeze(1)
            G.masked_fill_(own, float("-inf"))
            shift = -G.amax(dim=(1, 2))
            G += shift[:, None, None]
            G.clamp_(min=floor).exp_()
            G.masked_fill_(own, 0.0)
            S = G.sum(dim=(1, 2))
            G[:, labels, samples] = -G.sum(dim=1)
            W.sub_(torch.matmul(G, Xn) * (ETA / S)[:, None, None])
        return S.log() - shift
    return steps


def torch_loop(X, y, theta, K, dtype):
    """The usual PyTorch loop: log L by a masked log-sum-exp over the (k, n) entries, the weights by softmax."""
    import torch
    W, Xt, Xn, labels, own = _torch_state(X, y, theta, K, dtype)
    R, N = theta.shape[0], X.shape[0]
    samples = torch.arange(N)

    @torch.no_grad()
    def steps(n):
        for _ in range(n):
            G = torch.matmul(W, Xt)
            Z = (G - G[:, labels, samples].unsqueeze(1)).masked_fill(own, float("-inf")).reshape(R, -1)
            log_loss = torch.logsumexp(Z, dim=1)
            C = torch.softmax(Z, dim=1).reshape(R, K, N)
            C[:, labels, samples] = -C.sum(dim=1)
            W.sub_(ETA * torch.matmul(C, Xn))
        return log_loss
    return steps


def torch_autograd_loop(X, y, theta, K, dtype):
    """The masked log-sum-exp and autograd (what a typical PyTorch user writes)."""
    import torch
    W, Xt, _, labels, own = _torch_state(X, y, theta, K, dtype)
    W.requires_grad_(True)
    R, N = theta.shape[0], X.shape[0]
    samples = torch.arange(N)

    def steps(n):
        for _ in range(n):
            G = torch.matmul(W, Xt)
            Z = (G - G[:, labels, samples].unsqueeze(1)).masked_fill(own, float("-inf")).reshape(R, -1)
            log_loss = torch.logsumexp(Z, dim=1)
            (grad,) = torch.autograd.grad(log_loss.sum(), W)
            with torch.no_grad():
                W.sub_(ETA * grad)
        return log_loss
    return steps


def contenders(X, y, runs, dtype) -> tuple[dict, dict]:
    """name -> steps(n), and name -> the weights kernel ("generic" for the rows path, "torch")."""
    K = int(y.max()) + 1
    kernel = MulticlassLinearKernel(X, y, n_classes=K, dtype=dtype)
    theta = kernel.random_theta(np.arange(runs), 1.0)
    trainers = {"lexmargin": trainer(kernel, theta)}
    for name in KERNELS:
        if weights_kernel_available(name):
            trainers[f"lexmargin_kernel_{name}"] = trainer(kernel, theta, name)
    trainers["lexmargin_generic"] = trainer(kernel, theta, fused=False)
    runners = {name: _trainer_runner(t) for name, t in trainers.items()}
    kinds = {name: (t.fused_kernels[0] if t.fused else "generic") for name, t in trainers.items()}
    if _has_torch():
        for name, loop in (("torch_one_exp", torch_one_exp_loop), ("torch", torch_loop),
                           ("torch_autograd", torch_autograd_loop)):
            runners[name] = loop(X, y, theta, K, dtype)
            kinds[name] = "torch"
    return runners, kinds


def bench(args, dtype) -> dict:
    X, y = digits()
    N, d, K = X.shape[0], X.shape[1], int(y.max()) + 1
    runners, kinds = contenders(X, y, args.runs, dtype)
    flops = 4 * args.runs * K * N * d
    peak = matmul_peak_timer(dtype, n=args.peak_size)
    seconds, peaks, counts = time_rounds(runners, peak, args.steps, args.repeats, args.target_s)
    out = {"dtype": np.dtype(dtype).name, "R": args.runs, "N": N, "d": d, "K": K,
           "peak_gflops": float(max(peaks)), "steps_per_timing": counts, "kernels": kinds}
    for name in runners:
        out[name] = _summary(seconds[name], peaks, flops)
    ours = np.array(seconds["lexmargin"])
    for name in runners:
        if name.startswith("torch"):
            theirs = np.array(seconds[name])
            out[f"speedup_vs_{name}"] = float(theirs.min() / ours.min())
            out[f"speedup_vs_{name}_median"] = float(np.median(theirs / ours))
    return out


def _print(report):
    for r in report["results"]:
        print(f"{r['dtype']}: R={r['R']} N={r['N']} d={r['d']} K={r['K']}, peak {r['peak_gflops']:.1f} GFLOP/s "
              "(one thread)")
        for name, kind in r["kernels"].items():
            x = r[name]
            print(f"    {name} ({kind}): {x['ms_per_step']:.2f} ms/step (median {x['ms_per_step_median']:.2f}), "
                  f"{100 * x['fraction_of_peak']:.0f}% of peak (per-round median "
                  f"{100 * x['fraction_of_peak_per_round']['median']:.0f}%)")
        for key in (k for k in r if k.startswith("speedup_vs_") and not k.endswith("_median")):
            print(f"    lexmargin {key.replace('_', ' ')}: {r[key]:.2f}x (per-round median {r[key + '_median']:.2f}x)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--target-s", type=float, default=0.5,
                        help="fewer steps per timing for contenders slower than this many seconds per timing")
    parser.add_argument("--dtype", choices=["float64", "float32", "both"], default="float64")
    parser.add_argument("--peak-size", type=int, default=3000, help="n of the n x n matmul that gives the peak")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    dtypes = [np.float64, np.float32] if args.dtype == "both" else [getattr(np, args.dtype)]
    _load_libraries()
    limits = _blas_threads(1)
    if _has_torch():
        import torch
        torch.set_num_threads(1)
    try:
        report = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": 1,
                  "date": time.strftime("%Y-%m-%d %H:%M"), "load_average": os.getloadavg(),
                  "results": [bench(args, dt) for dt in dtypes]}
    finally:
        limits.restore_original_limits()
    _print(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return report


if __name__ == "__main__":
    main()
