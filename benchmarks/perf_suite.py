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

    @property
    def repeat(self) -> int:
        return 1 if self.quick else 3


# ---- max-margin solvers -------------------------------------------------------------------------
def _lexmargin_solve(data):
    from lexmargin.problems.maxmargin import max_margin

    model = lexmargin.load_model("linear", input_dim=data.n_features)
    return max_margin(model, data)


# Clarabel's default tolerances leave errors of ~1e-6 in theta at N = 5000, d = 100; the accuracy
# columns compare with a tightly solved reference, the timing columns use the defaults.
TIGHT_CLARABEL = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10}


def _cvxpy_solve(data, **solver_options):
    import cvxpy as cp

    w = cp.Variable(data.n_features)
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(data.y, data.X @ w) >= 1])
    problem.solve(solver="CLARABEL", **solver_options)
    return np.asarray(w.value), float(problem.value)


def _svc_solve(data):
    from sklearn.svm import SVC

    return SVC(kernel="linear", C=1e6, tol=1e-6).fit(data.X, data.y)


def _max_margin_row(n, d, cfg) -> dict:
    from lexmargin.report import angle_between

    data = separable_data(n, d, seed=cfg.seed)
    cert = _lexmargin_solve(data)
    row = {"N": n, "d": d, "lexmargin_s": best_time(lambda: _lexmargin_solve(data), cfg.repeat),
           "lexmargin_status": cert.status}
    if optional_module("cvxpy") is not None:
        w, value = _cvxpy_solve(data, **TIGHT_CLARABEL)
        row["cvxpy_clarabel_s"] = best_time(lambda: _cvxpy_solve(data), cfg.repeat)
        row["angle_vs_cvxpy"] = angle_between(cert.theta, w)
        row["max_abs_theta_diff"] = float(np.max(np.abs(cert.theta - w)))
        row["objective_rel_diff"] = abs(cert.objective - value) / max(abs(value), 1e-300)
        row["cvxpy_over_lexmargin"] = row["cvxpy_clarabel_s"] / row["lexmargin_s"]
    if optional_module("sklearn") is not None:
        row["sklearn_svc_s"] = best_time(lambda: _svc_solve(data), cfg.repeat)
        row["svc_over_lexmargin"] = row["sklearn_svc_s"] / row["lexmargin_s"]
    return row


# ---- SVM with an unregularized bias ------------------------------------------------------------------
def _lexmargin_svm_with_bias(data):
    return lexmargin.svm_with_bias(data)


def _cvxpy_svm_with_bias(data, **solver_options):
    import cvxpy as cp

    w, b = cp.Variable(data.n_features), cp.Variable()
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(data.y, data.X @ w + b) >= 1])
    problem.solve(solver="CLARABEL", **solver_options)
    return np.asarray(w.value), float(b.value), float(problem.value)


def _svm_with_bias_row(n, d, cfg) -> dict:
    """One (N, d): lexmargin, cvxpy + Clarabel and SVC on the same data, each with one BLAS thread."""
    data = separable_data(n, d, seed=cfg.seed)
    with single_thread():
        w, b, result = _lexmargin_svm_with_bias(data)
        row = {"N": n, "d": d, "lexmargin_s": best_time(lambda: _lexmargin_svm_with_bias(data), cfg.repeat),
               "route": result.route, "lexmargin_status": "optimal" if result.success else "not optimal",
               "working_set": result.qp.diagnostics.working_set_size if result.qp is not None else None}
        if optional_module("cvxpy") is not None:
            w_ref, b_ref, value = _cvxpy_svm_with_bias(data, **TIGHT_CLARABEL)
            row["cvxpy_clarabel_s"] = best_time(lambda: _cvxpy_svm_with_bias(data), cfg.repeat)
            row["lexmargin_over_cvxpy"] = row["lexmargin_s"] / row["cvxpy_clarabel_s"]
            row["max_abs_w_diff"] = float(np.max(np.abs(w - w_ref)))
            row["abs_b_diff"] = abs(b - b_ref)
            row["objective_rel_diff"] = abs(float(w @ w) - value) / max(abs(value), 1e-300)
        if optional_module("sklearn") is not None:
            row["sklearn_svc_s"] = best_time(lambda: _svc_solve(data), cfg.repeat)
            row["lexmargin_over_svc"] = row["lexmargin_s"] / row["sklearn_svc_s"]
    return row


def svm_with_bias_rows(cfg: PerfConfig, progress: bool = False) -> BenchResult:
    """The with-bias row set of the max-margin benchmark."""
    from tqdm.auto import tqdm

    grid = ((100, 10), (1000, 10)) if cfg.quick else ((100, 10), (1000, 10), (1000, 100), (5000, 100))
    rows = [_svm_with_bias_row(n, d, cfg) for n, d in tqdm(grid, desc="svm_with_bias", disable=not progress,
                                                          leave=False)]
    columns = ("N", "d", "lexmargin_s", "lexmargin_status", "route", "working_set", "cvxpy_clarabel_s",
               "sklearn_svc_s", "lexmargin_over_cvxpy", "lexmargin_over_svc", "max_abs_w_diff", "abs_b_diff",
               "objective_rel_diff")
    summary = {}
    for key in ("lexmargin_over_cvxpy", "lexmargin_over_svc"):
        values = [r[key] for r in rows if key in r]
        if values:
            summary[f"geomean {key}"] = float(np.exp(np.mean(np.log(values))))
            summary[f"max {key}"] = max(values)
    for key in ("max_abs_w_diff", "abs_b_diff"):
        summary[f"max {key}"] = max((r.get(key, 0.0) for r in rows), default=None)
    return BenchResult("svm_with_bias", "hard-margin SVM with an unregularized bias: lexmargin ``svm_with_bias`` (the "
                       "convex QP in (w, b) on the linear pipeline, then both depth-sensitive stages certified) vs the "
                       "same QP in cvxpy + Clarabel vs scikit-learn SVC (linear kernel, C = 1e6), wall time per solve "
                       f"(best of {cfg.repeat}), every solver with one BLAS thread, in one run; ratios < 1 mean "
                       "lexmargin is faster; accuracy columns compare with cvxpy + Clarabel at tolerances 1e-12",
                       PASSED, columns, tuple(rows), summary,
                       note="SVC's C = 1e6 is a soft margin: close to, not exactly, the hard margin")


