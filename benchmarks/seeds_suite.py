"""Seeds suite: the Path-SGD experiments (Neyshabur, Salakhutdinov & Srebro 2015; Neyshabur, Tomioka & Srebro 2015)
reproduced on scikit-learn's digits (1797 images 8 x 8, 10 classes), with fixed seeds and a held-out test split.

    python -m lexmargin suite seeds [--quick] [--out DIR] [--seed S] [--format png pdf svg]
    python benchmarks/seeds_suite.py [--quick] [--out DIR] [--seed S] [--format png pdf svg]

Data: pixels / 16 in [0, 1], a stratified split of 75 % training (1347 samples) and 25 % test (450), drawn with
the suite's seed.  Nets: bias-free ReLU MLPs with K = 10 outputs (``MulticlassLayeredNetKernel``, R runs at once),
softmax cross-entropy (``CrossEntropyLoss``), minibatches of 64 whole samples.  A step size ``lr`` is that of the
mean loss: the trainer's constant rule steps eta grad L with L the sum over the N training samples, eta = lr / N.

* optimizers: nets 64-H-H-10 (two hidden layers; H = 32 quick, 64 full; 1 / 3 seeds), three methods:
  constant-step SGD, AdaGrad and l2-Path-SGD (p = 2, constant step), each from a balanced and an unbalanced initialization of the
  same function: He-initialized layers balanced by node rescalings (||in_u|| = ||out_u|| at every hidden unit,
  ``numeric.initialization.balance``), and that net with 10 % of the units of each hidden layer rescaled by 10
  (incoming x 10, outgoing / 10: ``unbalance``).  Both starts compute the same function and see the same
  minibatches, so any difference between their curves comes from the parametrization.  Training and test error
  curves; the step size of each method is the best of a small grid by final training error of the balanced runs
  (one value in quick mode).  The check passes when Path-SGD's outputs from the two starts agree to 1e-6
  (relative) at every checkpoint; the errors of every method from both starts are reported as measured, with the
  degradation (unbalanced minus balanced final test error) of each method.
* width: nets 64-H-10 (one hidden layer; H = 8, 32, 128 quick, 4 ... 2048 full), He initialization, SGD (lr 0.5)
  until zero training error (checked every 100 steps, capped), test error vs H.  The claim (implicit
  regularization): test error does not rise with H once nets interpolate.  The check passes when every width that
  reached zero training error beyond the smallest such one has a test error at most 0.01 (4.5 test samples) above
  the best test error of the narrower interpolating nets.

Total run time is in report.json (``seconds``) and report.md; full mode takes minutes (a progress bar on a
terminal), ``--quick`` under a minute.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CheckResult,
    environment,
    line_plot,
    not_available,
    optional_module,
    run_check,
    select,
    suite_main,
    write_outputs,
)
from paper_suite import SuiteResult

from lexmargin.report import figures

BATCH = 64
INVARIANCE_TOL = 1e-6            # Path-SGD: relative output difference between the two starts
WIDTH_TOL = 0.01                 # test error above the best narrower interpolating net
UNBALANCE = {"fraction": 0.1, "factor": 10.0}
METHODS = ("sgd", "adagrad", "path_sgd")
LABELS = {"sgd": "SGD", "adagrad": "AdaGrad", "path_sgd": r"$\ell_2$-Path-SGD"}


@dataclass(frozen=True)
class SeedsConfig:
    """Output folder, sizes, the seed of the split, starts and minibatches, figure formats, progress."""

    out_dir: Path
    quick: bool = False
    seed: int = 0
    formats: tuple[str, ...] = ("png",)
    progress: bool = False

    def plot_path(self, name: str) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name


def digits_split(seed: int):
    """(train, test) Datasets of digits: pixels / 16, stratified 75 / 25 split drawn with ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import lexmargin as lm

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=seed)
    return lm.Dataset(Xtr, ytr, n_classes=10), lm.Dataset(Xte, yte, n_classes=10)


def errors(kernel, dataset, theta) -> np.ndarray:
    """Classification error of every run (R,): argmax of the K outputs against the labels."""
    return (kernel.outputs(theta).argmax(axis=1) != dataset.labels).mean(axis=1)


def _rule(method: str, lrs, n: int):
    from lexmargin.numeric import AdaGrad, Constant

    if method == "adagrad":
        return AdaGrad(eta=tuple(float(v) for v in lrs))
    return Constant(eta=tuple(float(v) / n for v in lrs))


