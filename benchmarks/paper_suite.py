"""Paper suite: each claim of the implicit-bias papers checked numerically, with pass/fail and a plot.

    python -m lexmargin suite paper [--quick] [--out DIR]
    python benchmarks/paper_suite.py [--quick] [--out DIR]

Claims (Nacson et al. ICML 2019 unless noted):

* lemma3_bound: on the constrained path theta(B) = argmin_{||theta|| <= B} L(theta) of an alpha-homogeneous
  model, L(theta(B)) <= L(B theta*) <= N exp(-B^alpha gamma*), hence min_n f_n(theta(B)) >= B^alpha gamma* - log N
  and the normalized margin tends to gamma* (the bound relating the constrained and the margin path);
* theorem1_shallow_discarded: for an ensemble depth-1 + depth-2, the shallow sub-model is discarded
  (||theta_depth1|| / ||theta|| -> 0 along the constrained path) when the deep one separates alone;
* svm_bias: f = y(<w, x> + b1^2 - b2^2): the weight direction of the constrained path tends to the
  hard-margin SVM with an *unregularized* bias;
* theorems23_homogeneous: GD on a homogeneous net reaches an approximate KKT point of the max-margin
  problem (Theorem 2 / Lyu & Li (eps, delta)-KKT) and -grad L aligns with theta (Theorem 3);
* theorem4_lexicographic: homogeneous models converge to the lexicographic max-margin solution;
* log_vs_eps_log: the log predictor's constrained path keeps a fixed direction away from the SVM,
  the (1+eps)-log predictor's converges to the SVM direction;
* path_sgd_invariance: Path-SGD (Neyshabur et al. 2015) is invariant to node rescalings;
* gd_rate (Soudry et al. 2018): GD on a linear model converges in direction to the SVM like 1/log t.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ERROR,
    NOT_AVAILABLE,
    PASSED,
    CheckResult,
    environment,
    fmt,
    markdown_table,
    not_available,
    optional_module,
    pyplot,
    run_check,
    save_figure,
    select,
    separable_data,
    write_outputs,
)

import lexmargin
from lexmargin.report import angle_between, stationarity_report


@dataclass(frozen=True)
class SuiteConfig:
    out_dir: Path
    quick: bool = False
    seed: int = 0

    def plot_path(self, name: str) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / f"{name}.png"


# ---- shared numerical helpers -------------------------------------------------------------------
def constrained_path(model, data, rhos, **options):
    """lexmargin.problems.paths.constrained_path (theta on the unit ball, theta(B) = rho * theta)."""
    return optional_module("lexmargin.problems.paths").constrained_path(model, data, rhos, **options)


def svm_without_bias(data):
    """Certificate of the hard-margin SVM through the origin (max_margin on the linear model)."""
    from lexmargin.problems.maxmargin import max_margin

    return max_margin(lexmargin.load_model("linear", input_dim=data.n_features), data)


def svm_with_bias(data):
    """(w, b) of min ||w||^2 s.t. y (w.x + b) >= 1 with cvxpy + Clarabel (None if cvxpy is missing)."""
    cp = optional_module("cvxpy")
    if cp is None:
        return None
    w, b = cp.Variable(data.n_features), cp.Variable()
    cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(data.y, data.X @ w + b) >= 1]).solve(solver="CLARABEL")
    return np.asarray(w.value), float(b.value)


def missing(*modules) -> list[str]:
    return [m for m in modules if optional_module(m) is None]


def gd_history(model, data, theta0, steps: int, rule, checkpoints: int = 40, **options):
    """One run of lexmargin.numeric.train on the model's fastest kernel."""
    numeric = optional_module("lexmargin.numeric")
    kernel = numeric.kernel_for(model, data.X, data.y)
    return numeric.train(kernel, np.atleast_2d(theta0), rule=rule, n_steps=steps, checkpoints=checkpoints, **options)


def line_plot(cfg, name, x, series, xlabel, ylabel, title, logy=True, logx=True) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, values in series.items():
        ax.plot(x, values, "o-", ms=3, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xscale="log" if logx else "linear",
           yscale="log" if logy else "linear")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, cfg.plot_path(name))


