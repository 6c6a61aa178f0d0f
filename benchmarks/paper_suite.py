"""Paper suite: each claim of the implicit-bias papers checked numerically, with pass/fail and a plot.

    python -m lexmargin suite paper [--quick] [--out DIR] [--seed S] [--format png pdf svg]
    python benchmarks/paper_suite.py [--quick] [--out DIR] [--seed S] [--format png pdf svg]

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
* gd_rate (Soudry et al. 2018): GD on a linear model follows w(t) = w_hat log t + rho(t) with rho(t) -> w_tilde
  (both from the SVM certificate), so its direction converges to the SVM's like 1/log t;
* multiclass_gd_rate (Soudry et al. 2018, the multi-class exponential loss): the same on the margin rows
  (e_{y_n} - e_k) kron x_n of a linear K-output model, with W_hat the Crammer-Singer certificate; angle ~ C / log t
  fitted;
* geometry (Gunasekar et al. 2018): steepest descent in l1 (coordinate descent), linf (sign descent) and lp
  converges in direction to the max-margin solution in that norm, max_margin(norm=...)'s certificate; angle and
  margin gap over time, with the gap's fitted log-log rate (docs/numeric_geometry.md);
* path_sgd_limits: GD's and Path-SGD's limits on a two-layer ReLU net meet, in their own geometry, the l2 and the
  path-norm max-margin certificates computed from each limit (docs/path_norm.md);
* sgd_limit (Nacson, Srebro & Soudry 2019): SGD with replacement converges in direction to the SVM like GD.

Every check draws one figure (PNG at 200 dpi, and PDF / SVG on request) with each bound it claims as a
labelled line: log N in Lemma 3, the 4x decrease of Theorem 1, the tolerances of the others.  ``seed``
draws the data and starts of every check (the claims are verified at seed 0 by the tests; other seeds
draw other data).
"""

from __future__ import annotations

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
    environment_line,
    fmt,
    line_plot,
    markdown_table,
    multiclass_separable_data,
    not_available,
    optional_module,
    run_check,
    select,
    separable_data,
    suite_main,
    write_outputs,
)

import lexmargin
from lexmargin.report import angle_between, figures, stationarity_report
from lexmargin.report.schema import header


