"""Performance suite: lexmargin against peers, measured in one run on one machine (ratios, not absolutes).

    python -m lexmargin suite perf [--quick] [--out DIR]
    python benchmarks/perf_suite.py [--quick] [--out DIR]

* max_margin: lexmargin ``max_margin`` (IPOPT) vs cvxpy + Clarabel vs scikit-learn SVC over N and d
  (SVC, linear kernel, C = 1e6, always fits an intercept: a slightly different problem, timed for scale);
  its row set ``svm_with_bias``: lexmargin ``svm_with_bias`` (the convex QP in (w, b), both depth-sensitive
  stages certified) vs the same QP in cvxpy + Clarabel vs SVC (the same problem up to C), one BLAS thread;
* gd_throughput: batched numpy GD (``lexmargin.numeric``) in GFLOP/s against a dense matmul peak and
  against the same GD loop in PyTorch on the CPU (when torch is installed);
* path_sgd_overhead: Path-SGD vs plain SGD, same net, batch and steps.
* structured: deep linear max-margin and margin path, the linear constrained path, each against its previous
  formulation in the same run (``benchmarks/perf_structured.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_structured
from common import (
    ERROR,
    NOT_AVAILABLE,
    PASSED,
    best_time,
    environment,
    fmt,
    markdown_table,
    optional_module,
    select,
    separable_data,
    write_outputs,
)

import lexmargin


@dataclass(frozen=True)
class BenchResult:
    """One benchmark: a table of rows and summary ratios.  ``status``: passed (ran), not available, error."""

    name: str
    description: str
    status: str
    columns: tuple[str, ...] = ()
    rows: tuple[dict, ...] = ()
    summary: dict = field(default_factory=dict)
    note: str = ""
    seconds: float = 0.0
    sections: tuple[BenchResult, ...] = ()      # further row sets of the same benchmark (own table and summary)

    def to_dict(self) -> dict:
        out = {"name": self.name, "description": self.description, "status": self.status,
               "columns": list(self.columns), "rows": list(self.rows), "summary": self.summary,
               "note": self.note, "seconds": self.seconds}
        if self.sections:
            out["sections"] = [section.to_dict() for section in self.sections]
        return out

    def to_markdown(self, level: int = 2) -> str:
        head = [f"{'#' * level} {self.name} ({self.status})", "", self.description]
        if self.note:
            head += ["", f"Note: {self.note}"]
        if self.rows:
            head += ["", markdown_table(self.columns, [[r.get(c) for c in self.columns] for r in self.rows])]
        if self.summary:
            head += ["", markdown_table(("summary", "value"), list(self.summary.items()))]
        head += ["\n" + section.to_markdown(level + 1) for section in self.sections]
        return "\n".join(head)


@dataclass(frozen=True)
class PerfConfig:
    quick: bool = False
    seed: int = 0
    baseline: str | None = None      # a source tree of another lexmargin version, timed beside this one

    @property
    def repeat(self) -> int:
        return 1 if self.quick else 3

    @property
    def min_seconds(self) -> float:
        """Fast max-margin calls are repeated until this much time is spent (``perf_contender.timed``)."""
        return 0.0 if self.quick else MIN_SECONDS


# ---- max-margin solvers: every contender in its own process --------------------------------------------------
# Fairness: each contender runs in a fresh subprocess (python perf_suite.py --contender ...) with one thread for
# every threading layer (BLAS, OpenMP, Rayon: the environment variables below are set before anything is
# imported), so no contender gets a second core on a shared machine and no contender inherits another's caches
# or memory; peak memory is that process's ru_maxrss (resident set, native allocations included: tracemalloc
# would miss Clarabel's, libsvm's and IPOPT's), reported whole and as the growth over the process after its
# imports and data (``*_solve_mib``).  Iterative peers are timed at the loosest setting that reaches
# ACCURACY relative error in theta against cvxpy + Clarabel at tolerances 1e-12 (the setting is found by
# untimed trial fits, loosest first); a peer that reaches it at no setting is "not converged" and is not a
# candidate for the fastest converged peer.  lexmargin and the peers are timed the same way: best of at least
# ``repeat`` calls, repeated until MIN_SECONDS of calls have run (timeit's autorange; one call when a call takes over
# REPEAT_SECONDS), the model built once outside the timing.
from perf_contender import ACCURACY, LINEAR_SVC_TOLS, MIN_SECONDS, SVC_TOLS  # noqa: F401 (importable from here)

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS")
MAX_MARGIN_GRID = ((100, 10), (1000, 10), (1000, 100), (5000, 100), (20000, 50), (50000, 20), (100000, 10),
                   (2000, 1000), (500, 5000), (10, 10000))
QUICK_GRID = ((100, 10), (20, 500))
CONTENDERS = {"origin": ("lexmargin", "linearsvc", "svc", "cvxpy"), "bias": ("lexmargin", "svc", "cvxpy")}
PEERS = {"linearsvc": "LinearSVC", "svc": "SVC", "cvxpy": "cvxpy+Clarabel"}


def _child(contender: str, problem: str, n: int, d: int, cfg, timeout: float, reference=None, save=None,
           path=None) -> dict:
    import json
    import os
    import subprocess
    import tempfile

    env = {**os.environ, **{name: "1" for name in THREAD_ENV}}
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        command = [sys.executable, str(Path(__file__).resolve().parent / "perf_contender.py"), contender, problem,
                   "--n", str(n), "--d", str(d), "--seed", str(cfg.seed), "--repeat", str(cfg.repeat),
                   "--min-seconds", str(cfg.min_seconds), "--result", str(out)]
        if reference is not None:
            command += ["--reference", str(reference)]
        if save is not None:
            command += ["--save-reference", str(save)]
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"contender": contender, "status": "timeout", "converged": False, "note": f"over {timeout:g} s"}
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"contender": contender, "status": "error", "converged": False, "note": tail[0]}
        return json.loads(out.read_text())


def _grid_row(problem: str, n: int, d: int, cfg, timeout: float, baseline_path=None) -> dict:
    """One (N, d): every contender in its own process; the ratios and errors of this one run."""
    import tempfile

    row = {"N": n, "d": d}
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "reference.npy"
        results = {}
        if optional_module("cvxpy") is not None:
            results["cvxpy"] = _child("cvxpy", problem, n, d, cfg, timeout, save=reference)
        ref = reference if reference.exists() else None
        results["lexmargin"] = _child("lexmargin", problem, n, d, cfg, timeout, reference=ref)
        if baseline_path is not None:
            results["before"] = _child("lexmargin_before", problem, n, d, cfg, timeout, reference=ref,
                                       path=baseline_path)
        for peer in CONTENDERS[problem]:
            if peer not in results and peer != "lexmargin" and optional_module("sklearn") is not None:
                results[peer] = _child(peer, problem, n, d, cfg, timeout, reference=ref)
    lex = results["lexmargin"]
    row["lexmargin_s"] = lex.get("seconds")
    row["lexmargin_status"] = lex.get("status")
    row["lexmargin_solver"] = lex.get("route") or lex.get("solver")
    row["lexmargin_rel_error"] = lex.get("rel_error")
    row["lexmargin_peak_mib"] = lex.get("peak_mib")
    row["lexmargin_solve_mib"] = lex.get("solve_mib")
    converged = {}
    for peer in CONTENDERS[problem][1:]:
        result = results.get(peer, {})
        row[f"{peer}_s"] = result.get("seconds") if result.get("converged") else None
        row[f"{peer}_setting"] = result.get("setting") if result.get("converged") else \
            result.get("status", "not converged") if result.get("status") in ("timeout", "error") else "not converged"
        row[f"{peer}_rel_error"] = result.get("rel_error")
        row[f"{peer}_peak_mib"] = result.get("peak_mib")
        row[f"{peer}_solve_mib"] = result.get("solve_mib")
        if result.get("converged") and result.get("seconds"):
            converged[peer] = result["seconds"]
        if peer != "cvxpy" and result.get("seconds") and lex.get("seconds"):
            row[f"lexmargin_over_{peer}"] = lex["seconds"] / result["seconds"]
    if "cvxpy" in results and results["cvxpy"].get("seconds") and lex.get("seconds"):
        row["lexmargin_over_cvxpy"] = lex["seconds"] / results["cvxpy"]["seconds"]
        row["cvxpy_over_lexmargin"] = results["cvxpy"]["seconds"] / lex["seconds"]
    if converged and lex.get("seconds"):
        fastest = min(converged, key=converged.get)
        row["fastest_peer"] = PEERS[fastest]
        row["lexmargin_over_fastest"] = lex["seconds"] / converged[fastest]
    if "before" in results:
        before = results["before"]
        row["before_s"] = before.get("seconds")
        if before.get("seconds") and converged:
            row["before_over_fastest"] = before["seconds"] / min(converged.values())
    if lex.get("theta") is not None and "cvxpy" in results and results["cvxpy"].get("theta") is not None:
        from lexmargin.report import angle_between
        theta = np.asarray(lex["theta"])
        w = np.asarray(results["cvxpy"]["theta"])
        row["angle_vs_cvxpy"] = angle_between(theta[:d], w[:d])
        objective = float(theta[:d] @ theta[:d])
        value = float(w[:d] @ w[:d])
        row["objective_rel_diff"] = abs(objective - value) / max(abs(value), 1e-300)
    if problem == "origin" and results.get("svc", {}).get("seconds") and lex.get("seconds"):
        row["svc_over_lexmargin"] = results["svc"]["seconds"] / lex["seconds"]
    return row


def _summary(rows, keys) -> dict:
    summary = {}
    for key in keys:
        values = [r[key] for r in rows if r.get(key)]
        if values:
            summary[f"geomean {key}"] = float(np.exp(np.mean(np.log(values))))
            summary[f"max {key}"] = max(values)
    errors = [r["lexmargin_rel_error"] for r in rows if r.get("lexmargin_rel_error") is not None]
    if errors:
        summary["max lexmargin_rel_error"] = max(errors)
    return summary


PEAK_COLUMNS = ("lexmargin_peak_mib", "lexmargin_solve_mib")


def _grid(cfg: PerfConfig, problem: str, progress: bool):
    from lexmargin.progress import bar

    grid = QUICK_GRID if cfg.quick else MAX_MARGIN_GRID
    timeout = 120.0 if cfg.quick else 420.0
    return [_grid_row(problem, n, d, cfg, timeout, cfg.baseline)
            for n, d in bar(grid, wanted=progress, desc=f"max_margin ({problem})")]


def _columns(problem: str, baseline: bool) -> tuple[str, ...]:
    peers = CONTENDERS[problem][1:]
    columns = ["N", "d", "lexmargin_s", "lexmargin_status", "lexmargin_solver"]
    columns += [f"{p}_s" for p in peers] + [f"{p}_setting" for p in peers]
    columns += ["fastest_peer", "lexmargin_over_fastest"] + [f"lexmargin_over_{p}" for p in peers]
    if baseline:
        columns += ["before_s", "before_over_fastest"]
    columns += ["lexmargin_rel_error"] + [f"{p}_rel_error" for p in peers]
    columns += ["lexmargin_peak_mib", "lexmargin_solve_mib"] + [f"{p}_peak_mib" for p in peers] + \
        [f"{p}_solve_mib" for p in peers]
    return tuple(columns)


FAIRNESS = ("every contender in its own subprocess with one thread for BLAS/OpenMP/Rayon; wall time best of at "
            "least {repeat} calls, repeated until 0.5 s of calls have run (at most 1000; 1 call when a call takes over "
            "5 s); iterative peers at the loosest setting reaching "
            "relative error 1e-6 in theta against cvxpy + Clarabel at tolerances 1e-12 (not converged: not a "
            "candidate); peak memory = the contender process's ru_maxrss, *_solve_mib its growth over the process "
            "after imports and data; ratios < 1 mean lexmargin is faster")


def svm_with_bias_rows(cfg: PerfConfig, progress: bool = False) -> BenchResult:
    """The with-bias row set of the max-margin benchmark."""
    rows = _grid(cfg, "bias", progress)
    return BenchResult("svm_with_bias", "hard-margin SVM with an unregularized bias: lexmargin ``svm_with_bias`` (the "
                       "convex QP in (w, b), then both depth-sensitive stages certified) vs scikit-learn SVC (linear "
                       "kernel, C = 1e6) vs the same QP in cvxpy + Clarabel; " + FAIRNESS.format(repeat=cfg.repeat),
                       PASSED, _columns("bias", cfg.baseline is not None), tuple(rows),
                       _summary(rows, ("lexmargin_over_fastest", "lexmargin_over_svc", "lexmargin_over_cvxpy")),
                       note="LinearSVC regularizes its intercept (a different problem): not a contender here")


def bench_max_margin(cfg: PerfConfig, progress: bool = False) -> BenchResult:
    rows = _grid(cfg, "origin", progress)
    return BenchResult("max_margin", "hard-margin SVM through the origin (linear model, l2): lexmargin ``max_margin`` "
                       "vs scikit-learn LinearSVC (hinge loss, no intercept, C = 1e6) vs SVC (linear kernel, C = 1e6, "
                       "on the mirrored data) vs cvxpy + Clarabel; " + FAIRNESS.format(repeat=cfg.repeat), PASSED,
                       _columns("origin", cfg.baseline is not None), tuple(rows),
                       _summary(rows, ("lexmargin_over_fastest", "lexmargin_over_linearsvc", "lexmargin_over_svc",
                                       "lexmargin_over_cvxpy")),
                       note="SVC fits an intercept, so it solves the through-origin problem on the data mirrored, "
                            "(x, y) and (-x, -y) (intercept 0 by symmetry): twice the samples",
                       sections=(svm_with_bias_rows(cfg, progress),))


# ---- GD throughput ------------------------------------------------------------------------------
@contextmanager
def single_thread():
    """One BLAS thread (numpy and torch): per-core numbers, robust to a busy machine."""
    torch = optional_module("torch")
    previous = torch.get_num_threads() if torch is not None else None
    limits = optional_module("threadpoolctl")
    context = limits.threadpool_limits(1) if limits is not None else nullcontext()
    with context:
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)


def matmul_gflops(n: int = 1024) -> float:
    a = np.random.default_rng(0).standard_normal((n, n))
    with single_thread():
        seconds = best_time(lambda: a @ a, 3)
    return 2.0 * n ** 3 / seconds / 1e9


def _numeric_gd_seconds(data, runs: int, steps: int) -> tuple[float, str]:
    """(seconds for ``steps`` steps of the trainer, set up beforehand as the torch tensors are; the fused
    kernel it ran on)."""
    numeric = optional_module("lexmargin.numeric")
    kernel = numeric.LinearKernel(data.X, data.y)
    theta0 = np.zeros((runs, data.n_features))
    lr = 1.0 / np.linalg.norm(data.X, 2) ** 2
    trainer = numeric.Trainer(kernel, theta0, rule=numeric.Constant(lr), n_steps=steps, checkpoints=2,
                              store_direction=False)
    with single_thread():
        start = time.perf_counter()
        trainer.run()
        return time.perf_counter() - start, "+".join(sorted(set(trainer.fused_kernels or ["generic"])))


def _torch_gd_seconds(data, runs: int, steps: int, scheme: str = "softmax") -> float | None:
    """The same steps in PyTorch on as many threads (one), in log space like lexmargin.  ``scheme``:
    "softmax" (log-sum-exp and softmax weights, the usual way) or "one_exp" (lexmargin's: the margins
    shifted by a predicted -log L inside one product, one exp, one product for the gradient and the sums,
    the exact shift where the sums show the prediction unsafe)."""
    torch = optional_module("torch")
    if torch is None:
        return None
    A = torch.tensor((data.y[:, None] * data.X).T.copy(), dtype=torch.float64)  # (d, N)
    lr = 1.0 / float(np.linalg.norm(data.X, 2) ** 2)
    if scheme == "softmax":
        W = torch.zeros((runs, data.n_features), dtype=torch.float64)
        with torch.no_grad(), single_thread():
            start = time.perf_counter()
            for _ in range(steps):
                f = W @ A
                log_loss = torch.logsumexp(-f, dim=1)
                W += (lr * torch.exp(log_loss))[:, None] * (torch.softmax(-f, dim=1) @ A.T)
            return time.perf_counter() - start
    B = torch.cat([A, torch.ones((1, A.shape[1]), dtype=torch.float64)])          # [A; 1]
    P = torch.zeros((B.shape[0], runs), dtype=torch.float64)                      # [-W^T; c]
    E, GT = torch.empty((runs, B.shape[1]), dtype=torch.float64), torch.empty((B.shape[0], runs), dtype=torch.float64)
    s_lo, s_hi = (float(np.exp(v)) for v in optional_module("lexmargin.numeric.fused").safe_log_sum_range(
        np.float64, B.shape[1]))

    def weights():
        torch.matmul(P.T, B, out=E)
        E.clamp_(min=-700.0).exp_()
        torch.matmul(B, E.T, out=GT)

    def exact_shift():
        P[-1] = 0
        P[-1] = -(P.T @ B).amax(dim=1)
        weights()

    with torch.no_grad(), single_thread():
        exact_shift()                                      # the set-up, as in the trainer's constructor
        log_loss = GT[-1].log() - P[-1]
        start = time.perf_counter()
        for _ in range(steps):
            G, s = GT[:-1], GT[-1]
            m = lr * torch.exp(log_loss)                       # plain GD: eta L
            g2 = (G * G).sum(dim=0)
            P[:-1] -= G * (m / s)
            P[-1] = m * g2 / (s * s) - log_loss
            weights()
            if not bool(((s >= s_lo) & (s <= s_hi)).all()):
                exact_shift()
            log_loss = GT[-1].log() - P[-1]
        return time.perf_counter() - start


def bench_gd_throughput(cfg: PerfConfig, progress: bool = False) -> BenchResult:
    if optional_module("lexmargin.numeric") is None:
        return BenchResult("gd_throughput", "batched GD throughput", NOT_AVAILABLE, note="lexmargin.numeric missing")
    n, d, steps = (2000, 50, 50) if cfg.quick else (20000, 200, 100)
    data = separable_data(n, d, seed=cfg.seed)
    size = 512 if cfg.quick else 1024
    peaks = [matmul_gflops(size)]
    rows = []
    for runs in (1, 16) if cfg.quick else (1, 16, 64):
        flops = 4.0 * n * d * runs * steps  # two (runs x d) x (d x N) products per step
        timings = [_numeric_gd_seconds(data, runs, steps) for _ in range(cfg.repeat)]
        seconds, kernel = min(t for t, _ in timings), timings[0][1]
        torch_s = _torch_gd_seconds(data, runs, steps)
        torch_one_exp_s = _torch_gd_seconds(data, runs, steps, scheme="one_exp")
        peaks.append(matmul_gflops(size))              # the peak is re-measured beside every row
        rows.append({"runs": runs, "N": n, "d": d, "steps": steps, "kernel": kernel, "lexmargin_s": seconds,
                     "lexmargin_gflops": flops / seconds / 1e9, "torch_s": torch_s,
                     "torch_over_lexmargin": None if torch_s is None else torch_s / seconds,
                     "torch_one_exp_s": torch_one_exp_s,
                     "torch_one_exp_over_lexmargin": None if torch_one_exp_s is None else torch_one_exp_s / seconds})
    peak = max(peaks)
    for row in rows:
        row["fraction_of_matmul_peak"] = row["lexmargin_gflops"] / peak
    columns = ("runs", "N", "d", "steps", "kernel", "lexmargin_s", "lexmargin_gflops", "fraction_of_matmul_peak",
               "torch_s", "torch_over_lexmargin", "torch_one_exp_s", "torch_one_exp_over_lexmargin")
    return BenchResult("gd_throughput", "exponential-loss GD (constant step) on a linear model, R runs batched, one "
                       "BLAS thread; flops = 4 N d R per step; matmul peak = best single-thread dense n x n product "
                       "measured beside the rows; kernel = lexmargin's fused kernel (numeric.fused); torch = the same "
                       "log-space loop in PyTorch on one thread (log-sum-exp + softmax), torch_one_exp = lexmargin's "
                       "one-exp scheme in PyTorch", PASSED, columns,
                       tuple(rows), {"matmul_peak_gflops": peak},
                       note="" if optional_module("torch") is not None else "PyTorch not installed: no torch columns")


# ---- Path-SGD overhead --------------------------------------------------------------------------
def _sgd_seconds(kernel, theta0, steps, path_sgd) -> float:
    numeric = optional_module("lexmargin.numeric")
    start = time.perf_counter()
    with single_thread():
        numeric.train(kernel, theta0, rule=numeric.Constant(1e-5), n_steps=steps, checkpoints=2, batch_size=32,
                      path_sgd=path_sgd, store_direction=False)
    return time.perf_counter() - start


def _two_layer_init(model, width: int, d: int, seed: int) -> np.ndarray:
    """V ~ N(0, 1/d), a ~ N(0, 1/width): O(1) outputs, so Path-SGD's scales are O(1) too."""
    rng = np.random.default_rng(seed)
    return model.flatten({"V": rng.standard_normal((width, d)) / np.sqrt(d),
                          "a": rng.standard_normal(width) / np.sqrt(width)})