# ---- checks -------------------------------------------------------------------------------------
def check_lemma3_bound(cfg: SuiteConfig) -> CheckResult:
    """Lemma 3: gamma*(rho) - gamma(rho, theta_c(rho)) <= log N along the constrained path."""
    claim = ("gamma*(rho) - min_n f_n(rho theta_c(rho)) <= log N at every rho (margin path vs constrained path), "
             "and the normalized-margin gap shrinks")
    if missing("lexmargin.problems.paths"):
        return not_available("lemma3_bound", claim, "lexmargin.problems.paths is missing")
    data = separable_data(20, 2, seed=cfg.seed)
    specs = [("linear", {}, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0])]
    if not cfg.quick:
        specs.append(("deep_linear", {"depth": 2, "width": 2}, [1.0, 1.5, 2.0, 3.0, 4.0, 6.0]))
    numbers, passed, series, log_n = {}, True, {}, float(np.log(data.n_samples))
    for name, opts, rhos in specs:
        model = lexmargin.load_model(name, input_dim=2, **opts)
        path = constrained_path(model, data, rhos, seed=cfg.seed)
        gaps = path.lemma3_gaps
        normalized_gap = gaps / np.asarray(rhos) ** model.degree
        ok = all(p.lemma3_holds for p in path.points) and normalized_gap[-1] < normalized_gap[0]
        passed &= ok
        numbers[model.name] = {"rho": rhos, "gap": gaps, "bound_log_N": log_n, "passed": ok}
        series[f"{model.name}: gap"] = np.maximum(gaps, 1e-16)
    plot = line_plot(cfg, "lemma3_bound", specs[0][2], {k: v[: len(specs[0][2])] for k, v in series.items()},
                     "rho", "gamma*(rho) - gamma(rho)", f"Lemma 3 gaps (bound log N = {log_n:.3g})")
    return CheckResult("lemma3_bound", claim, bool(passed), numbers, (plot,))


