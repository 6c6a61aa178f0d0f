"""Stationarity reports of trained nets with ~10^5 parameters: time and peak memory, one process per report.

    python benchmarks/perf_report.py [--cases digits,synthetic] [--tols 0.1,1e9] [--threads 1] [--out DIR]

Cases (ReLU nets f = y a . relu(W2 relu(W1 x)) without biases, declared as a lexmargin Model with arrays
W1, W2, a so that ``kernel_for`` picks ``LayeredNetKernel``; trained by lexmargin's numeric module with
loss-based adaptive normalized GD on the exponential loss until every training point has a positive
margin and the loss is below ``LOSS_TARGET``):

* digits: scikit-learn's digits, 0 against 1 (N = 360, d = 64, pixels / 16), widths 256-256 (P = 82,176);
* synthetic: N = 2000 Gaussian points in d = 784, labels of a random two-layer ReLU teacher, widths
  256-256 (P = 266,496).

Each case is trained in one subprocess (theta saved to an .npz) and reported in fresh ones, one per
``--tols`` support tolerance (default 0.1, and 1e9, which puts every sample in the near-support set: the
largest Gram matrix).  Each times ``stationarity_report``, kernel selection included (``kernel_for``
checks the numpy kernel against the CasADi trace of the model), and reads its peak RSS
(``resource.getrusage``: the whole process, with imports, data and model trace).  BLAS threads are fixed
with threadpoolctl (``--threads``).  Prints a table and writes ``perf_report.json`` / ``perf_report.md``
into ``--out``.  A benchmark, not a test: the targets (report < 30 s, peak RSS < 4 GB) are printed
beside the numbers, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HIDDEN = (256, 256)
LOSS_TARGET = 1e-3           # training stops when sum_n exp(-f_n) is below this (and every f_n > 0)
TARGET_SECONDS, TARGET_RSS_GB = 30.0, 4.0
CASES = ("digits", "synthetic")


def mlp_model(input_dim: int, hidden=HIDDEN):
    """y a . relu(W2 relu(W1 x)): arrays W1 (h1, d), W2 (h2, h1), a (h2,), one block of degree 3."""
    from lexmargin import Block, Model, ops

    def output(p, x):
        return ops.dot(p["a"], ops.relu(ops.matmul(p["W2"], ops.relu(ops.matmul(p["W1"], x)))))

    arrays = {"W1": (hidden[0], input_dim), "W2": (hidden[1], hidden[0]), "a": (hidden[1],)}
    return Model("mlp_relu", [Block("net", arrays, degree=len(hidden) + 1)], input_dim=input_dim, output=output)


def case_data(name: str, seed: int = 0):
    """(X, y) of a case (see the module docstring)."""
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        keep = digits.target <= 1
        return digits.data[keep] / 16.0, np.where(digits.target[keep] == 0, 1.0, -1.0)
    if name == "synthetic":
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((2000, 784)) / np.sqrt(784)
        teacher = np.maximum(X @ rng.standard_normal((784, 16)), 0.0) @ rng.standard_normal(16)
        return X, np.where(teacher >= np.median(teacher), 1.0, -1.0)
    raise ValueError(f"unknown case {name!r}; choose from {CASES}")


def he_init(kernel, seed: int) -> np.ndarray:
    """Gaussian layers with variance 2 / fan-in (the output layer 1 / fan-in), flat (1, P)."""
    rng = np.random.default_rng(seed)
    parts = {a.name: rng.standard_normal(a.shape) * np.sqrt((1.0 if len(a.shape) == 1 else 2.0) / a.shape[-1])
             for a in kernel.arrays}
    return kernel.flatten({k: v[None] for k, v in parts.items()})


def train_case(name: str, out: Path, seed: int = 0, eta: float = 0.1, max_steps: int = 4000) -> dict:
    """Adaptive normalized GD (lexmargin.numeric.Adaptive) until min_n f_n > 0 and the loss < LOSS_TARGET; theta -> out."""
    from lexmargin.numeric import Adaptive, LayeredNetKernel, Trainer

    X, y = case_data(name, seed)
    kernel = LayeredNetKernel(X, y, hidden=HIDDEN, activation="relu")
    trainer = Trainer(kernel, he_init(kernel, seed), rule=Adaptive(eta), n_steps=max_steps, checkpoints=2,
                      store_direction=False)
    start, steps = time.perf_counter(), 0
    while steps < max_steps:
        steps = min(max_steps, steps + 50)
        trainer.run(until=steps)
        f = kernel.margins(trainer.history().theta[0])
        loss = float(np.sum(np.exp(-f)))
        if np.min(f) > 0 and loss < LOSS_TARGET:
            break
    theta = trainer.history().theta[0]
    np.savez(out, theta=theta, X=X, y=y)
    return {"case": name, "N": int(X.shape[0]), "d": int(X.shape[1]), "P": int(kernel.n_params), "steps": steps,
            "train_seconds": time.perf_counter() - start, "loss": loss, "min_margin": float(np.min(f))}


def report_case(name: str, theta_file: Path, support_tol: float = 0.1) -> dict:
    """Time one stationarity_report in this (fresh) process and read its peak RSS."""
    import lexmargin as lm
    from lexmargin.report import stationarity_report

    saved = np.load(theta_file)
    data = lm.Dataset(saved["X"], saved["y"])
    model = mlp_model(data.n_features)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    report = stationarity_report(model, data, saved["theta"], support_tol=support_tol)
    seconds = time.perf_counter() - start
    return {"case": name, "support_tol": support_tol, "report_seconds": seconds, "rss_before_gb": rss_before,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "support": int(report.support.size), "P": int(report.n_params), "N": int(report.n_samples),
            "relative_epsilon": report.kkt.relative_epsilon, "delta": report.kkt.delta,
            "licq_rank": report.licq.rank, "licq_holds": report.licq.holds,
            "normalized_margin": report.normalized_margin, "alignment": report.alignment}


def _child(args) -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads):
        row = (train_case(args.case, Path(args.theta)) if args.child == "train"
               else report_case(args.case, Path(args.theta), args.support_tol))
    print(json.dumps(row), flush=True)
    os._exit(0)         # skip tearing down the CasADi trace of a 10^5-parameter model (tens of seconds)


def _run_child(kind: str, case: str, theta: Path, threads: int, support_tol: float = 0.1) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--case", case, "--theta", str(theta), "--threads", str(threads),
           "--support-tol", repr(support_tol)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


COLUMNS = ("case", "N", "P", "steps", "loss", "support_tol", "support", "report_seconds", "peak_rss_gb", "relative_epsilon",
           "licq_rank", "alignment")


def _table(rows) -> str:
    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads in each child process")
    parser.add_argument("--out", default="results/perf_report")
    parser.add_argument("--tols", default="0.1,1e9",
                        help="support_tol of the reports, one process each (1e9: every sample in S, the worst case)")
    parser.add_argument("--child", choices=("train", "report"), help=argparse.SUPPRESS)
    parser.add_argument("--support-tol", type=float, default=0.1, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--theta", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            theta = Path(tmp) / f"{case}.npz"
            trained = _run_child("train", case, theta, args.threads)
            for tol in (float(t) for t in args.tols.split(",")):
                rows.append(trained | _run_child("report", case, theta, args.threads, tol))
                print(_table(rows[-1:]).splitlines()[-1], flush=True)
    table = _table(rows)
    print(f"\ntargets: report < {TARGET_SECONDS:g} s, peak RSS < {TARGET_RSS_GB:g} GB; threads {args.threads}; "
          f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}\n\n{table}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "perf_report.json").write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))
    (out / "perf_report.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
