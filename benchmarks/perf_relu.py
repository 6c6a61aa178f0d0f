"""ReLU max-margin benchmark: the exact region walk against normalized GD on the same data.

Two-layer ReLU nets (d = 5, width 8) on data labelled by a random teacher net of the same shape (samples
with a small teacher margin dropped).  For each N: the normalized margin GD reaches (the best of the GD
start's runs, ``problems.starts.gd_start``), then ``max_margin`` (default starts, ``time_limit`` seconds):
status, normalized margin, seconds, regions walked.  The issue's targets are N = 1000 in < 10 s and
N = 10^4 in < 60 s with a normalized margin >= GD's; docs/certificates.md records the measured numbers.

    python benchmarks/perf_relu.py [--sizes 100 300 1000] [--time-limit 120] [--starts K] [--balanced]
                                   [--data-seed S]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def teacher_data(n: int, d: int = 5, width: int = 8, seed: int = 0, balanced: bool = False):
    """(X, y): N(0, I) inputs labelled by a random two-layer ReLU teacher, |margin| > 0.1 std (``balanced``: output
    weights of alternating sign, so both labels are common; ``lexmargin.sweep.relu_teacher_data``)."""
    from lexmargin.sweep import relu_teacher_data

    return relu_teacher_data(n, d, width, seed, balanced=balanced)


def run(n: int, time_limit: float, starts: int | None, balanced: bool = False, seed: int = 0) -> dict:
    import lexmargin as lm
    from lexmargin.problems.starts import gd_start

    data = teacher_data(n, seed=seed, balanced=balanced)
    net = lm.load_model("two_layer", input_dim=5, activation="relu", width=8)
    t = time.perf_counter()
    theta = gd_start(net, data, seed=0)
    gd = {"seconds": time.perf_counter() - t,
          "normalized_margin": None if theta is None else net.normalized_margin(theta, data)}
    t = time.perf_counter()
    cert = lm.max_margin(net, data, seed=0, starts=starts, time_limit=time_limit, raise_on_failure=False)
    region = cert.diagnostics.region
    return {"N": n, "gd": gd, "status": cert.status.value, "normalized_margin": cert.normalized_margin,
            "seconds": time.perf_counter() - t, "regions": len(region.walk) if region else 0}


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--starts", type=int, default=None)
    parser.add_argument("--balanced", action="store_true", help="a teacher whose output weights alternate in sign")
    parser.add_argument("--data-seed", type=int, default=0)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print("| N | GD normalized margin | GD s | status | normalized margin | s | regions (last walk) |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        r = run(n, args.time_limit, args.starts, args.balanced, args.data_seed)
        print(f"| {n} | {_number(r['gd']['normalized_margin'])} | {r['gd']['seconds']:.2f} | {r['status']} | "
              f"{_number(r['normalized_margin'])} | {r['seconds']:.1f} | {r['regions']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