def check_theorem1_shallow_discarded(cfg: SuiteConfig) -> CheckResult:
    """Theorem 1: ensemble depth1 + depth2, the shallow sub-model is discarded along the constrained path."""
    claim = ("ensemble depth 1 + depth 2 (depth 2 separates alone): ||theta_depth1|| / ||theta|| on the constrained "
             "path decreases by >= 4x, and lexmargin.problems.depth's depth-sensitive solution discards depth1")
    if missing("lexmargin.problems.paths", "lexmargin.problems.depth"):
        return not_available("theorem1_shallow_discarded", claim,
                             f"missing {missing('lexmargin.problems.paths', 'lexmargin.problems.depth')}")
    from lexmargin.problems.depth import depth_sensitive

    data = separable_data(20, 2, seed=cfg.seed)
    model = lexmargin.load_model("ensemble", input_dim=2, depths=(1, 2), widths=2)
    rhos = [2.0, 4.0, 8.0, 16.0] if cfg.quick else [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    path = constrained_path(model, data, rhos, seed=cfg.seed)
    shallow = model.block_slice("depth1")
    ratio = np.array([np.linalg.norm(t[shallow]) / np.linalg.norm(t) for t in path.thetas])
    solution = depth_sensitive(model, data, seed=cfg.seed)
    plot = line_plot(cfg, "theorem1_shallow_discarded", rhos, {"||theta_depth1|| / ||theta||": ratio}, "rho",
                     "fraction", "shallow sub-model discarded")
    passed = bool(np.all(np.diff(ratio) < 0) and ratio[-1] <= ratio[0] / 4 and "depth1" in solution.discarded)
    return CheckResult("theorem1_shallow_discarded", claim, passed,
                       {"rho": rhos, "shallow_fraction": ratio, "shallow_norm_times_rho": ratio * np.asarray(rhos),
                        "depth_sensitive_discarded": list(solution.discarded),
                        "depth_sensitive_block_squared_norms": solution.block_squared_norms}, (plot,))


def check_svm_bias(cfg: SuiteConfig) -> CheckResult:
    """SVM bias: f = y(w.x + b1^2 - b2^2), w(rho) tends to the SVM with an unregularized bias."""
    claim = ("lexmargin.problems.depth.svm_with_bias agrees with cvxpy's SVM with bias (angle < 1e-6); the constrained path's "
             "w(rho) tends to it (angle < 1e-2 rad, decreasing); it differs from the SVM through the origin")
    if missing("lexmargin.problems.paths", "lexmargin.problems.maxmargin", "lexmargin.problems.depth"):
        return not_available("svm_bias", claim,
                             f"missing {missing('lexmargin.problems.paths', 'lexmargin.problems.maxmargin', 'lexmargin.problems.depth')}")
    from lexmargin.problems.depth import svm_with_bias as depth_svm

    base = separable_data(30, 2, seed=cfg.seed)
    data = lexmargin.Dataset(base.X + np.array([2.0, 1.0]), base.y)
    w_svm, b_svm, _ = depth_svm(data)
    peer = svm_with_bias(data)
    peer_angle = None if peer is None else angle_between(w_svm, peer[0])
    model = lexmargin.load_model("svm_bias", input_dim=2, sign="both")
    rhos = [2.0, 8.0, 32.0, 128.0] if cfg.quick else [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
    path = constrained_path(model, data, rhos, seed=cfg.seed)
    w = model.block_slice("w")
    angles = np.array([angle_between(t[w], w_svm) for t in path.thetas])
    separation = angle_between(svm_without_bias(data).theta, w_svm)
    plot = line_plot(cfg, "svm_bias", rhos, {"angle(w(rho), SVM with bias)": angles,
                                            "SVM through origin": np.full(len(rhos), separation)},
                     "rho", "angle (rad)", "svm_bias constrained path")
    passed = bool(angles[-1] < 1e-2 and angles[-1] < angles[0] and separation > 0.05
                  and (peer_angle is None or peer_angle < 1e-6))
    return CheckResult("svm_bias", claim, passed, {"rho": rhos, "angles": angles, "svm_w": w_svm, "svm_b": b_svm,
                                                   "angle_depth_vs_cvxpy": peer_angle,
                                                   "angle_svm_bias_vs_origin": separation}, (plot,),
                       note="" if peer is not None else "cvxpy missing: no peer comparison")


def check_theorems23_homogeneous(cfg: SuiteConfig) -> CheckResult:
    """Theorems 2-3: GD on a homogeneous net nears a KKT point, and -grad L aligns with theta."""
    claim = ("GD on deep_linear L=2: relative (eps) <= 0.05 and below its midway value, 1 - cos(-grad L, theta) "
             "<= 1e-3, angle to the IPOPT KKT point started there < 0.05 rad")
    if missing("lexmargin.numeric", "lexmargin.problems.maxmargin"):
        return not_available("theorems23_homogeneous", claim,
                             f"missing {missing('lexmargin.numeric', 'lexmargin.problems.maxmargin')}")
    from lexmargin.problems.maxmargin import max_margin
    from lexmargin.numeric import Constant

    data = separable_data(20, 2, seed=cfg.seed)
    model = lexmargin.load_model("deep_linear", input_dim=2, depth=2, width=2)
    steps = 10_000 if cfg.quick else 100_000
    history = gd_history(model, data, model.random_params(cfg.seed), steps, Constant(0.1))
    cert = max_margin(model, data, init=history.theta[0] / np.linalg.norm(history.theta[0]))
    full = stationarity_report(model, data, history, certificate=cert, support_tol=0.1)
    midway = stationarity_report(model, data, _midway(history), support_tol=0.1)
    files = full.save(cfg.out_dir / "theorems23_report")
    angle = full.comparison.angle
    passed = bool(full.kkt.relative_epsilon <= 0.05 and full.kkt.relative_epsilon < midway.kkt.relative_epsilon
                  and 1 - full.alignment <= 1e-3 and angle < 0.05)
    numbers = {"steps": steps, "relative_eps": full.kkt.relative_epsilon, "relative_eps_midway":
               midway.kkt.relative_epsilon, "delta": full.kkt.delta, "one_minus_alignment": 1 - full.alignment,
               "angle_to_kkt_certificate": angle, "normalized_margin": full.normalized_margin,
               "certificate_normalized_margin": cert.normalized_margin,
               "multiplier_relative_error": full.comparison.multiplier_relative_error}
    return CheckResult("theorems23_homogeneous", claim, passed, numbers,
                       tuple(v for v in files.values() if v.endswith(".png")))


def _midway(history) -> np.ndarray:
    """The checkpoint halfway (in log steps) through a numeric History."""
    k = len(history.steps) // 2
    return history.direction[k, 0] * history.norm[k, 0]


def _diagonal_model():
    """f = y <u * u, x>: degree 2, max-margin = l1 max-margin over beta = u^2 >= 0 (not unique below)."""
    from lexmargin import Block, Model, ops

    return Model("diagonal_square", [Block.array("u", 2, degree=2)], input_dim=2,
                 output=lambda p, x: ops.dot(p["u"] * p["u"], x), description="f = y <u*u, x>")


def check_theorem4_lexicographic(cfg: SuiteConfig) -> CheckResult:
    """Theorem 4: a homogeneous model's constrained path tends to the lexicographic max-margin solution."""
    claim = ("f = y<u*u, x> on z = (1,1), (1,3), (2,1): every unit u has min margin 1 (max-margin not unique); "
             "the constrained path tends to the lexicographic solution u^2 = (2/3, 1/3) (distance shrinks >= 4x)")
    if missing("lexmargin.problems.paths", "lexmargin.problems.lexicographic"):
        return not_available("theorem4_lexicographic", claim,
                             f"missing {missing('lexmargin.problems.paths', 'lexmargin.problems.lexicographic')}")
    from lexmargin.problems.lexicographic import lexicographic_max_margin

    model, data = _diagonal_model(), lexmargin.Dataset(np.array([[1.0, 1.0], [1.0, 3.0], [2.0, 1.0]]), np.ones(3))
    lex = lexicographic_max_margin(model, data, max_stages=3, seed=cfg.seed)
    rhos = [1.0, 1.5, 2.0, 3.0, 4.0, 5.0]  # beyond rho ~ 6 exp(-rho^2 (f_(2) - f_(1))) underflows against 1
    path = constrained_path(model, data, rhos, seed=cfg.seed)
    dist = np.array([np.linalg.norm(t ** 2 - lex.theta ** 2) for t in path.thetas])
    predicted = np.log(2.0) / (3.0 * np.asarray(rhos) ** 2) * np.sqrt(2.0)
    plot = line_plot(cfg, "theorem4_lexicographic", rhos, {"||u(rho)^2 - u_lex^2||": dist,
                                                          "log 2 sqrt 2 / (3 rho^2) (analytic)": predicted},
                     "rho", "distance", "constrained path -> lexicographic max-margin")
    passed = bool(len(lex.stages) >= 2 and np.allclose(lex.theta ** 2, [2 / 3, 1 / 3], atol=1e-4)
                  and dist[-1] <= dist[2] / 4)
    return CheckResult("theorem4_lexicographic", claim, passed,
                       {"lex_u_squared": lex.theta ** 2, "lex_levels": lex.levels, "stages": len(lex.stages),
                        "rho": rhos, "distance": dist, "analytic_distance": predicted}, (plot,))


def _log_predictor_angles(eps: float, data, rhos, svm_direction, seed):
    model = lexmargin.load_model("log_predictor", input_dim=data.n_features, eps=eps)
    path = constrained_path(model, data, rhos, init=svm_direction, seed=seed)
    return np.array([angle_between(t, svm_direction) for t in path.thetas])


def check_log_vs_eps_log(cfg: SuiteConfig) -> CheckResult:
    """Log predictor vs (1+eps)-log predictor: only the latter's constrained path tends to the SVM."""
    claim = ("log predictor: constrained-path angle to the SVM constant in rho (spread < 1e-3) and > 1e-2; "
             "(1+eps)-log (eps = 1): angle decreases by >= 2x over rho in [1e1, 1e8]")
    if missing("lexmargin.problems.paths", "lexmargin.problems.maxmargin"):
        return not_available("log_vs_eps_log", claim, f"missing {missing('lexmargin.problems.paths', 'lexmargin.problems.maxmargin')}")
    data = separable_data(20, 2, seed=cfg.seed, gap=0.5)
    svm = svm_without_bias(data).direction
    rhos = list(10.0 ** np.arange(1, 9, 2.33 if cfg.quick else 1.0))
    log_angles = _log_predictor_angles(0.0, data, rhos, svm, cfg.seed)
    eps_angles = _log_predictor_angles(1.0, data, rhos, svm, cfg.seed)
    plot = line_plot(cfg, "log_vs_eps_log", rhos, {"log predictor": log_angles, "(1+eps)-log, eps = 1": eps_angles},
                     "rho", "angle to SVM (rad)", "log vs (1+eps)-log predictors")
    spread = float(np.max(log_angles) - np.min(log_angles))
    passed = bool(log_angles.min() > 1e-2 and spread < 1e-3 and eps_angles[-1] <= eps_angles[0] / 2)
    return CheckResult("log_vs_eps_log", claim, passed, {"rho": rhos, "log_angles": log_angles,
                                                         "eps_log_angles": eps_angles, "log_angle_spread": spread},
                       (plot,))


def _rescale_hidden_units(model, theta, factors):
    """Node rescaling of a two-layer net: v_j -> c_j v_j, a_j -> a_j / c_j (same function)."""
    p = model.unflatten(theta)
    return model.flatten({"V": p["V"] * factors[:, None], "a": p["a"] / factors})


def _final_margins(model, data, theta0, steps, path_sgd, seed):
    from lexmargin.numeric import Constant

    history = gd_history(model, data, theta0, steps, Constant(0.01), checkpoints=2, path_sgd=path_sgd, seed=seed)
    return model.margins(history.theta[0], data)


def check_path_sgd_invariance(cfg: SuiteConfig) -> CheckResult:
    """Path-SGD is invariant to node rescalings (Neyshabur et al. 2015); plain GD is not."""
    claim = ("two-layer ReLU net, hidden units rescaled by c in [1/4, 4]: Path-SGD margins agree to rel. 1e-8 "
             "after training, plain GD margins differ by > 1e-3")
    if missing("lexmargin.numeric"):
        return not_available("path_sgd_invariance", claim, "lexmargin.numeric is missing")
    data = separable_data(20, 2, seed=cfg.seed)
    model = lexmargin.load_model("two_layer", input_dim=2, activation="relu", width=4)
    theta0 = model.random_params(cfg.seed)
    factors = np.array([0.25, 0.5, 2.0, 4.0])
    theta1 = _rescale_hidden_units(model, theta0, factors)
    steps = 200 if cfg.quick else 2000
    diffs = {}
    for label, path_sgd in (("path_sgd", True), ("gd", False)):
        a = _final_margins(model, data, theta0, steps, path_sgd, cfg.seed)
        b = _final_margins(model, data, theta1, steps, path_sgd, cfg.seed)
        diffs[label] = float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300))
    passed = bool(diffs["path_sgd"] <= 1e-8 and diffs["gd"] > 1e-3)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.bar(list(diffs), [max(v, 1e-17) for v in diffs.values()], color=["C0", "C3"])
    ax.set(yscale="log", ylabel="max rel. margin difference", title=f"rescaled vs original init, {steps} steps")
    plot = save_figure(fig, cfg.plot_path("path_sgd_invariance"))
    return CheckResult("path_sgd_invariance", claim, passed, {"steps": steps, "factors": factors,
                                                              "relative_margin_difference": diffs}, (plot,))


