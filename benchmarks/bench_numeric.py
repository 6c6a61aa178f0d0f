"""Throughput of batched linear GD in lexmargin.numeric against the machine's matmul peak and PyTorch (CPU).

    python benchmarks/bench_numeric.py [--runs 64] [--samples 1000] [--dim 100] [--steps 100] [--repeats 15]
                                       [--workers 2] [--dtype float64|float32|both] [--json out.json]
    python benchmarks/bench_numeric.py --small        # the paper suite's case: N=30, d=2, one run, many steps
    python benchmarks/bench_numeric.py --grid         # each fused kernel per step on a grid of sizes
    python benchmarks/bench_numeric.py --geometry     # steepest descent in l1 / linf / lp, mirror descent

One normalized-GD step for R runs on N samples in d dimensions does two matrix products
(margins: 2RNd flops, gradient: 2RNd flops); GFLOP/s counts only those 4RNd flops, so the loss,
the weights and the update are overhead that lowers the figure.  The peak is the rate of a large
square matrix product (numpy, same precision, same number of threads).

Contenders on one thread (one process; every BLAS library and PyTorch limited to one thread):

* ``numpy``: lexmargin's default trainer (the fused path on the kernel ``numeric.fused.choose_kernel``
  picks); ``numpy_kernel_c``, ``numpy_kernel_numba``, ``numpy_kernel_numpy``: the fused path forced onto
  each kernel that is available here; ``numpy_generic``: the generic path (``fused=False``);
* ``torch_one_exp``: lexmargin's scheme in PyTorch (margins shifted by a predicted -log L inside the
  product, one exp, one product for the gradient and the sums, the same safety check);
  ``torch``: the usual log-sum-exp + softmax loop; ``torch_autograd``: log-sum-exp and autograd.

Contenders on k = ``--workers`` threads, each timed in a process of its own (idle thread pools of other
libraries in the same process slow lexmargin's threads down), with a k-thread peak timed in the same
process: ``numpy_k_workers`` (k lanes), ``numpy_k_threads`` (one lane, the C kernel's k OpenMP threads,
where it is available), ``torch_one_exp_k_threads`` and ``torch_k_threads`` (PyTorch with k threads, both
in one process).  PyTorch always gets the same number of threads as lexmargin.

A shared machine makes single timings noisy, so every timing is taken in ``--repeats`` rounds, each
round timing every contender (of a process) and the peak once, interleaved.  Reported: the best time
per step and the median over rounds; ``fraction_of_peak`` (best rate over best peak) and its per-round
median and best; ``speedup_vs_X`` (lexmargin's best rate over X's best) and ``speedup_vs_X_median``
(the median over rounds of the same ratio within a round, where both saw the same load); for each
kernel its time over the fastest kernel's (best-vs-best and per-round median).  Each contender runs
``--steps`` steps per timing, fewer if that takes longer than ``--target-s`` (slow contenders of
``--small``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from lexmargin.numeric import LinearKernel, Normalized, Trainer
from lexmargin.numeric import fused as fused_module

ETA = 0.01                                            # the normalized-GD step size of every contender
TOTAL_STEPS = 10 ** 9                                 # the trainers' n_steps: never reached


# ---- threads ----------------------------------------------------------------------------------------
def _load_libraries():
    """Load scipy's BLAS (numba's products call it) so that thread limits apply to it too."""
    import scipy.linalg.cython_blas  # noqa: F401


def _blas_threads(threads: int):
    from threadpoolctl import threadpool_limits
    return threadpool_limits(threads, user_api="blas")


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


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---- the problem and the contenders -----------------------------------------------------------------------
def problem(runs, samples, dim, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, dim))
    y = np.where(X @ rng.standard_normal(dim) > 0, 1.0, -1.0)
    return X, y


@contextmanager
def _kernel_choice(kernel: str | None):
    """New lanes take ``kernel`` (None: the default choice, or LEXMARGIN_FUSED_KERNEL if set outside)."""
    if kernel is None:
        yield
        return
    previous = os.environ.get("LEXMARGIN_FUSED_KERNEL")
    os.environ["LEXMARGIN_FUSED_KERNEL"] = kernel
    try:
        yield
    finally:
        os.environ.pop("LEXMARGIN_FUSED_KERNEL", None)
        if previous is not None:
            os.environ["LEXMARGIN_FUSED_KERNEL"] = previous


def numpy_trainer(X, y, runs, dtype, total_steps, workers=1, fused=True, threads=1, kernel=None):
    lm_kernel = LinearKernel(X, y, dtype=dtype)
    theta = lm_kernel.random_theta(np.arange(runs), 1.0)
    with _kernel_choice(kernel):
        trainer = Trainer(lm_kernel, theta, rule=Normalized(ETA), n_steps=total_steps, checkpoints=2,
                          store_direction=False, workers=workers, fused=fused, threads=threads)
    if kernel is not None and trainer.fused_kernels != [kernel] * workers:
        raise RuntimeError(f"asked for the {kernel} kernel, got {trainer.fused_kernels}")
    return trainer


def _torch_dtype(dtype):
    import torch
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def torch_loop(X, y, runs, dtype, seed=0):
    """The same normalized-GD arithmetic in PyTorch, written the usual way (log-sum-exp and softmax weights);
    returns steps(n) running n steps."""
    import torch
    tdtype = _torch_dtype(dtype)
    A = torch.tensor((y[:, None] * X).T, dtype=tdtype).contiguous()     # (d, N)
    theta = torch.tensor(LinearKernel(X, y).random_theta(np.arange(runs), 1.0), dtype=tdtype)

    @torch.no_grad()
    def steps(n):
        nonlocal theta
        for _ in range(n):
            f = theta @ A
            log_loss = torch.logsumexp(-f, dim=1)
            w = torch.softmax(-f, dim=1)
            theta = theta + ETA * (w @ A.T)
        return log_loss
    return steps


def torch_one_exp_loop(X, y, runs, dtype):
    """lexmargin's scheme in PyTorch: per step X = [-theta, c] [A; 1] = c - f (c: the predicted -log L), floor
    and exp in place, [G; s] = [A; 1] e^T, the update and the next prediction; a shift that the sums show
    unsafe is replaced by the exact one, as in lexmargin (``numeric.fused``)."""
    import torch
    tdtype = _torch_dtype(dtype)
    K, N = X.shape[1] + 1, X.shape[0]
    B = torch.ones((K, N), dtype=tdtype)
    B[:-1] = torch.tensor((y[:, None] * X).T, dtype=tdtype)
    P = torch.empty((K, runs), dtype=tdtype)
    P[:-1] = -torch.tensor(LinearKernel(X, y).random_theta(np.arange(runs), 1.0).T, dtype=tdtype)
    floor = -700.0 if np.dtype(dtype) == np.float64 else -87.0
    lo, hi = fused_module.safe_log_sum_range(dtype, N)
    s_lo, s_hi = float(np.exp(lo)), float(np.exp(hi))
    E = torch.empty((runs, N), dtype=tdtype)
    GT = torch.empty((K, runs), dtype=tdtype)

    def weights():
        torch.matmul(P.T, B, out=E)
        E.clamp_(min=floor).exp_()
        torch.matmul(B, E.T, out=GT)

    def exact_shift():
        P[-1] = 0
        P[-1] = -(P.T @ B).amax(dim=1)
        weights()

    exact_shift()
    state = {"log_loss": GT[-1].log() - P[-1]}

    @torch.no_grad()
    def steps(n):
        log_loss = state["log_loss"]
        for _ in range(n):
            G, s = GT[:-1], GT[-1]
            m = ETA / s
            g2 = (G * G).sum(dim=0)
            P[:-1] -= G * m
            P[-1] = m * g2 / s - log_loss
            weights()
            if not bool(((s >= s_lo) & (s <= s_hi)).all()):
                exact_shift()
            log_loss = GT[-1].log() - P[-1]
        state["log_loss"] = log_loss
        return log_loss
    return steps


def torch_autograd_loop(X, y, runs, dtype):
    """PyTorch with autograd on log L (what a typical PyTorch user writes)."""
    import torch
    tdtype = _torch_dtype(dtype)
    A = torch.tensor((y[:, None] * X).T, dtype=tdtype).contiguous()
    theta = torch.tensor(LinearKernel(X, y).random_theta(np.arange(runs), 1.0), dtype=tdtype, requires_grad=True)

    def steps(n):
        for _ in range(n):
            log_loss = torch.logsumexp(-(theta @ A), dim=1)
            (grad,) = torch.autograd.grad(log_loss.sum(), theta)
            with torch.no_grad():
                theta.sub_(ETA * grad)
        return log_loss
    return steps


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _trainer_runner(trainer):
    return lambda n: trainer.run(until=trainer.step + n)


def single_thread_contenders(X, y, runs, dtype, total, kernels=fused_module.KERNELS) -> tuple[dict, Trainer]:
    """name -> steps(n) of the one-thread contenders, and the default trainer."""
    default = numpy_trainer(X, y, runs, dtype, total)
    trainers = {"numpy": default}
    for kernel in kernels:
        if fused_module.kernel_available(kernel):
            trainers[f"numpy_kernel_{kernel}"] = numpy_trainer(X, y, runs, dtype, total, kernel=kernel)
    trainers["numpy_generic"] = numpy_trainer(X, y, runs, dtype, total, fused=False)
    runners = {name: _trainer_runner(t) for name, t in trainers.items()}
    if _has_torch():
        runners["torch_one_exp"] = torch_one_exp_loop(X, y, runs, dtype)
        runners["torch"] = torch_loop(X, y, runs, dtype)
        runners["torch_autograd"] = torch_autograd_loop(X, y, runs, dtype)
    return runners, default


def multi_thread_specs(k: int, kernels=fused_module.KERNELS) -> list[dict]:
    """The k-thread contenders, by process: lexmargin's each in a process of its own, PyTorch's two loops in
    one process (they share its thread pool)."""
    specs = [{"kind": "workers", "names": [f"numpy_{k}_workers"]}]
    if "c" in kernels and fused_module.c_kernel_available():
        specs.append({"kind": "c_threads", "names": [f"numpy_{k}_threads"]})
    if _has_torch():
        specs.append({"kind": "torch", "names": [f"torch_one_exp_{k}_threads", f"torch_{k}_threads"]})
    return specs


def _steps_per_timing(run, steps: int, target_s: float) -> int:
    """Steps per timing: ``steps``, fewer where that would take longer than ``target_s`` (after a warm-up)."""
    warm = max(1, min(steps, 10))
    run(warm)
    per_step = _time(lambda: run(warm)) / warm
    return int(max(1, min(steps, target_s / max(per_step, 1e-9))))


def time_rounds(runners: dict, peak, steps: int, repeats: int, target_s: float) -> tuple[dict, list, dict]:
    """(name -> seconds per step in each round, peak GFLOP/s in each round, name -> steps per timing)."""
    counts = {name: _steps_per_timing(run, steps, target_s) for name, run in runners.items()}
    seconds = {name: [] for name in runners}
    peaks = []
    for _ in range(repeats):
        for name, run in runners.items():
            seconds[name].append(_time(lambda r=run, n=counts[name]: r(n)) / counts[name])
        peaks.append(peak())
    return seconds, peaks, counts


# ---- a child process: one multi-thread contender ------------------------------------------------------------
def _child(spec: dict) -> dict:
    """Time k-thread contenders against a k-thread peak, in this process only: set up, say "ready", wait for a
    line on stdin (the parent releases one process at a time), time, and return the timings."""
    k, dtype, names = spec["threads"], np.dtype(spec["dtype"]), spec["names"]
    X, y = problem(spec["runs"], spec["samples"], spec["dim"])
    if spec["kind"] == "torch":
        import torch
        torch.set_num_threads(k)
        runs = [torch_one_exp_loop(X, y, spec["runs"], dtype), torch_loop(X, y, spec["runs"], dtype)]
    else:
        _load_libraries()
        if spec["kind"] == "workers":
            trainer = numpy_trainer(X, y, spec["runs"], dtype, TOTAL_STEPS, workers=k)
        else:
            trainer = numpy_trainer(X, y, spec["runs"], dtype, TOTAL_STEPS, threads=k, kernel="c")
        runs = [_trainer_runner(trainer)]
    print("ready", flush=True)
    if not sys.stdin.readline():             # the parent is gone: nothing to time for
        return {}
    peak = matmul_peak_timer(dtype, threads=k, n=spec["peak_size"])
    with _blas_threads(k):
        seconds, peaks, counts = time_rounds(dict(zip(names, runs)), peak, spec["steps"], spec["repeats"],
                                             spec["target_s"])
    return {"seconds": seconds, "peaks": peaks, "steps": counts}


class Child:
    """A process timing k-thread contenders: started early (imports and set-up overlap with other work), timed
    when ``result`` releases it, one process at a time."""

    def __init__(self, spec: dict):
        self.spec = spec
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)

    def wait_ready(self):
        if self.proc.stdout.readline().strip() != "ready":
            self._fail()

    def result(self) -> dict:
        out, err = self.proc.communicate("go\n")
        if self.proc.returncode != 0:
            self._fail(err)
        return json.loads(out.strip().splitlines()[-1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    def _fail(self, err=None):
        if err is None:
            self.proc.kill()
            _, err = self.proc.communicate()
        raise RuntimeError(f"contender process {self.spec['names']} failed:\n{err[-3000:]}")


def start_children(args, dtypes) -> dict:
    """dtype name -> the started processes of its k-thread contenders (none for --workers 1)."""
    if args.workers < 2:
        return {}
    common = {"threads": args.workers, "runs": args.runs, "samples": args.samples, "dim": args.dim,
              "steps": args.steps, "repeats": args.repeats, "peak_size": args.peak_size, "target_s": args.target_s}
    return {np.dtype(dt).name: [Child({**spec, **common, "dtype": np.dtype(dt).name})
                                for spec in multi_thread_specs(args.workers, args.kernels.split(","))]
            for dt in dtypes}


# ---- the report ---------------------------------------------------------------------------------------------
def breakdown(trainer, repeats: int = 200) -> dict:
    """Microseconds per call of the pieces of one fused step, at the trainer's current state."""
    lane = trainer.lanes[0]
    GT = lane.GT.copy()                                         # scratch: the lane's state stays intact
    if lane.kernel == "c":
        from lexmargin.numeric import _fused
        pieces = {"weights and sums (C kernel: both products, floor, exp)":
                  lambda: _fused.weight_sums(lane.P, lane.B, GT, lane.floor)}
    elif lane.kernel == "numba":
        layout = "BLAS products, floor and exp" if lane.layout == lane._nb.BLAS else "its own loops"
        work = lane.work.copy()
        pieces = {f"weights and sums (numba: {layout})":
                  lambda: lane._nb.weight_sums(lane.P, lane.B, GT, work, lane._floor, lane.layout)}
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