def bench_path_sgd_overhead(cfg: PerfConfig, progress: bool = False) -> BenchResult:
    numeric = optional_module("lexmargin.numeric")
    if numeric is None:
        return BenchResult("path_sgd_overhead", "Path-SGD vs SGD", NOT_AVAILABLE, note="lexmargin.numeric missing")
    rows = []
    for width in (16,) if cfg.quick else (16, 128):
        data = separable_data(1000, 20, seed=cfg.seed)
        model = lexmargin.load_model("two_layer", input_dim=20, activation="relu", width=width)
        kernel = numeric.kernel_for(model, data.X, data.y)
        theta0 = np.stack([_two_layer_init(model, width, 20, cfg.seed + r) for r in range(8)])
        steps = 100 if cfg.quick else 300
        sgd = min(_sgd_seconds(kernel, theta0, steps, False) for _ in range(cfg.repeat))
        path = min(_sgd_seconds(kernel, theta0, steps, True) for _ in range(cfg.repeat))
        rows.append({"width": width, "runs": 8, "batch": 32, "steps": steps, "sgd_s": sgd, "path_sgd_s": path,
                     "overhead": path / sgd})
    return BenchResult("path_sgd_overhead", "two-layer ReLU net (d = 20, N = 1000), minibatch 32, 8 runs batched, "
                       "step 1e-5, one BLAS thread",
                       PASSED, ("width", "runs", "batch", "steps", "sgd_s", "path_sgd_s", "overhead"), tuple(rows),
                       {"max overhead": max(r["overhead"] for r in rows)})


