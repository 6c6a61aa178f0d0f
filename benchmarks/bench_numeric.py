"""Throughput of batched linear GD in lexmargin.numeric vs the machine's matmul peak and vs PyTorch (CPU).

    python benchmarks/bench_numeric.py [--runs 64] [--samples 1000] [--dim 100] [--steps 100] [--repeats 15] [--json out.json]

One normalized-GD step for R runs on N samples in d dimensions does two matrix products
(margins: 2RNd flops, gradient: 2RNd flops); GFLOP/s counts only those 4RNd flops, so the loss,
the softmax weights and the update are overhead that lowers the figure.  The peak is the rate of a
large square matrix product (numpy, same precision, same number of BLAS threads; for the trainer with
k lanes, k threads).  The PyTorch loop does the same arithmetic (margins, log-sum-exp, softmax
weights, gradient, update) with torch tensors; it is optional (skipped when torch is not installed).

Contenders: ``numpy`` is the default trainer (the fused path, with the compiled AVX-512 kernel when
it is built and the CPU has AVX-512F), ``numpy_fused_without_c`` the fused path in numpy alone
(two BLAS products, two elementwise passes), ``numpy_generic`` the generic path (``fused=False``),
``numpy_k_workers`` the default trainer with k lanes in threads, ``numpy_k_threads`` one lane whose
compiled kernel splits the samples over k OpenMP threads; both are compared with a k-thread peak.

A shared machine makes single timings noisy, so every timing is taken in ``--repeats`` rounds, each
round timing every contender and the peak once, interleaved.  ``fraction_of_peak`` is the best GD
rate over the best peak rate; ``fraction_of_peak_per_round`` gives the median and the best of the
same ratio within one round, where both saw the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from contextlib import nullcontext

import numpy as np

from lexmargin.numeric import LinearKernel, Normalized, Trainer


def matmul_peak_timer(dtype, threads: int | None = None, n: int = 3000):
    """A function returning the GFLOP/s of one n x n matrix product (numpy; ``threads`` BLAS threads,
    default: the current setting)."""
    rng = np.random.default_rng(0)
    a, b, out = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype), np.empty((n, n), dtype)

    def rate():
        with nullcontext() if threads is None else _blas_threads(threads):
            return 2 * n ** 3 / _time(lambda: np.matmul(a, b, out=out)) / 1e9
    rate()
    return rate


def _blas_threads(threads: int):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(threads, user_api="blas")


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def problem(runs, samples, dim, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, dim))
    y = np.where(X @ rng.standard_normal(dim) > 0, 1.0, -1.0)
    return X, y


def numpy_trainer(X, y, runs, dtype, total_steps, workers=1, fused=True, threads=1):
    kernel = LinearKernel(X, y, dtype=dtype)
    theta = kernel.random_theta(np.arange(runs), 1.0)
    return Trainer(kernel, theta, rule=Normalized(0.01), n_steps=total_steps, checkpoints=2,
                   store_direction=False, workers=workers, fused=fused, threads=threads)


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
    """Microseconds per call of the pieces of one fused step, at the trainer's current state."""
    lane = trainer.lanes[0]
    GT = lane.GT.copy()                                         # scratch: the lane's state stays intact
    if lane.use_c:
        from lexmargin.numeric import _fused
        pieces = {"weights and sums (C kernel: both products, floor, exp)":
                  lambda: _fused.weight_sums(lane.P, lane.B, GT, lane.floor)}
    else:
        X = np.maximum(lane.P.T @ lane.B, lane.floor)
        E = np.empty_like(X)
        pieces = {"shifted margins (matmul)": lambda: np.matmul(lane.P.T, lane.B, out=E),
                  "floor (elementwise)": lambda: np.maximum(X, lane.floor, out=E),
                  "exp (elementwise)": lambda: np.exp(X, out=E),
                  "gradient and sums (matmul)": lambda: np.matmul(lane.B, E.T, out=GT)}
    pieces["whole step"] = lambda: trainer._advance(1)
    return {name: 1e6 * min(_time(lambda fn=fn: [fn() for _ in range(repeats)]) for _ in range(3)) / repeats
            for name, fn in pieces.items()}


