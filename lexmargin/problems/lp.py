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

WORKING_SET_ABOVE = 1000  # samples above which the LP is solved on a working set of rows (constraint generation):
#                           measured at 10^4 x 20 (l1), 0.22 s per HiGHS solve on every row
SEED_ROWS = 200          # the first working set: at least this many rows, or SEED_FACTOR per LP variable, ...
SEED_FACTOR = 10
VIOLATION = 1e-9         # ... and a row joins it when its margin is below 1 - VIOLATION (the certificate then judges
#                          every row: a row violated by less is the finish's)
MAX_ROUNDS = 50


def lp_applies(problem) -> bool:
    """The route's scope: a model linear in theta (``source.linear``), a polyhedral norm (``Norm.polyhedral``:
    l1, linf) as the objective."""
    return bool(problem.source.linear and problem.norm.polyhedral and problem.lift.form == OBJECTIVE)


def lp_certificate(problem, opts, started: float):
    """Solve a ``MaxMarginProblem`` in ``lp_applies``'s scope by HiGHS, finish and certify on every row; returns the
    Certificate whatever its status (``MaxMarginProblem._solve`` runs IPOPT when it is not ``optimal``, unless the
    route is "lp", and keeps the better kind, ``maxmargin.preferred``).  Runs inside the solve's one-BLAS-thread
    block."""
    from ..nlp.certificate import SolverInfo
    from .maxmargin import MaxMarginProblem, margin_nlp, proposal_certificate, representable

    source, lift = problem.source, problem.lift
    N = problem.data.n_samples
    nlp = margin_nlp(source, lift, np.arange(N))
    result, formed, rounds = _solve(problem, nlp, MaxMarginProblem._time_left(opts, started, least=0.0))
    cert, verdict = proposal_certificate(problem, nlp, result, opts, started, rounds, formed)
    solver = SolverInfo("highs", result.status, result.return_status, result.iterations,
                        time.perf_counter() - started,
                        f"HiGHS dual simplex on the linear program (the {problem.norm.name} norm's lift, "
                        f"{'every row' if rounds == 1 and formed.size == N else f'{formed.size} rows in {rounds} rounds'}"
                        f"): {result.return_status} after {result.iterations} iterations"
                        f"{representable(cert.theta, verdict, source.scale_exponent)[1]}")
    return replace(cert, solver=solver)


def _solve(problem, nlp, time_limit):
    """(HiGHS's result on the full NLP ``nlp``, the rows solved on, rounds): every row at once up to
    WORKING_SET_ABOVE samples; beyond, constraint generation from the rows of smallest margin along the rows' mean
    direction, adding up to as many rows again as the first set holds, most violated first, until no row is
    violated by more than VIOLATION.  The working set's multipliers are placed at their rows of the full NLP (the
    norm's and the source's extra rows follow the N margin rows in both)."""
    from ..nlp import highs
    from ..nlp.status import Status
    from .maxmargin import margin_nlp

    source, lift = problem.source, problem.lift
    N = problem.data.n_samples
    if N <= WORKING_SET_ABOVE:
        return highs.solve(nlp, time_limit=time_limit), np.arange(N), 1
    started = time.perf_counter()
    A = source.jacobian(np.zeros(lift.n_params))
    size = min(N, max(SEED_ROWS, SEED_FACTOR * lift.n))
    rows = np.sort(np.argsort(source.values(A.mean(axis=0)), kind="stable")[:size])
    iterations = 0
    for rounds in range(1, MAX_ROUNDS + 1):
        left = None if time_limit is None else max(time_limit - (time.perf_counter() - started), 0.0)
        part = highs.solve(margin_nlp(source, lift, rows), time_limit=left)
        iterations += part.iterations
        if part.status != Status.OPTIMAL:
            break
        slack = source.values(lift.theta(part.z)) - 1.0
        slack[rows] = np.inf
        violated = np.nonzero(slack < -VIOLATION)[0]
        if violated.size == 0:
            break
        rows = np.union1d(rows, violated[np.argsort(slack[violated], kind="stable")[:size]])
    return on_every_row(part, rows, nlp.m, N, iterations, time.perf_counter() - started), rows, rounds


def on_every_row(part, rows, m: int, N: int, iterations: int, seconds: float):
    """HiGHS's result on the working set ``rows`` as a result of the full NLP (m rows, the N margin rows first): the
    working rows' multipliers at their samples, the norm's and the source's extra rows after the N margin rows (in
    both NLPs they follow the margin rows), every other margin row's multiplier 0; the iterations and time of all
    rounds."""
    multipliers = np.zeros(m)
    multipliers[rows] = part.multipliers[:rows.size]
    multipliers[N:] = part.multipliers[rows.size:]
    return replace(part, multipliers=multipliers, iterations=iterations, seconds=seconds)


__all__ = ["lp_applies", "lp_certificate"]