@dataclass(frozen=True)
class SuiteConfig:
    """Where and how the checks run: output folder, sizes, the seed of their data, figure formats."""

    out_dir: Path
    quick: bool = False
    seed: int = 0
    formats: tuple[str, ...] = ("png",)

    def plot_path(self, name: str) -> Path:
        """The stem (no suffix) of a check's figure; ``save_figure`` adds one suffix per format."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self.out_dir / name


# ---- shared numerical helpers -------------------------------------------------------------------
def constrained_path(model, data, rhos, **options):
    """lexmargin.problems.paths.constrained_path (theta on the unit ball, theta(B) = rho * theta)."""
    return optional_module("lexmargin.problems.paths").constrained_path(model, data, rhos, **options)


def svm_without_bias(data):
    """Certificate of the hard-margin SVM through the origin (max_margin on the linear model); its status is
    ``not_separable`` (with a Farkas proof) when no hyperplane through the origin separates the data."""
    from lexmargin.problems.maxmargin import max_margin

    return max_margin(lexmargin.load_model("linear", input_dim=data.n_features), data, raise_on_failure=False)


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
    numbers, passed, series, normalized, log_n = {}, True, [], [], float(np.log(data.n_samples))
    for name, opts, rhos in specs:
        model = lexmargin.load_model(name, input_dim=2, **opts)
        path = constrained_path(model, data, rhos, seed=cfg.seed)
        gaps = path.lemma3_gaps
        normalized_gap = gaps / np.asarray(rhos) ** model.degree
        ok = all(p.lemma3_holds for p in path.points) and normalized_gap[-1] < normalized_gap[0]
        passed &= ok
        numbers[model.name] = {"rho": rhos, "gap": gaps, "normalized_gap": normalized_gap, "bound_log_N": log_n,
                               "passed": ok}
        series.append((rf"{model.name}: $\gamma^*(\rho) - \gamma(\rho)$", rhos, gaps))
        normalized.append((model.name, model.degree, rhos, normalized_gap))
    plot = line_plot(cfg.plot_path("lemma3_bound"), cfg.formats, series, xlabel=r"$\rho$",
                     ylabel=r"$\gamma^*(\rho) - \min_n f_n(\rho\,\theta_c(\rho))$",
                     title=rf"Lemma 3: margin-path gap $\leq \log N$ ($N = {data.n_samples}$)",
                     bounds=[(log_n, rf"$\log N = {log_n:.4g}$ (Lemma 3 bound)")],
                     panel=lambda fig, ax: _normalized_gap_panel(ax, normalized, log_n))
    return CheckResult("lemma3_bound", claim, bool(passed), numbers, tuple(plot))


def _normalized_gap_panel(ax, normalized, log_n) -> None:
    """Right panel of Lemma 3: (gamma* - gamma) / rho^alpha and its bound log N / rho^alpha, per model."""
    xs = []
    for k, (name, degree, rhos, gap) in enumerate(normalized):
        rhos = np.asarray(rhos, dtype=float)
        keep = gap > 0
        power = r"\rho" if degree == 1 else rf"\rho^{{{degree:g}}}"
        figures.plot_series(ax, rhos[keep], gap[keep], rf"{name}: gap $/\, {power}$", k)
        ax.plot(rhos, log_n / rhos ** degree, color="0.25", linestyle=figures.series_style(k)["linestyle"],
                linewidth=1.0, label=rf"{name}: $\log N /\, {power}$ (bound)", zorder=2)
        xs.append(rhos)
    ax.set(xscale="log", yscale="log", xlabel=r"$\rho$", ylabel=r"normalized gap $(\gamma^* - \gamma) / \rho^\alpha$",
           title="normalized-margin gap shrinks")
    figures.log_ticks(ax, max(xs, key=lambda v: np.ptp(np.log(v))))
    figures.legend(ax)


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
    plot = line_plot(cfg.plot_path("theorem1_shallow_discarded"), cfg.formats,
                     [(r"$\|\theta_{\mathrm{depth}\,1}\| \,/\, \|\theta\|$", rhos, ratio)], xlabel=r"$\rho$",
                     ylabel="fraction of the norm in depth 1",
                     title="Theorem 1: the shallow sub-model is discarded",
                     bounds=[(ratio[0] / 4, rf"claimed: last $\leq$ first / 4 $= {ratio[0] / 4:.3g}$")])
    passed = bool(np.all(np.diff(ratio) < 0) and ratio[-1] <= ratio[0] / 4 and "depth1" in solution.discarded)
    return CheckResult("theorem1_shallow_discarded", claim, passed,
                       {"rho": rhos, "shallow_fraction": ratio, "shallow_norm_times_rho": ratio * np.asarray(rhos),
                        "depth_sensitive_discarded": list(solution.discarded),
                        "depth_sensitive_block_squared_norms": solution.block_squared_norms}, tuple(plot))


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
    origin = svm_without_bias(data)
    # no SVM through the origin (a Farkas proof): the SVM with bias differs from it by definition (angle pi)
    separation = angle_between(origin.theta, w_svm) if origin.success else float(np.pi)
    versus = "" if peer_angle is None else "\n" + rf"lexmargin vs cvxpy: {peer_angle:.1e} rad (claimed $< 10^{{-6}}$)"
    plot = line_plot(cfg.plot_path("svm_bias"), cfg.formats,
                     [(r"$\angle(w(\rho), w_{\mathrm{SVM+b}})$", rhos, angles),
                      (r"$\angle(w_{\mathrm{SVM,0}}, w_{\mathrm{SVM+b}})$ (SVM through the origin"
                       + ("" if origin.success else r": none, $\pi$ drawn") + ")", rhos,
                       np.full(len(rhos), separation))],
                     xlabel=r"$\rho$", ylabel="angle (rad)", title="SVM with an unregularized bias" + versus,
                     bounds=[(1e-2, r"claimed: last angle $< 10^{-2}$"),
                             (0.05, r"claimed: through-origin angle $> 0.05$")])
    passed = bool(angles[-1] < 1e-2 and angles[-1] < angles[0] and separation > 0.05
                  and (peer_angle is None or peer_angle < 1e-6))
    return CheckResult("svm_bias", claim, passed, {"rho": rhos, "angles": angles, "svm_w": w_svm, "svm_b": b_svm,
                                                   "angle_depth_vs_cvxpy": peer_angle,
                                                   "angle_svm_bias_vs_origin": separation,
                                                   "origin_svm_status": origin.status.value}, tuple(plot),
                       note="" if peer is not None else "cvxpy missing: no peer comparison")


def check_theorems23_homogeneous(cfg: SuiteConfig) -> CheckResult:
    """Theorems 2-3: GD on a homogeneous net nears a KKT point, and -grad L aligns with theta."""
    claim = ("GD on deep_linear L=2: relative (eps) <= 0.05 and below its midway value, 1 - cos(-grad L, theta) "
             "<= 1e-3, angle to the IPOPT KKT point started there < 0.05 rad")
    if missing("lexmargin.numeric", "lexmargin.problems.maxmargin"):
        return not_available("theorems23_homogeneous", claim,
                             f"missing {missing('lexmargin.numeric', 'lexmargin.problems.maxmargin')}")
    from lexmargin.numeric import Constant
    from lexmargin.problems.maxmargin import max_margin

    data = separable_data(20, 2, seed=cfg.seed)
    model = lexmargin.load_model("deep_linear", input_dim=2, depth=2, width=2)
    steps = 10_000 if cfg.quick else 100_000
    history = gd_history(model, data, model.random_params(cfg.seed), steps, Constant(0.1))
    cert = max_margin(model, data, init=history.theta[0] / np.linalg.norm(history.theta[0]))
    full = stationarity_report(model, data, history, certificate=cert, support_tol=0.1)
    midway = stationarity_report(model, data, _midway(history), support_tol=0.1)
    files = full.save(cfg.out_dir / "theorems23_report", formats=cfg.formats)
    angle = full.comparison.angle
    plot = _theorems23_plot(cfg, model, data, history, full, midway)
    passed = bool(full.kkt.relative_epsilon <= 0.05 and full.kkt.relative_epsilon < midway.kkt.relative_epsilon
                  and 1 - full.alignment <= 1e-3 and angle < 0.05)
    numbers = {"steps": steps, "relative_eps": full.kkt.relative_epsilon, "relative_eps_midway":
               midway.kkt.relative_epsilon, "delta": full.kkt.delta, "one_minus_alignment": 1 - full.alignment,
               "angle_to_kkt_certificate": angle, "normalized_margin": full.normalized_margin,
               "certificate_normalized_margin": cert.normalized_margin,
               "multiplier_relative_error": full.comparison.multiplier_relative_error}
    report_figures = [str(Path(files[name]).with_suffix(f".{fmt}")) for name in ("multipliers", "margin", "angle")
                      if name in files for fmt in cfg.formats]
    return CheckResult("theorems23_homogeneous", claim, passed, numbers, tuple(plot + report_figures))


def _theorems23_plot(cfg, model, data, history, full, midway) -> list[str]:
    """Relative eps at every checkpoint (bound 0.05, the midway value marked); angle and misalignment."""
    from lexmargin.report import as_theta_source
    from lexmargin.report.stationarity import stationarity

    source = as_theta_source(history)
    keep = source.iterations > 0
    its = source.iterations[keep]
    eps = np.array([stationarity(model, t, data, support_tol=0.1).kkt.relative_epsilon for t in source.thetas[keep]])
    t = full.trajectory

    def right(fig, ax):
        pos = t.iterations > 0
        figures.plot_series(ax, t.iterations[pos], t.angles[pos], r"$\angle(\theta(t), \theta_{\mathrm{KKT}})$", 0)
        figures.plot_series(ax, t.iterations[pos], 1.0 - t.alignment[pos], r"$1 - \cos(-\nabla L, \theta)$", 1)
        figures.draw_bound(ax, 0.05, r"claimed: final angle $< 0.05$")
        figures.draw_bound(ax, 1e-3, r"claimed: final $1 - \cos \leq 10^{-3}$", linestyle=":")
        ax.set(xscale="log", yscale="log", xlabel=r"iteration $t$", ylabel="angle (rad) / misalignment",
               title="Theorem 3: alignment; distance to the KKT point")
        figures.log_ticks(ax, t.iterations[pos])
        figures.legend(ax)

    midway_step = _midway_step(history)
    plot = line_plot(cfg.plot_path("theorems23_homogeneous"), cfg.formats,
                     [(r"relative $\varepsilon$ (Lyu & Li $(\varepsilon, \delta)$-KKT)", its, eps),
                      (rf"midway ($t = {midway_step:g}$): {midway.kkt.relative_epsilon:.3g}", [midway_step],
                       [midway.kkt.relative_epsilon])],
                     xlabel=r"iteration $t$", ylabel=r"relative $\varepsilon$",
                     title="Theorem 2: GD nears a KKT point",
                     bounds=[(0.05, r"claimed: final relative $\varepsilon \leq 0.05$")], panel=right)
    return plot


def _midway_step(history) -> float:
    return float(history.steps[len(history.steps) // 2])


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
    plot = line_plot(cfg.plot_path("theorem4_lexicographic"), cfg.formats,
                     [(r"$\|u(\rho)^2 - u_{\mathrm{lex}}^2\|$ (numeric)", rhos, dist),
                      (r"$\sqrt{2}\,\log 2 / (3\rho^2)$ (analytic)", rhos, predicted)],
                     xlabel=r"$\rho$", ylabel="distance to the lexicographic solution",
                     title="Theorem 4: constrained path $\\to$ lexicographic max-margin",
                     bounds=[(dist[2] / 4, rf"claimed: last $\leq d(\rho = {rhos[2]:g}) / 4$")])
    passed = bool(len(lex.stages) >= 2 and np.allclose(lex.theta ** 2, [2 / 3, 1 / 3], atol=1e-4)
                  and dist[-1] <= dist[2] / 4)
    return CheckResult("theorem4_lexicographic", claim, passed,
                       {"lex_u_squared": lex.theta ** 2, "lex_levels": lex.levels, "stages": len(lex.stages),
                        "rho": rhos, "distance": dist, "analytic_distance": predicted}, tuple(plot))


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
    spread = float(np.max(log_angles) - np.min(log_angles))
    plot = line_plot(cfg.plot_path("log_vs_eps_log"), cfg.formats,
                     [(rf"log predictor (spread {spread:.1e}, claimed $< 10^{{-3}}$)", rhos, log_angles),
                      (r"$(1+\varepsilon)$-log predictor, $\varepsilon = 1$", rhos, eps_angles)],
                     xlabel=r"$\rho$", ylabel=r"$\angle(\theta(\rho), w_{\mathrm{SVM}})$ (rad)",
                     title=r"log vs $(1+\varepsilon)$-log predictors",
                     bounds=[(1e-2, r"claimed: log-predictor angle $> 10^{-2}$"),
                             (eps_angles[0] / 2, r"claimed: last $(1+\varepsilon)$-log angle $\leq$ first / 2")])
    passed = bool(log_angles.min() > 1e-2 and spread < 1e-3 and eps_angles[-1] <= eps_angles[0] / 2)
    return CheckResult("log_vs_eps_log", claim, passed, {"rho": rhos, "log_angles": log_angles,
                                                         "eps_log_angles": eps_angles, "log_angle_spread": spread},
                       tuple(plot))


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
    plot = _path_sgd_plot(cfg, diffs, steps)
    return CheckResult("path_sgd_invariance", claim, passed, {"steps": steps, "factors": factors,
                                                              "relative_margin_difference": diffs}, tuple(plot))


def _path_sgd_plot(cfg, diffs: dict, steps: int) -> list[str]:
    """Bars of the two relative differences (a zero drawn at the floor and labelled 0), both bounds drawn."""
    floor = 1e-17
    with figures.style():
        fig, ax = figures.new_figure()
        labels = {"path_sgd": "Path-SGD", "gd": "plain GD"}
        values = [diffs[k] for k in labels]
        bars = ax.bar(list(labels.values()), [max(v, floor) for v in values], color=["C0", "C3"],
                      hatch=["", "//"], edgecolor="k", zorder=3)
        for bar, value in zip(bars, values):
            ax.annotate("0 (exact)" if value == 0 else f"{value:.2g}", (bar.get_x() + bar.get_width() / 2,
                        bar.get_height()), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
        figures.draw_bound(ax, 1e-8, r"claimed: Path-SGD $\leq 10^{-8}$")
        figures.draw_bound(ax, 1e-3, r"claimed: GD $> 10^{-3}$", linestyle=":")
        ax.set(yscale="log", ylim=(floor / 10, 10.0), ylabel=r"$\max_n |f_n - f_n'| \,/\, \max_n |f_n|$",
               title=f"node rescaling by $c \\in [1/4, 4]$, {steps} steps")
        ax.grid(axis="x", visible=False)
        figures.legend(ax, loc="center left")
        return figures.save_figure(fig, cfg.plot_path("path_sgd_invariance"), cfg.formats)


# ---- where Path-SGD's and GD's limits land (issue 15) ------------------------------------------------
PATH_LIMIT_RUNS = 4               # random starts per algorithm (batched), N(0, 1/P) entries scaled by 1/2
PATH_LIMIT_ETA = 0.01             # normalized steps eta * grad log L (Path-SGD: divided by kappa_e)
PATH_LIMIT_MAX_GAP = 0.03         # 1 - own-geometry margin / the certificate computed from the run's own limit
PATH_LIMIT_MIN_RUNS = 2           # runs that must separate the data (the claims are over those)


def path_limit_runs(model, data, theta0, steps: int, path_sgd: bool, seed: int = 0) -> dict:
    """R runs of GD or Path-SGD (normalized steps PATH_LIMIT_ETA) from ``theta0`` (R, P), each limit measured
    against the two certificates computed from it: ``max_margin(model, data, init=balanced limit)`` (l2; the
    balanced point of the orbit is the l2-nearest start) and ``path_max_margin(model, data, init=limit)`` (the
    path norm, gauge fixed).  Both are Clarke-KKT points near the limit, the ones a nonconvex problem's limit can
    be compared with (not global maxima).

    Returns:
        {"separated", "l2_ratio", "balanced_l2_ratio", "path_ratio", "l2_angle" (theta space, balanced limit vs the
        l2 certificate), "path_angle" (path space w), "own_gap" series (K, R) against the own-geometry certificate
        (l2 for GD, path for Path-SGD; NaN where a run does not separate), "own_gap_slope" (fitted over the last
        decade of steps), "iterations", "certificate_status", "seconds"}.
    """
    from lexmargin.nlp.norms import PathNorm
    from lexmargin.numeric import Normalized, angle, kernel_for, train
    from lexmargin.problems.maxmargin import max_margin
    from lexmargin.problems.pathnorm import path_max_margin

    norm = PathNorm().bind(model)
    started = time.perf_counter()
    hist = train(kernel_for(model, data.X, data.y), theta0, rule=Normalized(PATH_LIMIT_ETA), n_steps=steps,
                 checkpoints=24, path_sgd=path_sgd, seed=seed)
    R = theta0.shape[0]
    out = {k: np.full(R, np.nan) for k in ("l2_ratio", "balanced_l2_ratio", "path_ratio", "l2_angle", "path_angle",
                                             "own_gap_slope", "cross_ratio")}
    out["separated"] = np.zeros(R, bool)
    out["certificate_status"] = [["", ""] for _ in range(R)]
    its = hist.steps[1:]
    gaps = np.full((its.size, R), np.nan)
    own = "path" if path_sgd else "l2"
    for r in range(R):
        theta = hist.theta[r]
        if not np.all(np.isfinite(theta)) or np.min(model.margins(theta / np.linalg.norm(theta), data)) <= 0:
            continue
        out["separated"][r] = True
        balanced = norm.balance(theta / np.linalg.norm(theta))
        c2 = max_margin(model, data, init=balanced, raise_on_failure=False)
        cp = path_max_margin(model, data, init=theta / np.linalg.norm(theta), raise_on_failure=False).certificate
        out["certificate_status"][r] = [c2.status.value, cp.status.value]
        if not (c2.success and cp.success):
            continue
        m = _margins_of(model, norm, data, theta)
        out["l2_ratio"][r] = m["l2"] / c2.normalized_margin
        out["balanced_l2_ratio"][r] = m["balanced_l2"] / c2.normalized_margin
        out["path_ratio"][r] = m["path"] / cp.normalized_margin
        out["l2_angle"][r] = float(angle(balanced, c2.theta))
        out["path_angle"][r] = float(angle(norm.paths(theta / np.linalg.norm(theta)).ravel(), norm.paths(cp.theta).ravel()))
        reference = cp.normalized_margin if path_sgd else c2.normalized_margin
        gaps[:, r] = [1.0 - _margins_of(model, norm, data, d)[own] / reference for d in hist.direction[1:, r]]
        late = its >= steps / 10
        out["own_gap_slope"][r] = _loglog_slope(its[late], gaps[late, r])
        # the other geometry's certificate: GD's path margin, Path-SGD's (balanced) l2 margin
        out["cross_ratio"][r] = out["balanced_l2_ratio"][r] if path_sgd else out["path_ratio"][r]
    out.update(own_gap=gaps, iterations=its, seconds=time.perf_counter() - started)
    return out


def _margins_of(model, norm, data, theta) -> dict:
    theta = np.asarray(theta, dtype=float) / np.linalg.norm(theta)
    low = float(np.min(model.margins(theta, data)))
    W = norm.paths(theta)
    return {"l2": low / float(theta @ theta), "balanced_l2": low / (2.0 * float(np.sum(np.linalg.norm(W, axis=1)))),
            "path": low / float(np.linalg.norm(W))}


def path_limit_starts(model, seed: int) -> np.ndarray:
    """PATH_LIMIT_RUNS random starts (``random_params(1000 seed + r, scale=0.5)``) with output weights of alternating
    signs a_j = (-1)^j |a_j| (half the units vote for each class): a start whose a_j all share a sign cannot
    separate two classes, and neither algorithm flips a sign once the other class's samples are off for every
    unit (measured: 3 of 4 Path-SGD runs of unsigned starts stalled at log L = log 10 on seed 8)."""
    from lexmargin.nlp.norms import PathNorm

    norm = PathNorm().bind(model)
    starts = []
    for r in range(PATH_LIMIT_RUNS):
        V, a = norm.split(model.random_params(1000 * seed + r, scale=0.5))
        starts.append(norm.join(V, np.abs(a) * (-1.0) ** np.arange(a.size)))
    return np.stack(starts)


def check_path_sgd_limits(cfg: SuiteConfig) -> CheckResult:
    """Where GD's and Path-SGD's limits land on a two-layer ReLU net: l2 vs path-norm max-margin certificates."""
    claim = (f"two-layer ReLU net (width 4) on separable data, {PATH_LIMIT_RUNS} random starts with output weights of "
             f"alternating signs, normalized steps "
             f"eta = {PATH_LIMIT_ETA:g}: each run that separates the data (at least {PATH_LIMIT_MIN_RUNS} per "
             "algorithm), in the median over them, ends within "
             f"{PATH_LIMIT_MAX_GAP:g} of a certificate computed from its own limit in its own geometry: GD's l2 "
             "margin >= (1 - gap) x max_margin(init=limit)'s (a Clarke-KKT point of min ||theta||^2, Lyu & Li 2020), "
             "Path-SGD's path-norm margin >= (1 - gap) x path_max_margin(init=limit)'s (min sum_j a_j^2 ||v_j||^2, "
             "gauge fixed); both certificates optimal.  Reported, not claimed: the other geometry's ratio (GD's "
             "path-norm margin, Path-SGD's balanced l2 margin), angles (theta space for l2, path space w_j = a_j v_j "
             "for the path norm), the gap's fitted log-log slope over the last decade")
    if missing("lexmargin.numeric", "lexmargin.problems.pathnorm"):
        return not_available("path_sgd_limits", claim,
                             f"missing {missing('lexmargin.numeric', 'lexmargin.problems.pathnorm')}")
    data = separable_data(20, 2, seed=cfg.seed)
    model = lexmargin.load_model("two_layer", input_dim=2, activation="relu", width=4)
    theta0 = path_limit_starts(model, cfg.seed)
    steps = 10_000 if cfg.quick else 100_000
    rows, passed = {}, True
    for label, path_sgd in (("gd", False), ("path_sgd", True)):
        row = path_limit_runs(model, data, theta0, steps, path_sgd, cfg.seed)
        ratio = row["path_ratio" if path_sgd else "l2_ratio"]
        sep = row["separated"]
        ok = bool(sep.sum() >= PATH_LIMIT_MIN_RUNS and np.median(ratio[sep]) >= 1.0 - PATH_LIMIT_MAX_GAP
                  and all(row["certificate_status"][r] == ["optimal", "optimal"] for r in np.nonzero(sep)[0]))
        row["passed"] = ok
        passed &= ok
        rows[label] = row
    series = [(f"{'GD, l2' if k == 'gd' else 'Path-SGD, path norm'} (run {r})", rows[k]["iterations"],
               rows[k]["own_gap"][:, r]) for k in rows for r in np.nonzero(rows[k]["separated"])[0]]
    plot = line_plot(cfg.plot_path("path_sgd_limits"), cfg.formats, series, xlabel=r"iteration $t$",
                     ylabel=r"$1 - \gamma(\theta_t) / \gamma^*_{\mathrm{own}}$",
                     title="gap to the certificate from the run's own limit",
                     bounds=[(PATH_LIMIT_MAX_GAP, rf"claimed: gap $\leq$ {PATH_LIMIT_MAX_GAP:g} at $t = {steps}$")])
    return CheckResult("path_sgd_limits", claim, bool(passed),
                       {"steps": steps, "runs": PATH_LIMIT_RUNS, "eta": PATH_LIMIT_ETA, "algorithms": rows},
                       tuple(plot))


# ---- SGD with replacement (Nacson, Srebro & Soudry 2019) ------------------------------------------------------
SGD_RUNS = 4                      # independent sample sequences
SGD_STEP_FRACTION = 2.0           # eta = c / (N max_n ||a_n||^2): the minibatch loss is (N / B) sum over the batch
SGD_MAX_ANGLE = 0.2               # radians to the SVM certificate at the last step (the rate is 1 / log t)
SGD_GD_FACTOR = 1.25              # SGD's final angle / GD's, either way


def check_sgd_limit(cfg: SuiteConfig) -> CheckResult:
    """SGD with replacement (one sample per step, drawn independently every step) on linear separable data
    converges in direction to the SVM (Nacson, Srebro & Soudry, AISTATS 2019), like GD, at a 1 / log t rate."""
    claim = (f"SGD with replacement (batch 1, each step's sample drawn uniformly and independently, constant step "
             f"{SGD_STEP_FRACTION:g} / (N max_n ||a_n||^2)) from 0, {SGD_RUNS} sample sequences on linear separable data: "
             f"every run's angle to the l2 max-margin certificate (the SVM) is <= {SGD_MAX_ANGLE:g} rad at the last "
             "step, has fallen over the last decade (fitted log-log slope < 0), and is within a factor "
             f"{SGD_GD_FACTOR:g} of full-batch GD's with the same expected step (the same limit at the same 1 / log t "
             "rate); reported: the fit angle ~ C / log t, the margin gaps, the angles to the l1 and linf certificates "
             "(at 10^4 steps not yet smaller than to l2's at every seed: the 1 / log t rate)")
    if missing("lexmargin.numeric", "lexmargin.problems.maxmargin"):
        return not_available("sgd_limit", claim, f"missing {missing('lexmargin.numeric', 'lexmargin.problems.maxmargin')}")
    from lexmargin.numeric import Constant, LinearKernel, Reference, angle, train
    from lexmargin.problems.maxmargin import max_margin

    n, d = 30, 8
    data = separable_data(n, d, seed=cfg.seed)
    model = lexmargin.load_model("linear", input_dim=d)
    certs = {norm: max_margin(model, data, norm=norm) for norm in ("l2", "l1", "linf")}
    A = data.y[:, None] * data.X
    eta = SGD_STEP_FRACTION / (n * float(np.max(np.sum(A * A, axis=1))))
    steps = 10_000 if cfg.quick else 100_000
    reference = Reference.from_certificate(certs["l2"])
    sgd = train(LinearKernel(data.X, data.y), np.zeros((SGD_RUNS, d)), rule=Constant(eta), n_steps=steps,
                checkpoints=30, batch_size=1, seed=cfg.seed, reference=reference)
    gd = train(LinearKernel(data.X, data.y), np.zeros((1, d)), rule=Constant(eta), n_steps=steps, checkpoints=30,
               reference=reference, store_direction=False)
    its, ang = sgd.steps[1:], sgd.angle[1:]
    late = its >= steps / 10
    slopes = np.array([_loglog_slope(its[late], ang[late, r]) for r in range(SGD_RUNS)])
    other = {norm: angle(sgd.theta, certs[norm].theta) for norm in ("l1", "linf")}
    final = ang[-1]
    # angle ~ C / log t: C fitted over the last decade, by least squares of angle against 1 / log t
    x = 1.0 / np.log(its[late].astype(float))
    rate_c = [float(np.dot(x, ang[late, r]) / np.dot(x, x)) for r in range(SGD_RUNS)]
    to_gd = final / float(gd.angle[-1, 0])
    passed = bool(np.all(final <= SGD_MAX_ANGLE) and np.all(slopes < 0)
                  and np.all((to_gd <= SGD_GD_FACTOR) & (to_gd >= 1.0 / SGD_GD_FACTOR)))
    series = [(f"SGD, sequence {r}", its, ang[:, r]) for r in range(SGD_RUNS)] + [("GD (full batch)", its, gd.angle[1:, 0])]
    plot = line_plot(cfg.plot_path("sgd_limit"), cfg.formats, series, xlabel=r"iteration $t$",
                     ylabel=r"$\angle(\theta_t, \theta^*_{\ell_2})$ (rad)",
                     title=rf"SGD with replacement, batch 1, $\eta = {SGD_STEP_FRACTION:g} / (N \max_n \|a_n\|^2)$",
                     bounds=[(SGD_MAX_ANGLE, rf"claimed: angle $\leq$ {SGD_MAX_ANGLE:g}")])
    return CheckResult("sgd_limit", claim, passed,
                       {"steps": steps, "n": n, "d": d, "eta": eta, "final_angle": final,
                        "final_gap": 1.0 - sgd.margin_ratio[-1], "angle_slope": slopes,
                        "angle_to_l1_certificate": other["l1"], "angle_to_linf_certificate": other["linf"],
                        "angle_times_log_t": rate_c, "angle_over_gd": to_gd, "gd_final_angle": float(gd.angle[-1, 0]),
                        "gd_final_gap": float(1.0 - gd.margin_ratio[-1, 0]), "iterations": its, "angle": ang},
                       tuple(plot))


def soudry_offset(data, certificate, lr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(w_hat, w_tilde) of Soudry et al. 2018, Theorem 3, from the SVM certificate.

    GD with step ``lr`` on L(w) = sum_n exp(-a_n.w), a_n = y_n x_n, satisfies w(t) = w_hat log t + rho(t)
    with rho(t) -> w_tilde, where w_hat = sum_n alpha_n a_n is the hard-margin SVM (margins >= 1) and
    w_tilde solves lr exp(-a_n.w_tilde) = alpha_n on the support S (alpha_n > 0).  The certificate's
    multipliers are for the objective ||w||^2 (docs/certificates.md), so alpha = multipliers / 2.  Only the
    component of w_tilde in span{a_n : n in S} is determined (the rest keeps its initial value, zero here).

    Returns:
        w_hat (d,), w_tilde (d,) as the minimum-norm solution on the support, and the support rows a_n.
    """
    return soudry_offset_rows(data.y[:, None] * data.X, certificate, lr)


