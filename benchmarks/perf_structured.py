"""Structured problems of the perf suite (its ``structured`` benchmark): each timed with lexmargin's default
formulation and with the previous one, in the same run, one BLAS thread for both.

* deep linear max-margin (depth 2, width d): the default (the balanced factorization of the linear max-margin
  solution, certified), IPOPT from 5 random starts on the lifted form (``starts=5``), and the previous route
  (``structure="general"``: the model's CasADi functions, 5 random starts);
* deep linear margin path: the default without ``init`` (the normalized closed-form max-margin solution, then
  the previous point certified at each rho), with ``init`` (lifted IPOPT for the first point), and
  ``structure="general"`` with the same ``init`` (IPOPT on the direct form at every rho), seconds per rho;
* linear constrained path over 20 rho in [1, 100]: the default (epigraph form) against the previous lifted
  log-sum-exp form (``formulation="lse", structure="general"``, a dense N x N Hessian block), which at N = 1000
  runs on the first rho only (about a minute per rho); per-rho seconds are compared.

``run(cfg, progress)`` returns the fields of the suite's BenchResult; ``perf_suite.bench_structured`` wraps it.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import numpy as np
from common import PASSED, optional_module, separable_data

import lexmargin


def _one_thread():
    limits = optional_module("threadpoolctl")
    return limits.threadpool_limits(1) if limits is not None else nullcontext()


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


# ---- deep linear max-margin -----------------------------------------------------------------------------
def _max_margin_row(n: int, d: int, seed: int) -> dict:
    from lexmargin.problems.margins import end_to_end

    data = separable_data(n, d, seed=seed)
    model = lexmargin.load_model("deep_linear", input_dim=d, depth=2)
    fast, fast_s = _timed(lambda: lexmargin.max_margin(model, data, raise_on_failure=False))
    starts, starts_s = _timed(lambda: lexmargin.max_margin(model, data, starts=5, raise_on_failure=False))
    general, general_s = _timed(lambda: lexmargin.max_margin(model, data, structure="general",
                                                             raise_on_failure=False))
    beta, beta_general = end_to_end(model, fast.theta), end_to_end(model, general.theta)
    return {"problem": "deep_linear max_margin", "N": n, "d": d, "P": model.n_params, "lexmargin_s": fast_s,
            "route": fast.solver.name, "status": fast.status.value, "kkt": fast.kkt.max, "ipopt_5_starts_s": starts_s,
            "general_s": general_s, "general_status": general.status.value,
            "general_over_lexmargin": general_s / fast_s,
            "objective_rel_diff": abs(fast.objective - general.objective) / general.objective,
            "objective_rel_diff_5_starts": abs(starts.objective - general.objective) / general.objective,
            "end_to_end_diff": float(np.max(np.abs(beta - beta_general)))}


# ---- deep linear margin path ----------------------------------------------------------------------------
def _margin_path_row(n: int, d: int, rhos, seed: int) -> dict:
    from lexmargin.problems.paths import margin_path

    data = separable_data(n, d, seed=seed)
    model = lexmargin.load_model("deep_linear", input_dim=d, depth=2)
    init = model.random_params(seed=1)
    fast, fast_s = _timed(lambda: margin_path(model, data, rhos, raise_on_failure=False))
    warm, warm_s = _timed(lambda: margin_path(model, data, rhos, init=init, raise_on_failure=False))
    general, general_s = _timed(lambda: margin_path(model, data, rhos, init=init, structure="general",
                                                    raise_on_failure=False))
    k = len(rhos)
    normalized = [(p.certificate.normalized_margin, q.certificate.normalized_margin)
                  for p, q in zip(fast.points + warm.points, general.points + general.points)]
    return {"problem": "deep_linear margin_path", "N": n, "d": d, "P": model.n_params, "rhos": k,
            "lexmargin_s": fast_s, "lexmargin_per_rho_s": fast_s / k,
            "routes": " ".join(dict.fromkeys(p.certificate.solver.name for p in fast.points)),
            "status": "optimal" if fast.success and warm.success else "not optimal",
            "init_s": warm_s, "init_per_rho_s": warm_s / k, "init_first_point_ipopt_s": warm.points[0].certificate.solver.seconds,
            "general_s": general_s, "general_per_rho_s": general_s / k,
            "general_status": "optimal" if general.success else "not optimal",
            "general_over_lexmargin": general_s / fast_s, "general_over_init": general_s / warm_s,
            "normalized_margin_rel_diff": max(abs(a - b) / abs(b) for a, b in normalized)}


# ---- linear constrained path ----------------------------------------------------------------------------
def _constrained_path_row(n: int, d: int, rhos, before: int, seed: int) -> dict:
    from lexmargin.problems.paths import constrained_path

    data = separable_data(n, d, seed=seed)
    model = lexmargin.load_model("linear", input_dim=d)
    fast, fast_s = _timed(lambda: constrained_path(model, data, rhos, raise_on_failure=False))
    old, old_s = _timed(lambda: constrained_path(model, data, rhos[:before], formulation="lse", structure="general",
                                                 raise_on_failure=False))
    k = len(rhos)
    return {"problem": "linear constrained_path", "N": n, "d": d, "P": model.n_params, "rhos": k,
            "lexmargin_s": fast_s, "lexmargin_per_rho_s": fast_s / k,
            "status": "optimal" if fast.success else "not optimal",
            "lse_rhos": before, "lse_s": old_s, "lse_per_rho_s": old_s / before,
            "lse_status": "optimal" if old.success else "not optimal",
            "lse_per_rho_over_lexmargin": (old_s / before) / (fast_s / k),
            "theta_diff_vs_lse": float(np.max(np.abs(fast.thetas[:before] - old.thetas))),
            "max_kkt": max(p.certificate.kkt.max for p in fast.points)}


def run(cfg, progress: bool = False) -> dict:
    """The structured benchmark's rows (one BLAS thread), as the fields of a BenchResult."""
    from lexmargin.progress import bar

    rhos20 = [float(r) for r in np.geomspace(1.0, 100.0, 20)]
    if cfg.quick:
        jobs = [lambda: _max_margin_row(60, 5, cfg.seed),
                lambda: _margin_path_row(60, 5, [1.0, 2.0, 4.0], cfg.seed),
                lambda: _constrained_path_row(150, 5, rhos20[::4], 2, cfg.seed)]
    else:
        jobs = [lambda: _max_margin_row(300, 20, cfg.seed),
                lambda: _margin_path_row(300, 20, [1.0, 2.0, 4.0, 8.0, 16.0], cfg.seed),
                lambda: _constrained_path_row(300, 20, rhos20, 20, cfg.seed),
                lambda: _constrained_path_row(1000, 20, rhos20, 1, cfg.seed)]
    with _one_thread():
        rows = [job() for job in bar(jobs, wanted=progress, desc="structured")]
    columns = ("problem", "N", "d", "P", "rhos", "lexmargin_s", "lexmargin_per_rho_s", "route", "routes", "status",
               "ipopt_5_starts_s", "init_per_rho_s", "init_first_point_ipopt_s", "general_s", "general_per_rho_s",
               "general_status", "general_over_lexmargin", "general_over_init", "lse_rhos", "lse_s", "lse_per_rho_s", "lse_status",
               "lse_per_rho_over_lexmargin", "objective_rel_diff", "objective_rel_diff_5_starts", "end_to_end_diff",
               "normalized_margin_rel_diff", "theta_diff_vs_lse", "kkt", "max_kkt")
    summary = {}
    for row in rows:
        key = f"{row['problem']} N={row['N']}"
        summary[f"{key}: lexmargin s"] = row["lexmargin_s"]
        ratio = row.get("general_over_lexmargin", row.get("lse_per_rho_over_lexmargin"))
        summary[f"{key}: previous / lexmargin"] = ratio
    return {"name": "structured",
            "description": "structured problems, each with lexmargin's default formulation and the previous one in "
                           "the same run (one BLAS thread, separable_data, one timing each): deep linear max-margin "
                           "(closed form certified; 5 IPOPT starts on the lifted form; the previous general route), "
                           "the deep linear margin path (seconds per rho, without and with init; previous: structure='general' "
                           "with init), the linear "
                           "constrained path over rho in [1, 100] (previous: formulation='lse', timed on its first "
                           "lse_rhos points, compared per rho); ratios > 1 mean the default is faster",
            "status": PASSED, "columns": columns, "rows": tuple(rows), "summary": summary,
            "note": "lse_per_rho_over_lexmargin compares seconds per rho (the previous formulation over its first "
                    "lse_rhos points, where rho is smallest and its solves cheapest)"}