def bench_max_margin(cfg: PerfConfig, progress: bool = False) -> BenchResult:
    from tqdm.auto import tqdm

    grid = [(n, d) for n in ((50, 200) if cfg.quick else (100, 1000, 5000)) for d in ((2, 10) if cfg.quick else (2, 20, 100))]
    rows = [_max_margin_row(n, d, cfg) for n, d in tqdm(grid, desc="max_margin", disable=not progress, leave=False)]
    columns = ("N", "d", "lexmargin_s", "lexmargin_status", "cvxpy_clarabel_s", "sklearn_svc_s",
               "cvxpy_over_lexmargin", "svc_over_lexmargin", "angle_vs_cvxpy", "max_abs_theta_diff",
               "objective_rel_diff")
    summary = {}
    for key in ("cvxpy_over_lexmargin", "svc_over_lexmargin"):
        values = [r[key] for r in rows if key in r]
        if values:
            summary[f"geomean {key}"] = float(np.exp(np.mean(np.log(values))))
    summary["max angle_vs_cvxpy"] = max((r.get("angle_vs_cvxpy", 0.0) for r in rows), default=None)
    return BenchResult("max_margin", "hard-margin SVM through the origin (linear model), wall time per solve "
                       f"(best of {cfg.repeat}); ratios > 1 mean lexmargin is faster; accuracy columns compare with cvxpy + "
                       "Clarabel at tolerances 1e-12", PASSED, columns, tuple(rows),
                       summary, note="sklearn SVC fits an intercept (a slightly different problem)",
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


def _numeric_gd_seconds(data, runs: int, steps: int) -> float:
    """Seconds for ``steps`` steps of the trainer (set up beforehand, as the torch tensors are)."""
    numeric = optional_module("lexmargin.numeric")
    kernel = numeric.LinearKernel(data.X, data.y)
    theta0 = np.zeros((runs, data.n_features))
    lr = 1.0 / np.linalg.norm(data.X, 2) ** 2
    trainer = numeric.Trainer(kernel, theta0, rule=numeric.Constant(lr), n_steps=steps, checkpoints=2,
                              store_direction=False)
    with single_thread():
        start = time.perf_counter()
        trainer.run()
        return time.perf_counter() - start


def _torch_gd_seconds(data, runs: int, steps: int) -> float | None:
    """The same steps in PyTorch, in log space like lexmargin (log-sum-exp, softmax weights)."""
    torch = optional_module("torch")
    if torch is None:
        return None
    A = torch.tensor((data.y[:, None] * data.X).T.copy(), dtype=torch.float64)  # (d, N)
    W = torch.zeros((runs, data.n_features), dtype=torch.float64)
    lr = 1.0 / float(np.linalg.norm(data.X, 2) ** 2)
    with torch.no_grad(), single_thread():
        start = time.perf_counter()
        for _ in range(steps):
            f = W @ A
            log_loss = torch.logsumexp(-f, dim=1)
            W += (lr * torch.exp(log_loss))[:, None] * (torch.softmax(-f, dim=1) @ A.T)
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
        seconds = min(_numeric_gd_seconds(data, runs, steps) for _ in range(cfg.repeat))
        torch_s = _torch_gd_seconds(data, runs, steps)
        peaks.append(matmul_gflops(size))              # the peak is re-measured beside every row
        rows.append({"runs": runs, "N": n, "d": d, "steps": steps, "lexmargin_s": seconds,
                     "lexmargin_gflops": flops / seconds / 1e9, "torch_s": torch_s,
                     "torch_over_lexmargin": None if torch_s is None else torch_s / seconds})
    peak = max(peaks)
    for row in rows:
        row["fraction_of_matmul_peak"] = row["lexmargin_gflops"] / peak
    columns = ("runs", "N", "d", "steps", "lexmargin_s", "lexmargin_gflops", "fraction_of_matmul_peak", "torch_s",
               "torch_over_lexmargin")
    return BenchResult("gd_throughput", "exponential-loss GD (constant step) on a linear model, R runs batched, one "
                       "BLAS thread; flops = 4 N d R per step; matmul peak = best single-thread dense n x n product "
                       "measured beside the rows; torch = the same log-space loop in PyTorch", PASSED, columns,
                       tuple(rows), {"matmul_peak_gflops": peak},
                       note="" if optional_module("torch") is not None else "PyTorch not installed: no torch column")


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
                   seed: int = 0) -> PerfSuiteResult:
    """Run the benchmarks (or those in ``only``); write report.json and report.md into out_dir."""
    from tqdm.auto import tqdm

    cfg = PerfConfig(quick, seed)
    chosen = select(BENCHMARKS, only, "bench_")
    start, results = time.perf_counter(), []
    for fn in tqdm(chosen, desc="perf suite", disable=not progress, unit="bench"):
        results.append(_run_bench(fn, cfg, progress))
    suite = PerfSuiteResult(quick, tuple(results), time.perf_counter() - start, environment())
    write_outputs(out_dir, "report", suite.to_dict(), suite.to_markdown(), seed=seed)
    return suite


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="perf_suite_results")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(run_perf_suite(args.out, args.quick).to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