def _summary(seconds, peaks, flops) -> dict:
    s, p = np.array(seconds), np.array(peaks)
    rates = flops / s / 1e9
    per_round = rates / p
    return {"ms_per_step": 1e3 * float(s.min()), "ms_per_step_median": 1e3 * float(np.median(s)),
            "gflops": float(rates.max()), "fraction_of_peak": float(rates.max() / p.max()),
            "fraction_of_peak_per_round": {"median": float(np.median(per_round)), "best": float(per_round.max())}}


def bench(args, dtype, children=()) -> dict:
    X, y = problem(args.runs, args.samples, args.dim)
    flops = 4 * args.runs * args.samples * args.dim
    total = TOTAL_STEPS
    runners, default = single_thread_contenders(X, y, args.runs, dtype, total, args.kernels.split(","))
    peak = matmul_peak_timer(dtype, n=args.peak_size)
    seconds, peaks, counts = time_rounds(runners, peak, args.steps, args.repeats, args.target_s)
    out = {"dtype": np.dtype(dtype).name, "peak_gflops": max(peaks), "c_kernel": default.lanes[0].use_c,
           "kernel": default.lanes[0].kernel, "steps_per_timing": counts, "breakdown_us": breakdown(default)}
    for name in runners:
        out[name] = _summary(seconds[name], peaks, flops)
    ours = np.array(seconds["numpy"])
    for name in runners:
        if name.startswith("torch"):
            out[f"speedup_vs_{name}"] = float(np.min(seconds[name]) / ours.min())
            out[f"speedup_vs_{name}_median"] = float(np.median(np.array(seconds[name]) / ours))
    kernels = [n for n in runners if n.startswith("numpy_kernel_")]
    best_kernel = min(kernels, key=lambda n: min(seconds[n]))
    out["fastest_kernel"] = best_kernel[len("numpy_kernel_"):]
    for name in [*kernels, "numpy"]:
        out[name]["over_fastest_kernel"] = float(min(seconds[name]) / min(seconds[best_kernel]))
        out[name]["over_fastest_kernel_median"] = float(np.median(np.array(seconds[name])
                                                                  / np.array(seconds[best_kernel])))
    if children:
        k = args.workers
        out[f"peak_gflops_{k}_threads"] = 0.0
        for child in children:
            res = child.result()
            for name in child.spec["names"]:
                out[name] = _summary(res["seconds"][name], res["peaks"], flops)
                out[name]["steps_per_timing"] = res["steps"][name]
            out[f"peak_gflops_{k}_threads"] = max(out[f"peak_gflops_{k}_threads"], max(res["peaks"]))
        best_ours = max((n for n in out if n.startswith("numpy_") and n.endswith(("_workers", "_threads"))),
                        key=lambda n: out[n]["fraction_of_peak_per_round"]["median"])
        for name in (f"torch_one_exp_{k}_threads", f"torch_{k}_threads"):
            if name in out:          # separate processes: compared through the fraction of each one's peak
                out[f"speedup_vs_{name}"] = (out[best_ours]["fraction_of_peak_per_round"]["median"]
                                             / out[name]["fraction_of_peak_per_round"]["median"])
    return out