def bench_structured(cfg: PerfConfig, progress: bool = False) -> BenchResult:
    """Structured problems against their previous formulations (benchmarks/perf_structured.py)."""
    return BenchResult(**perf_structured.run(cfg, progress))


BENCHMARKS = (bench_max_margin, bench_gd_throughput, bench_path_sgd_overhead, bench_structured)


# ---- the suite ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PerfSuiteResult:
    quick: bool
    benchmarks: tuple[BenchResult, ...]
    seconds: float
    environment: dict

    def to_dict(self) -> dict:
        return {"suite": "perf", "quick": self.quick, "seconds": self.seconds, "environment": self.environment,
                "benchmarks": [b.to_dict() for b in self.benchmarks]}

    def to_markdown(self) -> str:
        env = self.environment
        header = (f"{fmt(self.seconds)} s; Python {env['python']}, numpy {env['numpy']}, {env['cpus']} CPUs, "
                  f"load average {fmt(env.get('load_average_1min'))}, {env['time_utc']}. All numbers from this one run.")
        lines = [f"# Performance suite{' (quick)' if self.quick else ''}", "", header, ""]
        return "\n".join(lines + [b.to_markdown() + "\n" for b in self.benchmarks])


def _run_bench(fn, cfg, progress) -> BenchResult:
    start = time.perf_counter()
    try:
        result = fn(cfg, progress)
    except Exception as exc:  # noqa: BLE001 - one failing benchmark must not stop the suite
        result = BenchResult(fn.__name__.removeprefix("bench_"), fn.__doc__ or "", ERROR,
                             note=f"{type(exc).__name__}: {exc}")
    return replace(result, seconds=time.perf_counter() - start)


def run_perf_suite(out_dir="perf_suite_results", quick: bool = False, progress: bool = True, only=None,
                   seed: int = 0, baseline: str | None = None) -> PerfSuiteResult:
    """Run the benchmarks (or those in ``only``); write report.json and report.md into out_dir.  ``baseline``: a
    source tree of another lexmargin version (``git archive REV | tar -x -C DIR``) timed beside this one."""
    from lexmargin.progress import bar

    cfg = PerfConfig(quick, seed, baseline)
    chosen = select(BENCHMARKS, only, "bench_")
    start, results = time.perf_counter(), []
    for fn in bar(chosen, wanted=progress, desc="perf suite", unit="bench"):
        results.append(_run_bench(fn, cfg, progress))
    suite = PerfSuiteResult(quick, tuple(results), time.perf_counter() - start, environment())
    write_outputs(out_dir, "report", suite.to_dict(), suite.to_markdown(), seed=seed)
    return suite


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="perf_suite_results")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names (default: all)")
    parser.add_argument("--baseline", default=None,
                        help="a source tree of another lexmargin version (e.g. from git archive) timed beside this one")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(run_perf_suite(args.out, args.quick, only=args.only, seed=args.seed, baseline=args.baseline).to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