def soudry_offset_rows(A, certificate, lr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``soudry_offset`` for the exponential loss sum_n exp(-a_n.w) on rows a_n = ``A[n]`` (linear margins), with
    the certificate's multipliers per row (e.g. the margin rows of a multi-class linear model)."""
    alpha = np.asarray(certificate.multipliers, dtype=float) / 2.0
    support = np.nonzero(alpha > 1e-9 * alpha.max())[0]
    w_tilde = np.linalg.lstsq(A[support], np.log(lr / alpha[support]), rcond=None)[0]
    return np.asarray(certificate.theta, dtype=float), w_tilde, A[support]


def check_gd_rate(cfg: SuiteConfig) -> CheckResult:
    """GD on separable data: w(t) - w_hat log t -> w_tilde, hence angle = O(1/log t) (Soudry et al. 2018)."""
    claim = ("w(t) - w_hat log t -> w_tilde (Soudry et al. 2018, Thm 3; w_hat the SVM certificate, "
             "lr exp(-a_n.w_tilde) = alpha_n on its support): the distance (in span S) decreases at every checkpoint "
             "t >= 100; so rho(t) stays bounded and angle(w(t), w_hat) = O(1/log t)")
    if missing("lexmargin.numeric", "lexmargin.problems.maxmargin"):
        return not_available("gd_rate", claim, f"missing {missing('lexmargin.numeric', 'lexmargin.problems.maxmargin')}")
    from lexmargin.numeric import Constant

    data = separable_data(30, 2, seed=cfg.seed)
    svm = svm_without_bias(data)
    steps = 30_000 if cfg.quick else 1_000_000
    lr = 1.0 / np.linalg.norm(data.X, 2) ** 2
    history = gd_history(lexmargin.load_model("linear", input_dim=2), data, np.zeros(2), steps, Constant(lr),
                         checkpoints=30)
    w_hat, w_tilde, support_rows = soudry_offset(data, svm, lr)
    spans = np.linalg.matrix_rank(support_rows) == data.n_features   # else only span(S) is determined
    its, distance, angles = _offset_distances(history, w_hat, w_tilde, support_rows)
    decreasing = bool(np.all(np.diff(distance) <= 1e-9 * distance[:-1]) and distance[-1] < distance[0])
    plot = line_plot(cfg.plot_path("gd_rate"), cfg.formats,
                     [(r"$\|P_S(w(t) - \hat w \log t - \tilde w)\|$ (claimed: decreasing)", its, distance),
                      (r"$\angle(w(t), \hat w)\,\log t$ (bounded)", its, angles * np.log(its)),
                      (r"$\angle(w(t), \hat w)$", its, angles)],
                     xlabel=r"iteration $t$", ylabel="distance / angle (rad)",
                     title=r"GD: $w(t) - \hat w \log t \to \tilde w$, so angle $= O(1/\log t)$")
    return CheckResult("gd_rate", claim, decreasing,
                       {"steps": steps, "lr": lr, "iterations": its, "distance": distance, "angles": angles,
                        "angle_log_t": angles * np.log(its), "w_hat": w_hat, "w_tilde": w_tilde,
                        "support_spans": bool(spans), "distance_decreasing": decreasing}, tuple(plot))


def _offset_distances(history, w_hat, w_tilde, support_rows):
    """Checkpoints t >= 100: t, ||P_S(theta(t) - w_hat log t - w_tilde)|| and angle(theta(t), w_hat)."""
    project = np.linalg.pinv(support_rows) @ support_rows
    keep = history.steps >= 100
    its = history.steps[keep].astype(float)
    thetas = (history.direction[:, 0] * history.norm[:, 0, None])[keep]
    distance = np.linalg.norm((thetas - np.log(its)[:, None] * w_hat - w_tilde) @ project.T, axis=1)
    return its, distance, np.array([angle_between(t, w_hat) for t in thetas])


def check_multiclass_gd_rate(cfg: SuiteConfig) -> CheckResult:
    """Multi-class GD: W(t) - W_hat log t -> W_tilde on the margin rows, hence angle = O(1/log t)."""
    claim = ("the multi-class exponential loss sum_n sum_{k != y_n} exp(-(w_{y_n} - w_k).x_n) is the exponential loss "
             "on the margin rows a_{n,k} = (e_{y_n} - e_k) kron x_n, so GD follows W(t) - W_hat log t -> W_tilde "
             "(Soudry et al. 2018; W_hat the Crammer-Singer hard-margin certificate, lr exp(-a.W_tilde) = alpha on its "
             "support): the distance (in span S) decreases at every checkpoint t >= 100, and angle(W(t), W_hat) = "
             "O(1/log t) (fitted: angle ~ C / log t)")
    if missing("lexmargin.numeric", "lexmargin.problems.maxmargin"):
        return not_available("multiclass_gd_rate", claim,
                             f"missing {missing('lexmargin.numeric', 'lexmargin.problems.maxmargin')}")
    from lexmargin.numeric import Constant, kernel_for, train
    from lexmargin.problems.maxmargin import max_margin

    data = multiclass_separable_data(30, 2, 3, seed=cfg.seed)
    model = lexmargin.load_model("multiclass_linear", input_dim=2, n_classes=3)
    certificate = max_margin(model, data, raise_on_failure=False)
    kernel = kernel_for(model, data)
    rows = kernel.per_sample_jacobian(np.zeros(kernel.n_params), np.arange(kernel.n_samples))
    lr = 1.0 / np.linalg.norm(rows, 2) ** 2
    steps = 30_000 if cfg.quick else 300_000
    history = train(kernel, np.zeros((1, kernel.n_params)), rule=Constant(lr), n_steps=steps, checkpoints=30)
    w_hat, w_tilde, support_rows = soudry_offset_rows(rows, certificate, lr)
    its, distance, angles = _offset_distances(history, w_hat, w_tilde, support_rows)
    inverse_log = 1.0 / np.log(its)
    rate = float(angles @ inverse_log / (inverse_log @ inverse_log))        # least squares: angle ~ C / log t
    fit_error = float(np.max(np.abs(angles - rate * inverse_log)) / np.max(angles))
    decreasing = bool(certificate.success and np.all(np.diff(distance) <= 1e-9 * distance[:-1])
                      and distance[-1] < distance[0])
    plot = line_plot(cfg.plot_path("multiclass_gd_rate"), cfg.formats,
                     [(r"$\|P_S(W(t) - \hat W \log t - \tilde W)\|$ (claimed: decreasing)", its, distance),
                      (r"$\angle(W(t), \hat W)\,\log t$", its, angles * np.log(its)),
                      (r"$\angle(W(t), \hat W)$", its, angles),
                      (rf"least-squares fit ${rate:.3g} / \log t$ (largest error {100 * fit_error:.0f}%)", its,
                       rate * inverse_log)],
                     xlabel=r"iteration $t$", ylabel="distance / angle (rad)",
                     title=r"multi-class GD: $W(t) - \hat W \log t \to \tilde W$, angle $= O(1/\log t)$")
    return CheckResult("multiclass_gd_rate", claim, decreasing,
                       {"steps": steps, "lr": lr, "n_classes": 3, "certificate_status": certificate.status.value,
                        "support_rows": int(support_rows.shape[0]), "iterations": its, "distance": distance,
                        "angles": angles, "angle_log_t": angles * np.log(its), "rate_C": rate,
                        "rate_fit_relative_error": fit_error, "w_hat": w_hat, "w_tilde": w_tilde,
                        "distance_decreasing": decreasing}, tuple(plot))


# the geometries of the geometry check: (norm of max_margin, p); lp at p = 3 (between l2 and linf) and 1.5
GEOMETRY_NORMS = (("l1", None), ("linf", None), ("lp", 3.0), ("lp", 1.5))
# step sizes of the geometry check, as fractions c of 1 / max_n ||a_n||_*^2 (the smoothness of log L in the norm)
GEOMETRY_STEP_FRACTIONS = (0.5, 1.0)
# claimed at the last step (10^4 steps with --quick, 3 10^4 otherwise), for every step size
GEOMETRY_MAX_GAP = 5e-2           # 1 - normalized margin / certified max margin, in the geometry's norm
GEOMETRY_MAX_ANGLE = 1e-1         # radians to the geometry's certificate
GEOMETRY_MAX_SLOPE = -0.5         # fitted d log(gap) / d log t over the last decade of eta t (theory: about -1)


def _geometry_label(norm: str, p) -> str:
    if p is not None:
        return rf"$\ell_{{{p:g}}}$"
    return {"l1": r"$\ell_1$", "linf": r"$\ell_\infty$"}[norm]


def _loglog_slope(steps, values) -> float:
    """Least-squares slope of log(values) against log(steps) (non-positive values dropped; NaN if < 3 points)."""
    steps, values = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = (steps > 0) & (values > 0) & np.isfinite(values)
    if keep.sum() < 3:
        return float("nan")
    return float(np.polyfit(np.log(steps[keep]), np.log(values[keep]), 1)[0])


def geometry_run(data, certificate, svm, geometry, steps: int, dual_p: float | None = None) -> dict:
    """Steepest descent in ``geometry`` (normalized steps c / max_n ||a_n||_*^2, from 0) measured against
    ``certificate`` (a max_margin certificate, any norm) and the SVM: the numbers of one row of the geometry check.
    ``dual_p``: the exponent of the dual norm in the step size (default: the geometry's own; mirror descent with
    psi = ||theta||_p^p / p takes that of l_p).

    Returns:
        {"passed", "eta", "final_gap", "final_angle", "final_angle_to_svm", "angle_certificate_vs_svm", "svm_gap"
        (1 - the SVM direction's margin in this norm / the certified one), "gap_slope", "angle_slope", "iterations",
        "gap", "angle"} (per step size where a list; the series for the largest).
    """
    from lexmargin.numeric import LinearKernel, Normalized, Reference, angle, train
    from lexmargin.numeric.geometry import Steepest, lp_norm

    A = data.y[:, None] * data.X
    dual_p = geometry.dual_p if dual_p is None else dual_p
    etas = tuple(c / float(np.max(lp_norm(A, dual_p)) ** 2) for c in GEOMETRY_STEP_FRACTIONS)
    hist = train(LinearKernel(data.X, data.y), np.zeros((len(etas), data.n_features)),
                 rule=Steepest(geometry, Normalized(etas)), n_steps=steps, checkpoints=30,
                 reference=Reference.from_certificate(certificate), store_direction=False)
    its, gap, ang = hist.steps[1:], 1.0 - hist.margin_ratio[1:], hist.angle[1:]
    # the last decade of eta t: gap ~ 1 / (eta t), so a smaller step is fitted where it has come as far
    cmax = max(GEOMETRY_STEP_FRACTIONS)
    window = [its >= steps / 10 * cmax / c for c in GEOMETRY_STEP_FRACTIONS]
    slopes = [_loglog_slope(its[w], gap[w, r]) for r, w in enumerate(window)]
    to_svm = angle(hist.theta, svm.theta)
    ok = bool(np.all(gap[-1] <= GEOMETRY_MAX_GAP) and np.all(ang[-1] <= GEOMETRY_MAX_ANGLE)
              and np.all(np.asarray(slopes) <= GEOMETRY_MAX_SLOPE))
    # what GD's limit (the SVM) would leave in this norm: the geometry matters where this is far from 0
    svm_nm = float(np.min(A @ svm.theta) / lp_norm(svm.theta, geometry.p))
    return {"passed": ok, "eta": list(etas), "final_gap": gap[-1], "final_angle": ang[-1],
            "final_angle_to_svm": to_svm, "angle_certificate_vs_svm": float(angle(certificate.theta, svm.theta)),
            "svm_gap": 1.0 - svm_nm / float(certificate.normalized_margin),
            "gap_slope": slopes, "angle_slope": [_loglog_slope(its[w], ang[w, r]) for r, w in enumerate(window)],
            "iterations": its, "gap": gap[:, -1], "angle": ang[:, -1]}


def check_geometry(cfg: SuiteConfig) -> CheckResult:
    """Steepest descent in l1 / linf / lp converges in direction to the max-margin solution in that norm."""
    claim = ("steepest descent in a norm (l1: greedy coordinate descent, linf: sign descent, lp: p = 3 and 1.5) with "
             f"normalized steps eta = c / max_n ||a_n||_*^2 (c in {GEOMETRY_STEP_FRACTIONS}), from 0 on linear "
             f"separable data, meets max_margin(norm=...)'s certificate (Gunasekar et al. 2018): at the last step "
             f"1 - margin ratio <= {GEOMETRY_MAX_GAP:g} and angle <= {GEOMETRY_MAX_ANGLE:g}, the margin gap falls "
             f"with a fitted log-log slope <= {GEOMETRY_MAX_SLOPE:g} over the last decade of eta t (about -1 predicted); the "
             "angle to the SVM (GD's limit) and the gap the SVM direction leaves in each norm are reported, and so is "
             "mirror descent with psi = ||theta||_p^p / p against the same lp certificates (not claimed: its gap "
             "falls like t^(-1/(p-1)), too slowly for these tolerances at p = 3)")
    if missing("lexmargin.numeric", "lexmargin.problems.maxmargin"):
        return not_available("geometry", claim,
                             f"missing {missing('lexmargin.numeric', 'lexmargin.problems.maxmargin')}")
    from lexmargin.numeric.geometry import MirrorLp, get_geometry
    from lexmargin.problems.maxmargin import max_margin

    n, d = 30, 8
    data = separable_data(n, d, seed=cfg.seed)
    model = lexmargin.load_model("linear", input_dim=d)
    steps = 10_000 if cfg.quick else 30_000
    svm = max_margin(model, data)
    rows, series_angle, series_gap, passed = {}, [], [], True
    for norm, p in GEOMETRY_NORMS:
        name = norm if p is None else f"l{p:g}"
        cert = max_margin(model, data, norm=norm, p=p, raise_on_failure=False)
        if cert.status.value != "optimal":
            rows[name] = {"certificate_status": cert.status.value, "passed": False}
            passed = False
            continue
        row = geometry_run(data, cert, svm, get_geometry(norm, p), steps)
        rows[name] = {"certificate_status": "optimal", "certified_margin": float(cert.normalized_margin), **row}
        passed &= row["passed"]
        label = _geometry_label(norm, p)
        series_angle.append((label, row["iterations"], row["angle"]))
        series_gap.append((rf"{label}: slope {row['gap_slope'][-1]:.2f}", row["iterations"], row["gap"]))
        if p is not None:   # mirror descent, psi = ||theta||_p^p / p: the same limit (Sun et al. 2022); reported only
            mirror = geometry_run(data, cert, svm, MirrorLp(p), steps, dual_p=get_geometry(norm, p).dual_p)
            rows[f"mirror_{name}"] = {"certificate_status": "optimal", "claimed": False,
                                      "predicted_gap_slope": -1.0 / (p - 1.0), **mirror}

    def right(fig, ax):
        for k, (label, x, y) in enumerate(series_gap):
            keep = y > 0
            figures.plot_series(ax, x[keep], y[keep], label, k)
        figures.draw_bound(ax, GEOMETRY_MAX_GAP, rf"claimed: gap $\leq$ {GEOMETRY_MAX_GAP:g} at $t = {steps}$")
        ax.set(xscale="log", yscale="log", xlabel=r"iteration $t$", ylabel=r"$1 - \gamma(\theta_t) / \gamma^*$",
               title=r"margin gap in the same norm ($c = 1$)")
        figures.legend(ax)

    plot = line_plot(cfg.plot_path("geometry"), cfg.formats, series_angle, xlabel=r"iteration $t$",
                     ylabel=r"$\angle(\theta_t, \theta^*_{\|\cdot\|})$ (rad)",
                     title=r"steepest descent in a norm, $\eta = c/\max_n \|a_n\|_*^2$, $c = 1$",
                     bounds=[(GEOMETRY_MAX_ANGLE, rf"claimed: angle $\leq$ {GEOMETRY_MAX_ANGLE:g}")], panel=right)
    return CheckResult("geometry", claim, bool(passed),
                       {"steps": steps, "n": n, "d": d, "step_fractions": list(GEOMETRY_STEP_FRACTIONS),
                        "geometries": rows}, tuple(plot))


CHECKS = (check_lemma3_bound, check_theorem1_shallow_discarded, check_svm_bias, check_theorems23_homogeneous,
          check_theorem4_lexicographic, check_log_vs_eps_log, check_path_sgd_invariance, check_gd_rate,
          check_multiclass_gd_rate, check_geometry, check_path_sgd_limits, check_sgd_limit)


# ---- the suite ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SuiteResult:
    """The checks' results; ``to_dict`` is report.json (docs/schema/report.schema.json, kind paper_suite; the seeds
    suite's is seeds_suite, ``name`` "seeds")."""

    name: str
    quick: bool
    checks: tuple[CheckResult, ...]
    seconds: float
    environment: dict
    out_dir: str = "."
    seed: int = 0

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.checks)

    @property
    def all_available_passed(self) -> bool:
        return all(c.status in (PASSED, NOT_AVAILABLE) for c in self.checks)

    def to_dict(self) -> dict:
        return header(f"{self.name}_suite", self.seed, self.environment) | {
            "suite": self.name, "quick": self.quick, "seconds": self.seconds,
            "summary": {s: self.count(s) for s in (PASSED, "failed", NOT_AVAILABLE, ERROR)},
            "checks": [c.to_dict() for c in self.checks]}

    def to_markdown(self) -> str:
        rows = [(c.name, c.status, c.claim, f"{c.seconds:.1f}", c.note or "") for c in self.checks]
        summary = ", ".join(f"{self.count(s)} {s}" for s in (PASSED, "failed", NOT_AVAILABLE, ERROR))
        lines = [f"# {self.name.capitalize()} suite{' (quick)' if self.quick else ''}", "",
                 f"{summary}; {self.seconds:.1f} s on {self.environment.get('cpus')} CPUs; seed {self.seed}.", "",
                 f"Environment: {environment_line(self.environment)}.", "",
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
        for shown in figures.primary(check.plots):
            same = [p for p in check.plots if Path(p).with_suffix("") == Path(shown).with_suffix("")]
            lines += figures.figure_markdown(Path(shown).stem, same, relative_to=self.out_dir) + [""]
        return lines


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
                    seed: int = 0, formats=("png",), jobs: int = 1, scheduler: str = "processes",
                    address: str | None = None) -> SuiteResult:
    """Run every check (or those named in ``only``); write report.json, report.md and figures into out_dir.

    Args:
        out_dir: the output folder.
        quick: smaller sizes (CI).
        progress: show a progress bar.
        only: names of the checks to run (without ``check_``); None for all.
        seed: seed of every check's random data and starts (recorded in report.json).
        formats: figure formats (``lexmargin.report.figures.FORMATS``); every figure in each.
        jobs: run the checks as that many parallel Dask tasks (``lexmargin.parallel.run_tasks``; 1: serially,
            no Dask needed).  The results are those of a serial run, in the same order (timings aside).
        scheduler: the local Dask scheduler for ``jobs > 1``: ``"processes"`` (default; matplotlib is not
            thread-safe) or ``"threads"``.
        address: a dask.distributed scheduler address instead of a local scheduler.

    Returns:
        The SuiteResult (also written as report.json and report.md).
    """
    from lexmargin.parallel import needs_dask, run_suite_check, run_tasks
    from lexmargin.progress import bar as progress_bar

    cfg = SuiteConfig(Path(out_dir), quick, int(seed), figures.check_formats(formats))
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    checks = select(CHECKS, only, "check_")
    start, results = time.perf_counter(), []
    if needs_dask(jobs, scheduler, address):
        fields = {"out_dir": cfg.out_dir, "quick": cfg.quick, "seed": cfg.seed, "formats": cfg.formats}
        calls = [(str(Path(__file__).resolve().parent), "paper", check.__name__, fields) for check in checks]
        results = run_tasks(run_suite_check, calls, jobs=jobs, scheduler=scheduler, address=address)
    else:
        bar = progress_bar(checks, wanted=progress, desc="paper suite", unit="check")
        for check in bar:
            bar.set_postfix_str(check.__name__.removeprefix("check_"))
            results.append(run_check(check, cfg=cfg))
    suite = SuiteResult("paper", quick, tuple(results), time.perf_counter() - start, environment(), str(cfg.out_dir),
                        cfg.seed)
    write_outputs(cfg.out_dir, "report", suite.to_dict(), suite.to_markdown(), seed=cfg.seed)
    return suite


def main(argv=None) -> int:
    return suite_main(argv, __doc__.splitlines()[0], "paper_suite_results", run_paper_suite)


if __name__ == "__main__":
    sys.exit(main())