# ---- steepest descent in a norm, mirror descent (numeric.geometry) ---------------------------------------------
def geometry_rules(A=None) -> dict:
    """name -> (step rule, fused path?, flops per step that are matrix products, as a multiple of RNd).

    Each geometry's normalized step is 0.5 / max_n ||a_n||_*^2 (rows a_n of ``A``; the smoothness of log L in
    its norm, as in the paper suite's geometry check): one fixed step for all would be unstable in linf (large
    dual norms) and tiny in l1.  Without ``A``: ``ETA`` for every rule.
    """
    from lexmargin.numeric import Hypentropy, MirrorLp, Steepest, get_geometry
    from lexmargin.numeric.geometry import lp_norm

    def rule(name, p=None):
        if A is None:
            return Normalized(ETA)
        return Normalized(0.5 / float(np.max(lp_norm(A, get_geometry(name, p).dual_p))) ** 2)

    return {"gd": (rule("l2"), True, 4), "l1_coordinate": (Steepest("l1", rule("l1")), True, 4),
            "linf_sign": (Steepest("linf", rule("linf")), True, 4), "lp3": (Steepest("lp", rule("lp", 3.0), p=3.0), True, 4),
            "mirror_lp3": (Steepest(MirrorLp(3.0), rule("lp", 3.0)), True, 4),
            "hypentropy": (Steepest(Hypentropy(1.0), rule("l2")), True, 4),
            "gd_generic": (rule("l2"), False, 4), "linf_sign_generic": (Steepest("linf", rule("linf")), False, 4),
            "l1_coordinate_generic_incremental": (Steepest("l1", rule("l1")), False, 2),
            "l1_coordinate_generic_exact_margins": (Steepest("l1", rule("l1")), False, 4)}