def check_gd_rate(cfg: SuiteConfig) -> CheckResult:
    """GD on separable data converges to the L2 SVM direction at rate 1/log t (Soudry et al. 2018)."""
    claim = "angle(w(t), w_svm) ~ C / log t: 1/angle is affine in log t for t >= 100 (R^2 >= 0.97, slope > 0)"
    if missing("lexmargin.numeric", "lexmargin.problems.maxmargin"):
        return not_available("gd_rate", claim, f"missing {missing('lexmargin.numeric', 'lexmargin.problems.maxmargin')}")
    from lexmargin.numeric import Constant

    data = separable_data(30, 2, seed=cfg.seed)
    svm = svm_without_bias(data)
    model = lexmargin.load_model("linear", input_dim=2)
    steps = 30_000 if cfg.quick else 1_000_000
    lr = 1.0 / np.linalg.norm(data.X, 2) ** 2
    history = gd_history(model, data, np.zeros(2), steps, Constant(lr), checkpoints=30)
    its = history.steps.astype(float)
    keep = its >= 100
    angles = np.array([angle_between(d, svm.theta) for d in history.direction[:, 0]])[keep]
    its = its[keep]
    slope, intercept = np.polyfit(np.log(its), 1 / angles, 1)
    residual = 1 / angles - (slope * np.log(its) + intercept)
    r2 = 1 - np.sum(residual ** 2) / np.sum((1 / angles - np.mean(1 / angles)) ** 2)
    plot = line_plot(cfg, "gd_rate", its, {"angle to SVM": angles, "fit 1/(a log t + b)":
                                           1 / (slope * np.log(its) + intercept)},
                     "iteration t", "angle (rad)", f"GD direction error, R^2 = {r2:.4f}")
    passed = bool(slope > 0 and r2 >= 0.97)
    return CheckResult("gd_rate", claim, passed, {"steps": steps, "lr": lr, "iterations": its, "angles": angles,
                                                  "slope": float(slope), "intercept": float(intercept),
                                                  "r2": float(r2)}, (plot,))