def contenders(args, dtype, X, y) -> dict:
    """name -> function running n steps: the numpy trainers (fused, generic, several lanes) and torch loops."""
    total = (args.repeats + 1) * args.steps + 1000          # + the breakdown steps
    trainers = {"numpy": numpy_trainer(X, y, args.runs, dtype, total),
                "numpy_generic": numpy_trainer(X, y, args.runs, dtype, total, fused=False)}
    if trainers["numpy"].lanes[0].use_c:
        os.environ["LEXMARGIN_NUMPY_ONLY"] = "1"                # the fused path without the compiled kernel
        try:
            trainers["numpy_fused_without_c"] = numpy_trainer(X, y, args.runs, dtype, total)
        finally:
            del os.environ["LEXMARGIN_NUMPY_ONLY"]
    if args.workers > 1:
        trainers[f"numpy_{args.workers}_workers"] = numpy_trainer(X, y, args.runs, dtype, total, args.workers)
        if trainers["numpy"].lanes[0].use_c:
            trainers[f"numpy_{args.workers}_threads"] = numpy_trainer(X, y, args.runs, dtype, total,
                                                                      threads=args.workers)
    runners = {name: (lambda n, t=t: t.run(until=t.step + n)) for name, t in trainers.items()}
    try:
        import torch
        torch.set_num_threads(args.threads or os.cpu_count())
        runners["torch"] = torch_loop(X, y, args.runs, dtype)
        runners["torch_autograd"] = torch_autograd_loop(X, y, args.runs, dtype)
    except ImportError:
        pass
    for run in runners.values():
        run(max(1, args.steps // 4))                                       # warm-up
    return runners, trainers["numpy"]


def bench(args, dtype) -> dict:
    X, y = problem(args.runs, args.samples, args.dim)
    flops = 4 * args.runs * args.samples * args.dim
    runners, fused = contenders(args, dtype, X, y)
    multicore = {f"numpy_{args.workers}_workers", f"numpy_{args.workers}_threads"} & set(runners)
    peak_timers = {"peak": matmul_peak_timer(dtype, n=args.peak_size)}
    if multicore:                                          # k lanes or threads: compare with a k-thread product
        peak_timers["peak_workers"] = matmul_peak_timer(dtype, threads=args.workers, n=args.peak_size)
    rates = {name: [] for name in [*runners, *peak_timers]}
    for _ in range(args.repeats):
        for name, run in runners.items():
            rates[name].append(flops * args.steps / _time(lambda r=run: r(args.steps)) / 1e9)
        for name, timer in peak_timers.items():
            rates[name].append(timer())
    out = {"dtype": np.dtype(dtype).name, "peak_gflops": max(rates["peak"]), "c_kernel": bool(fused.lanes[0].use_c),
           "breakdown_us": breakdown(fused)}
    if multicore:
        out[f"peak_gflops_{args.workers}_threads"] = max(rates["peak_workers"])
    for name in runners:
        peaks = rates["peak_workers" if name in multicore else "peak"]
        best = max(rates[name])
        per_round = np.array(rates[name]) / np.array(peaks)
        out[name] = {"ms_per_step": flops / best / 1e6, "gflops": best, "fraction_of_peak": best / max(peaks),
                     "fraction_of_peak_per_round": {"median": float(np.median(per_round)),
                                                    "best": float(per_round.max())}}
    for name in ("torch", "torch_autograd"):
        if name in runners:
            out[f"speedup_vs_{name}"] = out["numpy"]["gflops"] / out[name]["gflops"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0,
                        help="BLAS and torch threads (default: all cores; BLAS limit needs threadpoolctl)")
    parser.add_argument("--workers", type=int, default=2,
                        help="also time the trainer with this many lanes, and with this many kernel threads")
    parser.add_argument("--dtype", choices=["float64", "float32", "both"], default="both")
    parser.add_argument("--peak-size", type=int, default=3000, help="n of the n x n matmul that gives the peak")
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
        line += "".join(f", {k[5:]} {v:.1f}" for k, v in r.items() if k.startswith("peak_gflops_"))
        line += f" (compiled kernel: {'yes' if r['c_kernel'] else 'no'})"
        for name in [k for k in r if k.startswith("numpy")]:
            rounds = r[name]["fraction_of_peak_per_round"]
            line += (f"\n    {name}: {r[name]['ms_per_step']:.3f} ms/step {r[name]['gflops']:.1f} GFLOP/s "
                     f"({100 * r[name]['fraction_of_peak']:.0f}% of peak; per round median "
                     f"{100 * rounds['median']:.0f}%, best {100 * rounds['best']:.0f}%)")
        for name in ("torch", "torch_autograd"):
            if name in r:
                line += f"\n    {name}: {r[name]['ms_per_step']:.3f} ms/step (numpy is {r[f'speedup_vs_{name}']:.2f}x as fast)"
        print(line)
        print("    breakdown (us): " + ", ".join(f"{k} {v:.0f}" for k, v in r["breakdown_us"].items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return report


if __name__ == "__main__":
    main()