def _grid(quick: bool) -> dict:
    if quick:
        return {"sgd": [0.1], "adagrad": [0.01], "path_sgd": [0.1]}
    return {"sgd": [0.03, 0.1, 0.3], "adagrad": [0.003, 0.01, 0.03], "path_sgd": [0.03, 0.1, 0.3]}


def check_optimizers(cfg: SeedsConfig) -> CheckResult:
    """Path-SGD vs SGD vs AdaGrad on 64-H-H-10 nets, balanced and unbalanced starts (Neyshabur et al. 2015)."""
    claim = ("l2-Path-SGD's trajectory is invariant to node rescalings (the same from a balanced and an unbalanced "
             "start of the same function), and it does not degrade on unbalanced nets where SGD does")
    if optional_module("sklearn") is None:
        return not_available("optimizers", claim, "scikit-learn is not installed (pip install scikit-learn)")
    from lexmargin.numeric import Trainer
    from lexmargin.numeric.initialization import balance, he_init, unbalance
    from lexmargin.numeric.multiclass import CrossEntropyLoss, MulticlassLayeredNetKernel
    from lexmargin.progress import bar as progress_bar

    train, test = digits_split(cfg.seed)
    H = 32 if cfg.quick else 64
    steps = 300 if cfg.quick else 1500
    seeds = [cfg.seed + s for s in range(1 if cfg.quick else 3)]
    grid = _grid(cfg.quick)
    kernel = MulticlassLayeredNetKernel(train, hidden=(H, H))
    test_kernel = MulticlassLayeredNetKernel(test, hidden=(H, H))
    balanced = balance(kernel, he_init(kernel, seeds))
    starts = {"balanced": balanced, "unbalanced": unbalance(kernel, balanced, seed=cfg.seed, **UNBALANCE)}
    stops = np.unique(np.linspace(0, steps, 16 if cfg.quick else 31).astype(int))
    N, loss = train.n_samples, CrossEntropyLoss(10)
    curves: dict = {}
    gaps: dict = {}
    jobs = [(m, init) for m in METHODS for init in starts]
    bar = progress_bar(jobs, wanted=cfg.progress, desc="seeds: optimizers", unit="run")
    for method, init in bar:
        bar.set_postfix_str(f"{method}, {init}")
        lrs = grid[method]
        theta0 = np.repeat(starts[init], len(lrs), axis=0)          # run r = seed r // len(lrs), lr r % len(lrs)
        trainer = Trainer(kernel, theta0, loss=loss, rule=_rule(method, lrs * len(seeds), N), n_steps=steps,
                          checkpoints=[steps], batch_size=BATCH, path_sgd=method == "path_sgd", seed=cfg.seed,
                          store_direction=False)
        train_err, test_err, outputs = [], [], []
        for stop in stops:
            trainer.run(until=int(stop))
            train_err.append(errors(kernel, train, trainer.theta))
            test_err.append(errors(test_kernel, test, trainer.theta))
            outputs.append(kernel.outputs(trainer.theta))
        curves[(method, init)] = (np.array(train_err), np.array(test_err), outputs)
    bar.close()
    rows, series_train, series_test, passed = {}, [], [], True
    for method in METHODS:
        lrs = grid[method]
        bal_train = curves[(method, "balanced")][0][-1].reshape(len(seeds), len(lrs)).mean(axis=0)
        best = int(np.argmin(bal_train))
        pick = np.arange(len(seeds)) * len(lrs) + best
        (tr_b, te_b, out_b), (tr_u, te_u, out_u) = curves[(method, "balanced")], curves[(method, "unbalanced")]
        gap = max(float(np.max(np.abs(a[pick] - b[pick])) / max(1.0, float(np.max(np.abs(a[pick])))))
                  for a, b in zip(out_b, out_u))
        gaps[method] = gap
        rows[method] = {
            "lr": lrs[best], "lr_grid": lrs,
            "output_gap_balanced_vs_unbalanced": gap,
            "final_train_error": {"balanced": float(tr_b[-1, pick].mean()), "unbalanced": float(tr_u[-1, pick].mean())},
            "final_test_error": {"balanced": float(te_b[-1, pick].mean()), "unbalanced": float(te_u[-1, pick].mean())},
            "test_error_degradation": float(te_u[-1, pick].mean() - te_b[-1, pick].mean()),
            "steps_to_train_error_5pct": {"balanced": _first_below(stops, tr_b[:, pick].mean(axis=1), 0.05),
                                          "unbalanced": _first_below(stops, tr_u[:, pick].mean(axis=1), 0.05)},
            "mean_train_error_over_curve": {"balanced": float(tr_b[:, pick].mean()),
                                            "unbalanced": float(tr_u[:, pick].mean())},
            "train_error_degradation": float(tr_u[-1, pick].mean() - tr_b[-1, pick].mean()),
            "curves": {"steps": stops.tolist(),
                       "train_balanced": tr_b[:, pick].mean(axis=1).tolist(),
                       "train_unbalanced": tr_u[:, pick].mean(axis=1).tolist(),
                       "test_balanced": te_b[:, pick].mean(axis=1).tolist(),
                       "test_unbalanced": te_u[:, pick].mean(axis=1).tolist(),
                       "train_per_seed_balanced": tr_b[:, pick].T.tolist(),
                       "train_per_seed_unbalanced": tr_u[:, pick].T.tolist(),
                       "test_per_seed_balanced": te_b[:, pick].T.tolist(),
                       "test_per_seed_unbalanced": te_u[:, pick].T.tolist()}}
        for init, tr, te in (("balanced", tr_b, te_b), ("unbalanced", tr_u, te_u)):
            label = f"{LABELS[method]}, {init}"
            series_train.append((label, stops, tr[:, pick].mean(axis=1)))
            series_test.append((label, stops, te[:, pick].mean(axis=1)))
    passed = gaps["path_sgd"] <= INVARIANCE_TOL

    def right(fig, ax):
        for k, (label, x, y) in enumerate(series_test):
            keep = np.asarray(y) > 0
            figures.plot_series(ax, np.asarray(x)[keep], np.asarray(y)[keep], label, k)
        ax.set(xlabel="step (minibatch of 64)", ylabel="test error", title="test error (450 held out)", yscale="log")
        figures.legend(ax)

    plot = line_plot(cfg.plot_path("optimizers"), cfg.formats, series_train, xlabel="step (minibatch of 64)",
                     ylabel="training error (0 not drawn)",
                     title=f"digits, 64-{H}-{H}-10 ReLU, mean of {len(seeds)} seed(s)", logx=False, logy=True,
                     panel=right)
    degr = {m: rows[m]["test_error_degradation"] for m in METHODS}
    reach = {m: rows[m]["steps_to_train_error_5pct"] for m in METHODS}
    note = ("test error unbalanced - balanced: " + ", ".join(f"{m} {degr[m]:+.3f}" for m in METHODS)
            + "; steps to training error 5 % (balanced / unbalanced): "
            + ", ".join(f"{m} {reach[m]['balanced']} / {reach[m]['unbalanced']}" for m in METHODS)
            + f"; Path-SGD output gap {gaps['path_sgd']:.1e}")
    return CheckResult("optimizers", claim, bool(passed),
                       {"hidden": [H, H], "steps": steps, "batch": BATCH, "seeds": seeds, "unbalance": UNBALANCE,
                        "n_train": train.n_samples, "n_test": test.n_samples, "invariance_tol": INVARIANCE_TOL,
                        "methods": rows}, tuple(plot), note=note)