CHECKS = (check_lemma3_bound, check_theorem1_shallow_discarded, check_svm_bias, check_theorems23_homogeneous,
          check_theorem4_lexicographic, check_log_vs_eps_log, check_path_sgd_invariance, check_gd_rate)


# ---- the suite ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SuiteResult:
    name: str
    quick: bool
    checks: tuple[CheckResult, ...]
    seconds: float
    environment: dict
    out_dir: str = "."

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.checks)

    @property
    def all_available_passed(self) -> bool:
        return all(c.status in (PASSED, NOT_AVAILABLE) for c in self.checks)

    def to_dict(self) -> dict:
        return {"suite": self.name, "quick": self.quick, "seconds": self.seconds, "environment": self.environment,
                "summary": {s: self.count(s) for s in (PASSED, "failed", NOT_AVAILABLE, ERROR)},
                "checks": [c.to_dict() for c in self.checks]}

    def to_markdown(self) -> str:
        rows = [(c.name, c.status, c.claim, f"{c.seconds:.1f}", c.note or "") for c in self.checks]
        summary = ", ".join(f"{self.count(s)} {s}" for s in (PASSED, "failed", NOT_AVAILABLE, ERROR))
        lines = [f"# Paper suite{' (quick)' if self.quick else ''}", "",
                 f"{summary}; {self.seconds:.1f} s on {self.environment.get('cpus')} CPUs.", "",
                 markdown_table(("check", "status", "claim", "seconds", "note"), rows), ""]
        for check in self.checks:
            lines += self._check_section(check)
        return "\n".join(lines) + "\n"

    def _check_section(self, check: CheckResult) -> list[str]:
        """Scalar numbers (lists stay in the JSON) and plots of one check."""
        scalars = [(k, v) for k, v in _flat_scalars(check.numbers)]
        lines = [f"## {check.name}: {check.status}", ""]
        if scalars:
            lines += [markdown_table(("number", "value"), scalars), ""]
        lines += [f"![{check.name}]({os.path.relpath(p, self.out_dir)})" for p in check.plots]
        return lines + [""]


