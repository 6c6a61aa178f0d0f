"""Throughput of batched linear GD in lexmargin.numeric vs the machine's matmul peak and vs PyTorch (CPU).

    python benchmarks/bench_numeric.py [--runs 64] [--samples 1000] [--dim 100] [--steps 300] [--json out.json]

One normalized-GD step for R runs on N samples in d dimensions does two matrix products
(margins: 2RNd flops, gradient: 2RNd flops); GFLOP/s counts only those 4RNd flops, so the loss,
the softmax weights and the update are overhead that lowers the figure.  The peak is the best
rate of a large square matrix product in the same precision.  The PyTorch loop does the same
arithmetic (margins, log-sum-exp, softmax weights, gradient, update) with torch tensors; it is
optional (skipped when torch is not installed).  Every timing is the best of ``--repeats`` blocks,
numpy and torch interleaved, since a shared machine makes single timings noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from lexmargin.numeric import LinearKernel, Normalized, Trainer


def matmul_peak(dtype, n: int = 3000, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` n x n matrix products."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def problem(runs, samples, dim, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, dim))
    y = np.where(X @ rng.standard_normal(dim) > 0, 1.0, -1.0)
    return X, y


def numpy_trainer(X, y, runs, dtype, total_steps, workers=1):
    kernel = LinearKernel(X, y, dtype=dtype)
    theta = kernel.random_theta(np.arange(runs), 1.0)
    return Trainer(kernel, theta, rule=Normalized(0.01), n_steps=total_steps, checkpoints=2,
                   store_direction=False, workers=workers)


def torch_loop(X, y, runs, dtype, seed=0):
    """The same normalized-GD arithmetic in PyTorch; returns step(n) running n steps."""
    import torch
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    A = torch.tensor((y[:, None] * X).T, dtype=tdtype).contiguous()     # (d, N)
    theta = torch.tensor(LinearKernel(X, y).random_theta(np.arange(runs), 1.0), dtype=tdtype)

    @torch.no_grad()
    def steps(n):
        nonlocal theta
        for _ in range(n):
            f = theta @ A
            log_loss = torch.logsumexp(-f, dim=1)
            w = torch.softmax(-f, dim=1)
            theta = theta + 0.01 * (w @ A.T)
        return log_loss
    return steps


def torch_autograd_loop(X, y, runs, dtype):
    """PyTorch with autograd on log L (what a typical PyTorch user writes)."""
    import torch
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    A = torch.tensor((y[:, None] * X).T, dtype=tdtype).contiguous()
    theta = torch.tensor(LinearKernel(X, y).random_theta(np.arange(runs), 1.0), dtype=tdtype, requires_grad=True)

    def steps(n):
        for _ in range(n):
            log_loss = torch.logsumexp(-(theta @ A), dim=1)
            (grad,) = torch.autograd.grad(log_loss.sum(), theta)
            with torch.no_grad():
                theta.sub_(0.01 * grad)
        return log_loss
    return steps


def breakdown(trainer, repeats: int = 200) -> dict:
    """Microseconds per call of the pieces of one step, at the trainer's current state."""
    lane, kernel, loss = trainer.lanes[0], trainer.kernel, trainer.loss
    f_buf, e_buf = lane.spare                                   # scratch buffers, as the trainer uses them
    pieces = {"forward (matmul)": lambda: kernel.forward(lane.theta, out=f_buf),
              "loss weights (elementwise)": lambda: loss.scaled_weights(lane.f, out=e_buf),
              "vjp (matmul)": lambda: kernel.vjp(lane.theta, lane.cache, lane.e),
              "whole step": trainer._iterate}
    return {name: 1e6 * min(_time(lambda fn=fn: [fn() for _ in range(repeats)]) for _ in range(3)) / repeats
            for name, fn in pieces.items()}


def bench(args, dtype) -> dict:
    X, y = problem(args.runs, args.samples, args.dim)
    flops = 4 * args.runs * args.samples * args.dim
    total = (args.repeats + 1) * args.steps + 1000          # + the breakdown steps
    trainers = {"numpy": numpy_trainer(X, y, args.runs, dtype, total)}
    if args.workers > 1:
        trainers[f"numpy_{args.workers}_workers"] = numpy_trainer(X, y, args.runs, dtype, total, args.workers)
    for trainer in trainers.values():
        trainer.run(until=args.steps)                                     # warm-up
    try:
        import torch
        torch.set_num_threads(args.threads or os.cpu_count())
        loops = {"torch": torch_loop(X, y, args.runs, dtype), "torch_autograd": torch_autograd_loop(X, y, args.runs, dtype)}
        for loop in loops.values():
            loop(args.steps // 4)
    except ImportError:
        loops = {}
    best = {k: np.inf for k in [*trainers, *loops]}
    for _ in range(args.repeats):
        for name, trainer in trainers.items():
            best[name] = min(best[name], _time(lambda t=trainer: t.run(until=t.step + args.steps)) / args.steps)
        for name, loop in loops.items():
            best[name] = min(best[name], _time(lambda f=loop: f(args.steps)) / args.steps)
    fastest = min(best[name] for name in trainers)
    peak = matmul_peak(dtype)
    out = {"dtype": np.dtype(dtype).name, "peak_gflops": peak, "breakdown_us": breakdown(trainers["numpy"])}
    for name, sec in best.items():
        out[name] = {"ms_per_step": 1e3 * sec, "gflops": flops / sec / 1e9, "fraction_of_peak": flops / sec / 1e9 / peak}
    for name in loops:
        out[f"speedup_vs_{name}"] = best[name] / fastest
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0,
                        help="BLAS and torch threads (default: all cores; BLAS limit needs threadpoolctl)")
    parser.add_argument("--workers", type=int, default=2, help="also time the trainer with this many lanes")
    parser.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    dtypes = [np.float64, np.float32] if args.dtype == "both" else [getattr(np, args.dtype)]
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads, user_api="blas")
    report = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": args.threads,
              "R": args.runs, "N": args.samples, "d": args.dim, "results": [bench(args, dt) for dt in dtypes]}
    for r in report["results"]:
        line = f"{r['dtype']}: peak {r['peak_gflops']:.1f} GFLOP/s"
        for name in [k for k in r if k.startswith("numpy")]:
            line += (f" | {name} {r[name]['ms_per_step']:.3f} ms/step {r[name]['gflops']:.1f} GFLOP/s "
                     f"({100 * r[name]['fraction_of_peak']:.0f}% of peak)")
        for name in ("torch", "torch_autograd"):
            if name in r:
                line += f" | {name} {r[name]['ms_per_step']:.3f} ms/step (numpy {r[f'speedup_vs_{name}']:.2f}x)"
        print(line)
        print("    breakdown (us): " + ", ".join(f"{k} {v:.0f}" for k, v in r["breakdown_us"].items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return report


if __name__ == "__main__":
    main()