def _first_below(steps, values, level: float):
    """The first step whose value is at most ``level`` (None when none is)."""
    hit = np.nonzero(np.asarray(values) <= level)[0]
    return int(steps[hit[0]]) if hit.size else None


def check_width(cfg: SeedsConfig) -> CheckResult:
    """Test error vs width H of 64-H-10 nets trained to zero training error (Neyshabur, Tomioka & Srebro 2015)."""
    claim = ("implicit regularization: nets trained to zero training error do not test worse as the width H grows "
             "(as classical capacity arguments would predict)")
    if optional_module("sklearn") is None:
        return not_available("width", claim, "scikit-learn is not installed (pip install scikit-learn)")
    from lexmargin.numeric import Constant, Trainer
    from lexmargin.numeric.initialization import he_init
    from lexmargin.numeric.multiclass import CrossEntropyLoss, MulticlassLayeredNetKernel
    from lexmargin.progress import bar as progress_bar

    train, test = digits_split(cfg.seed)
    widths = (8, 32, 128) if cfg.quick else tuple(2 ** k for k in range(2, 12))
    cap = 1500 if cfg.quick else 10_000
    seeds = [cfg.seed + s for s in range(1 if cfg.quick else 2)]
    lr, N = 0.5, train.n_samples
    rows = []
    bar = progress_bar(widths, wanted=cfg.progress, desc="seeds: width", unit="width")
    for H in bar:
        bar.set_postfix_str(f"H = {H}")
        start = time.perf_counter()
        kernel = MulticlassLayeredNetKernel(train, hidden=(H,))
        trainer = Trainer(kernel, he_init(kernel, seeds), loss=CrossEntropyLoss(10), rule=Constant(lr / N),
                          n_steps=cap, checkpoints=[cap], batch_size=BATCH, seed=cfg.seed, store_direction=False)
        while True:
            trainer.run(until=min(cap, trainer.step + 100))
            train_err = errors(kernel, train, trainer.theta)
            if train_err.max() == 0 or trainer.step >= cap:
                break
        test_err = errors(MulticlassLayeredNetKernel(test, hidden=(H,)), test, trainer.theta)
        rows.append({"H": H, "steps": trainer.step, "reached_zero_train_error": bool(train_err.max() == 0),
                     "train_error": float(train_err.mean()), "test_error": float(test_err.mean()),
                     "test_error_per_seed": test_err.tolist(), "seconds": time.perf_counter() - start})
    bar.close()
    fitted = [r for r in rows if r["reached_zero_train_error"]]
    rises = []
    for k, r in enumerate(fitted[1:], start=1):
        best = min(q["test_error"] for q in fitted[:k])
        rises.append(r["test_error"] - best)
    passed = len(fitted) >= 2 and max(rises) <= WIDTH_TOL
    H = np.array([r["H"] for r in rows], dtype=float)
    plot = line_plot(cfg.plot_path("width"), cfg.formats,
                     [("test error", H, [r["test_error"] for r in rows]),
                      ("training error", H, [r["train_error"] for r in rows])],
                     xlabel="hidden units $H$", ylabel="error",
                     title=f"digits, 64-$H$-10 ReLU, SGD to zero training error (cap {cap} steps)",
                     logx=True, logy=False)
    note = (f"{len(fitted)} of {len(rows)} widths reached zero training error; test error "
            + ", ".join(f"H={r['H']}: {r['test_error']:.3f}" for r in rows))
    return CheckResult("width", claim, bool(passed),
                       {"widths": list(widths), "lr": lr, "batch": BATCH, "step_cap": cap, "seeds": seeds,
                        "largest_rise": max(rises) if rises else None, "tol": WIDTH_TOL, "rows": rows},
                       tuple(plot), note=note)