def _exact_margins_runner(trainer):
    """Coordinate descent with its margins recomputed by a matrix product at every step (no O(N) update)."""
    from lexmargin.numeric import trainer as trainer_module

    def run(n):
        saved, trainer_module.EXACT_EVERY = trainer_module.EXACT_EVERY, 1
        try:
            trainer.run(until=trainer.step + n)
        finally:
            trainer_module.EXACT_EVERY = saved
    return run


def geometry_bench(args, dtype) -> dict:
    """Per step, each geometry's trainer (one thread) against the matmul peak, interleaved in rounds.

    ``fraction_of_peak`` counts the matrix products only: 4RNd flops (margins and gradient), 2RNd for coordinate
    descent with O(N) margin updates on the generic path (its margins cost no product).  Fused contenders run
    on the kernel ``choose_kernel`` picks; ``over_gd`` is the time per step over plain fused GD (per-round median).
    """
    X, y = problem(args.runs, args.samples, args.dim)
    kernel = LinearKernel(X, y, dtype=dtype)
    theta = kernel.random_theta(np.arange(args.runs), 1.0)
    runners, flops, kernels = {}, {}, {}
    for name, (rule, fused, products) in geometry_rules(y[:, None] * X).items():
        trainer = Trainer(kernel, theta, rule=rule, n_steps=TOTAL_STEPS, checkpoints=2, store_direction=False,
                          fused=fused)
        runners[name] = _exact_margins_runner(trainer) if name.endswith("exact_margins") else _trainer_runner(trainer)
        flops[name] = products * args.runs * args.samples * args.dim
        kernels[name] = trainer.fused_kernels[0] if trainer.fused else "generic"
    peak = matmul_peak_timer(dtype, n=args.peak_size)
    seconds, peaks, counts = time_rounds(runners, peak, args.steps, args.repeats, args.target_s)
    out = {"dtype": np.dtype(dtype).name, "peak_gflops": max(peaks), "steps_per_timing": counts, "kernels": kernels}
    gd = np.array(seconds["gd"])
    for name in runners:
        out[name] = _summary(seconds[name], peaks, flops[name])
        out[name]["over_gd"] = float(np.median(np.array(seconds[name]) / gd))
    return out


