"""The fixed-cost floor of ``svm_with_bias`` on tiny problems, against scikit-learn SVC in one process.

    python benchmarks/perf_floor.py [--sizes 100x10 10x10000] [--repeat 400] [--out DIR]

``svm_with_bias(data)`` returns three certificates, each recomputed from the problem's own functions: the convex QP
in (w, b) (its proof of global optimality, ``result.qp``) and the two depth-sensitive stages of the svm_bias model
(``result.stages``).  Below a few milliseconds the route's time is fixed cost, so the least it can take is the time
of the parts no route can leave out: one solve of the QP (the dual route's least-distance program) and the three
``certify`` calls, each at the very point and multipliers its certificate reports.  This script times those parts
alone, with the whole call and SVC's fit (linear kernel, C = 1e6, the perf suite's converged tolerance), in one
process at one BLAS thread: each part's best of ``--repeat`` calls in a row (warm, as the perf suite times a
contender in its own process), in ``--rounds`` rounds over the parts (a busy neighbour then slows all of them alike),
the best round kept:

    floor = least-distance solve + certify(QP) + certify(stage w) + certify(stage b)

``floor / SVC`` above 1 means no reduction of the rest of the route (building the NLPs, the finish's bookkeeping,
assembling the certificates) can bring the call level with SVC: the certificates themselves would have to cost
less, or be fewer.  The perf suite (``perf_suite.py``) measures the call against its peers, each in its own process;
this script explains its two smallest bias points (docs/max_margin.md, "The floor at tiny sizes").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import markdown_table, separable_data  # noqa: E402

SVC_TOLERANCES = {(100, 10): 1e-7, (10, 10000): 1e-5}   # the perf suite's converged settings (docs/max_margin.md)
DEFAULT_SIZES = ("100x10", "10x10000")
COLUMNS = ("N", "d", "svm_with_bias_ms", "svc_ms", "ldp_ms", "certify_qp_ms", "certify_w_ms", "certify_b_ms",
           "floor_ms", "floor_over_svc", "call_over_svc", "floor_share")


def _parts(data):
    """name -> zero-argument callable: the call, SVC's fit and the floor's four parts (see the module docstring)."""
    import lexmargin
    from lexmargin.nlp.certify import certify
    from lexmargin.nlp.options import Tolerances
    from lexmargin.problems import svm_bias
    from lexmargin.problems.dual import dual_rows, least_distance
    from lexmargin.problems.maxmargin import margin_nlp
    from sklearn.svm import SVC

    N, d = data.n_samples, data.n_features
    tol = Tolerances()
    _, _, result = lexmargin.svm_with_bias(data)
    if result.route != "qp" or not result.success:
        raise RuntimeError(f"svm_with_bias at {N} x {d} did not take the certified QP route ({result.route})")
    qp = svm_bias.SVMBiasQP(data)
    A, r = dual_rows(qp.source, qp.lift.n_params)
    proposal = least_distance(A, r, free=(d,))
    qp_nlp = margin_nlp(qp.source, qp.lift, np.arange(N))
    z = qp.lift.start(proposal.theta)
    fns = svm_bias.BiasModelFunctions(data, "both")
    first, second = (stage.certificate for stage in result.stages)
    every, w_idx, b_idx = np.arange(fns.n_params), np.arange(d), np.arange(d, fns.n_params)
    stage_w = svm_bias._stage(fns, data, every, w_idx, first.theta)
    stage_b = svm_bias._stage(fns, data, b_idx, b_idx, second.theta)
    svc_tol = SVC_TOLERANCES.get((N, d), 1e-7)
    return {
        "svm_with_bias": lambda: lexmargin.svm_with_bias(data),
        "svc": lambda: SVC(kernel="linear", C=1e6, tol=svc_tol).fit(data.X, data.y),
        "ldp": lambda: least_distance(A, r, free=(d,)),
        "certify_qp": lambda: certify(qp_nlp, z, proposal.multipliers, tolerances=tol),
        "certify_w": lambda: certify(stage_w, first.theta, first.multipliers, tolerances=tol),
        "certify_b": lambda: certify(stage_b, second.theta[b_idx], second.multipliers, tolerances=tol),
    }


def measure(N: int, d: int, repeat: int, rounds: int = 3, seed: int = 0) -> dict:
    """Best times (ms) of the parts at N x d at one BLAS thread: ``repeat`` calls in a row per part, ``rounds``
    rounds over the parts."""
    from threadpoolctl import threadpool_limits

    data = separable_data(N, d, seed)
    with threadpool_limits(1):
        parts = _parts(data)
        best = dict.fromkeys(parts, float("inf"))
        for _ in range(rounds):
            for name, fn in parts.items():
                for _ in range(10):     # warm-up: caches, the BLAS threads' first use
                    fn()
                for _ in range(repeat):
                    start = time.perf_counter()
                    fn()
                    best[name] = min(best[name], time.perf_counter() - start)
    ms = {name: 1e3 * seconds for name, seconds in best.items()}
    floor = ms["ldp"] + ms["certify_qp"] + ms["certify_w"] + ms["certify_b"]
    row = {"N": N, "d": d, **{f"{name}_ms": value for name, value in ms.items()}, "floor_ms": floor}
    row.update(floor_over_svc=floor / ms["svc"], call_over_svc=ms["svm_with_bias"] / ms["svc"],
               floor_share=floor / ms["svm_with_bias"])
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="N x d, e.g. 100x10")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="a folder for floor.json and floor.md")
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes:
        N, d = (int(part) for part in size.lower().split("x"))
        rows.append(measure(N, d, args.repeat, args.rounds, args.seed))
    table = markdown_table(COLUMNS, [[row[c] for c in COLUMNS] for row in rows])
    print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "floor.json").write_text(json.dumps(rows, indent=1))
        (out / "floor.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