CHECKS = (check_optimizers, check_width)


def run_seeds_suite(out_dir="seeds_suite_results", quick: bool = False, progress: bool = True, only=None,
                    seed: int = 0, formats=("png",)) -> SuiteResult:
    """Run the seeds suite's checks (or those named in ``only``); write report.json, report.md and figures.

    Args:
        out_dir: the output folder.
        quick: small sizes (under a minute).
        progress: progress bars on a terminal.
        only: names of the checks to run ("optimizers", "width"); None for all.
        seed: seed of the split, the starts and the minibatches (recorded in report.json).
        formats: figure formats (png, pdf, svg); every figure in each.

    Returns:
        The SuiteResult (name "seeds"; report.json of kind seeds_suite), with the total time in ``seconds``.
    """
    cfg = SeedsConfig(Path(out_dir), bool(quick), int(seed), figures.check_formats(formats), bool(progress))
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    start, results = time.perf_counter(), []
    for check in select(CHECKS, only, "check_"):
        results.append(run_check(check, cfg=cfg))
    suite = SuiteResult("seeds", cfg.quick, tuple(results), time.perf_counter() - start, environment(),
                        str(cfg.out_dir), cfg.seed)
    write_outputs(cfg.out_dir, "report", suite.to_dict(), suite.to_markdown(), seed=cfg.seed)
    return suite


def main(argv=None) -> int:
    return suite_main(argv, __doc__.splitlines()[0], "seeds_suite_results", run_seeds_suite)


if __name__ == "__main__":
    sys.exit(main())