def _print_geometry(report):
    for r in report["geometry"]:
        print(f"{r['dtype']}: peak {r['peak_gflops']:.1f} GFLOP/s")
        for name in [k for k in r if isinstance(r[k], dict) and "ms_per_step" in r[k]]:
            x, rounds = r[name], r[name]["fraction_of_peak_per_round"]
            print(f"    {name} ({r['kernels'][name]}): {x['ms_per_step']:.3f} ms/step (median {x['ms_per_step_median']:.3f}), "
                  f"{100 * x['fraction_of_peak']:.0f}% of peak in its products (per round median "
                  f"{100 * rounds['median']:.0f}%), time / GD {x['over_gd']:.2f}")


# ---- the grid behind numeric.fused.choose_kernel ---------------------------------------------------------------
GRID_SHAPES = ((2, 30), (10, 200), (20, 1000), (100, 1000), (50, 5000))     # (d, N)
GRID_RUNS = (1, 2, 4, 8, 16, 32, 64)


def grid(args, dtype) -> list[dict]:
    """Per step, each fused kernel available here on (d, N) x R (one lane, one thread, normalized GD), with the
    kernel ``choose_kernel`` picks: its time over the fastest kernel's (per-round median and best-vs-best)."""
    from lexmargin.numeric.fused import LinearExpLane, choose_kernel
    kernels = [k for k in args.kernels.split(",") if fused_module.kernel_available(k)]
    rows = []
    for d, N in GRID_SHAPES:
        X, y = problem(1, N, d)
        lm_kernel = LinearKernel(X, y, dtype=dtype)
        for R in GRID_RUNS:
            theta = lm_kernel.random_theta(range(R), 0.1)
            eta = np.full(R, ETA)
            runners = {}
            for k in kernels:
                lane = LinearExpLane(slice(0, R), theta, lm_kernel.augmented_margin_matrix, kernel=k)
                runners[k] = ((lambda n, lane=lane, eta=eta: lane.run(n, eta, False)) if lane.compiled
                              else (lambda n, lane=lane, eta=eta: [lane.advance(eta) for _ in range(n)]))
            seconds, _, _ = time_rounds(runners, lambda: 1.0, 10 ** 6, args.repeats, args.target_s / 10)
            t = {k: np.array(v) for k, v in seconds.items()}
            fastest = np.min(np.stack(list(t.values())), axis=0)          # per round
            chosen = choose_kernel(dtype, R, d + 1, N)
            row = {"d": d, "N": N, "R": R, "chosen": chosen,
                   "us_per_step": {k: 1e6 * float(v.min()) for k, v in t.items()},
                   "over_fastest": {k: float(np.median(v / fastest)) for k, v in t.items()},
                   "over_fastest_best": {k: float(v.min() / min(x.min() for x in t.values())) for k, v in t.items()}}
            rows.append(row)
            print(f"d={d:3d} N={N:5d} R={R:2d}: " + "  ".join(
                f"{k} {row['us_per_step'][k]:9.2f} us ({row['over_fastest'][k]:.2f})" for k in t)
                + f"  | chosen {chosen}: {row['over_fastest'].get(chosen, float('nan')):.2f}", flush=True)
    return rows


