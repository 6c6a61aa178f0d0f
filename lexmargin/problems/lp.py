"""The LP route of max-margin problems: a model linear in theta in a polyhedral norm (l1, linf).

    min ||theta||_1  (or ||theta||_inf)   s.t.   A theta + c >= 1   (and the source's extra rows)

is a linear program in the norm's lift (``nlp.norms.Lift``: l1 splits theta = u - v with u, v >= 0; linf adds t with
rows t -+ theta_j >= 0).  ``lp_certificate`` solves the max-margin NLP itself (``maxmargin.margin_nlp`` on every
row, on the prescaled data: ``margins.prescale``) by HiGHS's dual simplex (``nlp.highs``), hands its vertex and
multipliers to the finish (``finish_or_keep``: kept where already certified and exact, else finished from its
support) and certifies it on every row like any other point.  IPOPT on these problems stops with
``Error_In_Step_Computation`` or a restoration failure where the features' units differ by ~1e12 (2 samples in R^5,
columns in units 1e-6..1e6: ``failed`` at an objective 1.4e-4 above the optimum); the simplex reaches the vertex.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..nlp.norms import OBJECTIVE


def lp_applies(problem) -> bool:
    """The route's scope: a model linear in theta (``source.linear``), a polyhedral norm (``Norm.polyhedral``:
    l1, linf) as the objective."""
    return bool(problem.source.linear and getattr(problem.norm, "polyhedral", False)
                and problem.lift.form == OBJECTIVE)


def lp_certificate(problem, opts, started: float):
    """Solve a ``MaxMarginProblem`` in ``lp_applies``'s scope by HiGHS, finish and certify on every row; returns the
    Certificate whatever its status (``MaxMarginProblem._solve`` runs IPOPT when it is not ``optimal``, unless the
    route is "lp", and keeps the better kind, ``maxmargin.preferred``).  Runs inside the solve's one-BLAS-thread
    block."""
    from ..nlp import highs
    from ..nlp.certificate import SolverInfo
    from ..nlp.finish import finish_or_keep
    from ..nlp.status import decide
    from .maxmargin import StartOutcome, _Attempt, margin_nlp, representable

    source, lift = problem.source, problem.lift
    N = problem.data.n_samples
    nlp = margin_nlp(source, lift, np.arange(N))
    left = None if opts.time_limit is None else max(float(opts.time_limit) - (time.perf_counter() - started), 0.0)
    result = highs.solve(nlp, time_limit=left)
    point, report = finish_or_keep(nlp, result, opts)
    verdict = decide(report.kkt_met(opts.tolerances), result.status)
    attempt = _Attempt(point.z, point.multipliers, point.lower_multipliers, point.upper_multipliers, result.status,
                       result.return_status, result.iterations, result.seconds, 1, np.arange(N), point.info, report,
                       solver="highs")
    with np.errstate(over="ignore"):        # theta and its norm may overflow in the data's units (``representable``)
        start = StartOutcome(verdict, float(problem.norm.objective_value(source.to_user(lift.theta(point.z)))),
                             report.residuals.max, result.iterations)
    cert = problem._certificate(source, attempt, report, verdict, opts, started, starts=(start,))
    solver = SolverInfo("highs", result.status, result.return_status, result.iterations,
                        time.perf_counter() - started,
                        f"HiGHS dual simplex on the linear program (the {problem.norm.name} norm's lift, every row): "
                        f"{result.return_status} after {result.iterations} iterations"
                        f"{representable(cert.theta, verdict, source.scale_exponent)[1]}")
    return replace(cert, solver=solver)


__all__ = ["lp_applies", "lp_certificate"]