def _flat_scalars(numbers: dict, prefix: str = ""):
    """(name, value) pairs: scalars, short strings and short numeric lists (joined); long lists stay in JSON."""
    for key, value in numbers.items():
        if isinstance(value, dict):
            yield from _flat_scalars(value, f"{prefix}{key}.")
        elif isinstance(value, str):
            if len(value) < 60:
                yield f"{prefix}{key}", value
        elif np.ndim(value) == 0:
            yield f"{prefix}{key}", value.item() if isinstance(value, np.generic) else value
        elif np.size(value) <= 8 and np.asarray(value).dtype.kind in "biuf":
            yield f"{prefix}{key}", ", ".join(fmt(float(v)) for v in np.ravel(value))


def run_paper_suite(out_dir="paper_suite_results", quick: bool = False, progress: bool = True, only=None,
                    seed: int = 0) -> SuiteResult:
    """Run every check (or those named in ``only``), write report.json, report.md and plots into out_dir."""
    from tqdm.auto import tqdm

    cfg = SuiteConfig(Path(out_dir), quick, seed)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    checks = select(CHECKS, only, "check_")
    start, results = time.perf_counter(), []
    bar = tqdm(checks, desc="paper suite", disable=not progress, unit="check")
    for check in bar:
        bar.set_postfix_str(check.__name__.removeprefix("check_"))
        results.append(run_check(check, cfg=cfg))
    suite = SuiteResult("paper", quick, tuple(results), time.perf_counter() - start, environment(), str(cfg.out_dir))
    write_outputs(cfg.out_dir, "report", suite.to_dict(), suite.to_markdown())
    return suite


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="paper_suite_results")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    suite = run_paper_suite(args.out, args.quick)
    print(suite.to_markdown())
    return 0 if suite.all_available_passed else 1


if __name__ == "__main__":
    sys.exit(main())