def _print(report):
    small = report["R"] * report["N"] * report["d"] < 10 ** 5
    unit, scale = ("us/step", 1e3) if small else ("ms/step", 1.0)
    for r in report["results"]:
        line = f"{r['dtype']}: peak {r['peak_gflops']:.1f} GFLOP/s"
        line += "".join(f", {k[5:]} {v:.1f}" for k, v in r.items() if k.startswith("peak_gflops_"))
        line += f" (default kernel: {r['kernel']}; fastest kernel here: {r['fastest_kernel']})"
        for name in [k for k in r if isinstance(r[k], dict) and "ms_per_step" in r[k]]:
            x = r[name]
            rounds = x["fraction_of_peak_per_round"]
            line += (f"\n    {name}: {scale * x['ms_per_step']:.3f} {unit} (median {scale * x['ms_per_step_median']:.3f}),"
                     f" {x['gflops']:.1f} GFLOP/s ({100 * x['fraction_of_peak']:.0f}% of peak; per round median "
                     f"{100 * rounds['median']:.0f}%, best {100 * rounds['best']:.0f}%)")
            if "over_fastest_kernel" in x:
                line += (f" time / fastest kernel {x['over_fastest_kernel']:.2f}"
                         f" (median {x['over_fastest_kernel_median']:.2f})")
            if f"speedup_vs_{name}" in r:
                line += f" [lexmargin is {r[f'speedup_vs_{name}']:.2f}x as fast"
                if f"speedup_vs_{name}_median" in r:
                    line += f", median {r[f'speedup_vs_{name}_median']:.2f}x"
                line += "]"
        print(line)
        print("    breakdown (us): " + ", ".join(f"{k} {v:.1f}" for k, v in r["breakdown_us"].items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="the paper suite's case: 1 run, 30 samples, d=2, 20000 steps per timing, float64")
    parser.add_argument("--runs", type=int, default=None, help="default 64 (--small: 1)")
    parser.add_argument("--samples", type=int, default=None, help="default 1000 (--small: 30)")
    parser.add_argument("--dim", type=int, default=None, help="default 100 (--small: 2)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timing; default 100 (--small: 20000)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--target-s", type=float, default=0.25,
                        help="fewer steps per timing for contenders slower than this many seconds per timing")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the one-thread contenders (kept for compatibility: must be 1)")
    parser.add_argument("--workers", type=int, default=2,
                        help="k of the k-thread contenders (each in a process of its own); 1: none")
    parser.add_argument("--dtype", choices=["float64", "float32", "both"], default=None,
                        help="default both (--small: float64)")
    parser.add_argument("--peak-size", type=int, default=3000, help="n of the n x n matmul that gives the peak")
    parser.add_argument("--kernels", default="c,numba,numpy",
                        help="the fused path's kernels to time one by one (those available here)")
    parser.add_argument("--grid", action="store_true",
                        help="time each fused kernel per step on a grid of sizes (the basis of choose_kernel)")
    parser.add_argument("--geometry", action="store_true",
                        help="time steepest descent in l1 / linf / lp and mirror descent (numeric.geometry)")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return None
    if args.threads != 1:
        parser.error("--threads: the one-thread contenders run on one thread; use --workers k for k threads")
    small = {"runs": 1, "samples": 30, "dim": 2, "steps": 20_000, "dtype": "float64"}
    large = {"runs": 64, "samples": 1000, "dim": 100, "steps": 100, "dtype": "both"}
    for key, value in (small if args.small else large).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    dtypes = [np.float64, np.float32] if args.dtype == "both" else [getattr(np, args.dtype)]
    if args.grid:
        _load_libraries()
        with _blas_threads(1):
            report = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
                      "grid": {np.dtype(dt).name: grid(args, dt) for dt in dtypes}}
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(report, fh, indent=2)
        return report
    if args.geometry:
        _load_libraries()
        with _blas_threads(1):
            report = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": 1,
                      "R": args.runs, "N": args.samples, "d": args.dim, "date": time.strftime("%Y-%m-%d"),
                      "geometry": [geometry_bench(args, dt) for dt in dtypes]}
        _print_geometry(report)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(report, fh, indent=2)
        return report
    children = start_children(args, dtypes)
    _load_libraries()
    limits = _blas_threads(1)                         # every BLAS library (numpy's, scipy's) on one thread
    if _has_torch():
        import torch
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:                          # already set (main() called twice in one process)
            pass
    try:
        for child in (c for group in children.values() for c in group):
            child.wait_ready()               # set up and waiting: nothing of theirs runs while others are timed
        report = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": 1,
                  "workers": args.workers, "R": args.runs, "N": args.samples, "d": args.dim, "steps": args.steps,
                  "date": time.strftime("%Y-%m-%d"),
                  "results": [bench(args, dt, children.get(np.dtype(dt).name, ())) for dt in dtypes]}
    finally:
        limits.restore_original_limits()
        for child in (c for group in children.values() for c in group):
            child.stop()                     # only those left after a failure
    _print(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return report


if __name__ == "__main__":
    main()
