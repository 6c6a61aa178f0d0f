"""One contender of the perf suite's max-margin benchmark, in its own process (see perf_suite.py).

    python perf_contender.py CONTENDER {origin,bias} --n N --d D --seed S --repeat R --result OUT.json
                             [--reference REF.npy] [--save-reference REF.npy]

Imports only numpy and the contender's own libraries (lexmargin, scikit-learn or cvxpy), so any lexmargin version
can be timed (the suite puts an older source tree first on PYTHONPATH for ``lexmargin_before``).  The data are
``common.separable_data``'s, regenerated here with numpy alone.  Iterative peers are timed at the loosest
setting that reaches ACCURACY relative error in theta against cvxpy + Clarabel at tolerances 1e-12 (found by
untimed trial fits, loosest first); none reaching it: "converged": false.  Timing: best of at least ``repeat``
calls, repeated until MIN_SECONDS of calls have run (at most MAX_CALLS; one call when a call takes over
REPEAT_SECONDS).  Memory: ru_maxrss of this process (native allocations included), whole
and as the growth over the process after its imports and data.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ACCURACY = 1e-6
REPEAT_SECONDS = 5.0
MIN_SECONDS = 0.5      # fast calls are repeated until this much time is spent (every contender alike) ...
MAX_CALLS = 1000       # ... or this many calls
TIGHT_CLARABEL = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10}
LINEAR_SVC_TOLS = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10)
SVC_TOLS = (1e-3, 1e-5, 1e-7)
BIG_C = 1e6           # hard margin: C above every dual variable (alpha_n = lambda_n / 2 <= ~1e2 on this data)


def separable_arrays(n: int, d: int, seed: int = 0, gap: float = 0.3):
    """``common.separable_data`` as arrays: Gaussian data with a margin gap along a random unit direction."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(d)
    w /= np.linalg.norm(w)
    X = rng.standard_normal((n, d))
    y = np.where(X @ w >= 0, 1.0, -1.0)
    return X + gap * y[:, None] * w, y


def relative_error(theta, reference) -> float:
    theta, reference = np.asarray(theta, dtype=float), np.asarray(reference, dtype=float)
    return float(np.max(np.abs(theta - reference)) / max(float(np.max(np.abs(reference))), 1e-300))


def timed(fn, repeat: int, min_seconds: float = 0.0, max_calls: int = MAX_CALLS):
    """(best seconds, number of calls, last result): at least ``repeat`` calls, and more until ``min_seconds`` of
    calls have run (timeit's autorange: a best of three millisecond calls moves by 10-20 % from run to run) or
    ``max_calls`` were made; one call when a call takes over REPEAT_SECONDS."""
    best, calls, result, spent = float("inf"), 0, None, 0.0
    while calls < max(1, repeat) or (spent < min_seconds and calls < max_calls):
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        best, spent, calls = min(best, seconds), spent + seconds, calls + 1
        if best > REPEAT_SECONDS:
            break
    return best, calls, result


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cvxpy_problem(X, y, bias: bool):
    import cvxpy as cp

    w = cp.Variable(X.shape[1])
    b = cp.Variable() if bias else 0.0
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(y, X @ w + b) >= 1])

    def solve(**options):
        problem.solve(solver="CLARABEL", **options)
        theta = np.asarray(w.value, dtype=float)
        return np.append(theta, float(b.value)) if bias else theta

    return solve


def setup(name: str, bias: bool, X, y):
    """A list of (setting, solve() -> (theta, info)), loosest first; every import done here."""
    if name in ("lexmargin", "lexmargin_before"):
        import lexmargin
        from lexmargin.problems.maxmargin import max_margin

        data = lexmargin.Dataset(X, y)
        if bias:
            def solve():
                w, b, result = lexmargin.svm_with_bias(data)
                qp = getattr(result, "qp", None)
                return np.append(w, b), {"status": "optimal" if result.success else "not optimal",
                                         "route": getattr(result, "route", ""),
                                         "solver": qp.solver.name if qp is not None else ""}
        else:
            model = lexmargin.load_model("linear", input_dim=X.shape[1])     # built once, outside the timing

            def solve():
                cert = max_margin(model, data)
                return np.asarray(cert.theta), {"status": str(cert.status.value), "solver": cert.solver.name,
                                                "working_set": int(cert.diagnostics.working_set_size)}
        return [("default", solve)]
    if name == "cvxpy":
        solver = cvxpy_problem(X, y, bias)
        return [("default", lambda: (solver(), {})), ("tight", lambda: (solver(**TIGHT_CLARABEL), {}))]
    if name == "linearsvc":
        from sklearn.svm import LinearSVC

        def fit(tol):
            model = LinearSVC(C=BIG_C, loss="hinge", fit_intercept=False, tol=tol, max_iter=10 ** 6).fit(X, y)
            return model.coef_.ravel().copy(), {}
        return [(f"tol={tol:g}", lambda tol=tol: fit(tol)) for tol in LINEAR_SVC_TOLS]
    if name == "svc":
        from sklearn.svm import SVC

        # through the origin: SVC always fits an intercept, so it is given the data mirrored, (x, y) and (-x, -y),
        # whose optimal intercept is 0 and whose hard-margin w is the problem's own
        Xs, ys = (X, y) if bias else (np.vstack([X, -X]), np.concatenate([y, -y]))

        def fit(tol):
            model = SVC(kernel="linear", C=BIG_C, tol=tol).fit(Xs, ys)
            w = model.coef_.ravel().copy()
            return (np.append(w, float(model.intercept_[0])) if bias else w), {}
        return [(f"tol={tol:g}", lambda tol=tol: fit(tol)) for tol in SVC_TOLS]
    raise ValueError(f"unknown contender {name!r}")


def run(args) -> dict:
    X, y = separable_arrays(args.n, args.d, seed=args.seed)
    settings = setup(args.contender, args.problem == "bias", X, y)
    baseline = rss_mib()
    reference = np.load(args.reference) if args.reference else None
    out = {"contender": args.contender, "N": args.n, "d": args.d, "problem": args.problem}
    if args.contender == "cvxpy" and reference is None:       # the reference run: tight first, saved
        reference, _ = settings[1][1]()
        if args.save_reference:
            np.save(args.save_reference, reference)
    chosen, error = None, None
    for setting, solve in settings:
        theta, info = solve()
        error = None if reference is None else relative_error(theta, reference)
        out.update(info)
        if error is None or error <= ACCURACY:
            chosen = (setting, solve, error)
            break
    out["converged"] = chosen is not None
    setting, solve, error = chosen if chosen is not None else (settings[-1][0], settings[-1][1], error)
    seconds, calls, (theta, info) = timed(solve, args.repeat, args.min_seconds)
    out.update(info)
    out.update({"setting": setting, "seconds": seconds, "calls": calls, "rel_error": error,
                "theta": np.asarray(theta, dtype=float).tolist(), "peak_mib": rss_mib(),
                "solve_mib": rss_mib() - baseline})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contender")
    parser.add_argument("problem", choices=("origin", "bias"))
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--d", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=MIN_SECONDS,
                        help="repeat fast calls until this much time is spent (0: exactly --repeat calls)")
    parser.add_argument("--reference", default=None)
    parser.add_argument("--save-reference", default=None)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    Path(args.result).write_text(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
