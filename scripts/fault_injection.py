"""Named faults in the verification code, each of which must fail at least one test (docs/mutation_testing.md).

    python scripts/fault_injection.py            # every fault; exit code 1 if a fault goes unnoticed
    python scripts/fault_injection.py --list

mutmut (scripts/mutation.py) mutates function bodies only; these faults include module constants
(VIOLATION_TOL) and are stated as the issue states them.  Each is applied as a textual patch to a copy of
the package in a temporary directory, and the verification tests (tests/verification) run against the copy
with -x: the fault must make them fail.  A patch that no longer matches the source is reported, so the
list stays honest when the code changes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name -> (file, [(original text, faulty text), ...], tests to run)
FAULTS = {
    "complementarity residual always 0": (
        "lexmargin/nlp/certify.py",
        [("return float((lam * np.abs(c[~eq])).max(initial=0.0)) / scale", "return 0.0")],
        "tests/verification/test_verify_certify.py"),
    "decrement never computed (stationarity relative to the terms alone)": (
        "lexmargin/nlp/certify.py",
        [("return KKTReport(residuals(ext, lam, terms, diagonal, lagrangian,",
          "return KKTReport(residuals(ext, lam, terms, None, lagrangian,")],
        "tests/verification/test_verify_certify.py"),
    "IPOPT's interior point at its iteration limit never finished": (
        "lexmargin/nlp/finish.py",
        [("if not result.converged and not (always and not vertex and result.status != Status.MAX_TIME",
          "if not result.converged and not (False")],
        "tests/verification/test_verify_ipopt_finish.py"),
    "multipliers along exact dependencies measured as given (their cancelling terms kept)": (
        "lexmargin/nlp/certify.py",
        [("    if not terms > CANCELLATION * balance or not np.isfinite(J).all():",
          "    if True:")],
        "tests/verification/test_verify_certify.py"),
    "decrement without its rounding bound": (
        "lexmargin/nlp/certify.py",
        [("excess = np.maximum(residual - rounding_bound(multipliers, terms), 0.0)[curved]",
          "excess = residual[curved]")],
        "tests/verification/test_verify_certify.py"),
    "depth stage objective judged at 2 ||theta||_inf over every parameter (the rule before 2026-12-02)": (
        "lexmargin/problems/depth.py",
        [("scale[objective_columns] = 2.0 * np.maximum(np.maximum(own, np.max(own)), size)",
          "scale[objective_columns] = 2.0 * size_all"),
         ("    own = np.abs(z[objective_columns])\n", "    own = np.abs(z[objective_columns])\n    size_all = size\n")],
        "tests/verification/test_verify_stages.py"),
    "depth stage at a saddle counted as a success": (
        "lexmargin/problems/depth.py",
        [("return self.certificate.success and not self.not_a_minimum", "return self.certificate.success")],
        "tests/verification/test_verify_stages.py"),
    "Pyomo: a KKT point at a kink of max / abs certified optimal": (
        "lexmargin/interop/pyomo.py",
        [("return (Status.REGION_BOUNDARY if found and status == Status.OPTIMAL else status), found",
          "return status, found")],
        "tests/verification/test_verify_pyomo.py"),
    "finish skipped beside a degenerate row (slack and multiplier both ~ sqrt(mu))": (
        "lexmargin/nlp/finish.py",
        [("clear = (relative > CLEAR_SUPPORT) & (slack <= CLEAR_ACTIVE * relative)", "clear = relative > CLEAR_SUPPORT")],
        "tests/verification/test_verify_ipopt_finish.py"),
    "lexicographic width along the random direction only": (
        "lexmargin/problems/lexicographic.py",
        [("    return spread(stages, *ends)", "    return max(0.0, float(direction @ (ends[1] - ends[0])))")],
        "tests/verification/test_verify_stages.py"),
    "dual-feasibility residual always 0": (
        "lexmargin/nlp/certify.py",
        [("return float(negative[~eq].max(initial=0.0)) / scale", "return 0.0")],
        "tests/verification/test_verify_certify.py"),
    "stationarity against the largest component's terms (one norm)": (
        "lexmargin/nlp/certify.py",
        [("return float((residual * factors).max(initial=0.0)) / scale",
          "return float(residual.max(initial=0.0)) / scale")],
        "tests/verification/test_verify_certify.py"),
    "margin rows at the rows' common scale (max_n ||grad f_n||)": (
        "lexmargin/problems/paths.py",
        [("return np.maximum(own, max(LEVEL_FLOOR * common, TINY))", "return np.full(f.size, max(common, TINY))")],
        "tests/verification/test_verify_paths.py"),
    "IPOPT's certified point of a linear-margin NLP kept unfinished": (
        "lexmargin/nlp/finish.py",
        [("always = nlp.hessian_diagonal or nlp.linear_margins", "always = nlp.hessian_diagonal")],
        # (tests/test_paths.py::test_margin_path_of_a_linear_model_is_finished_where_terms_cancel caught it until
        # IPOPT's point there came to be finished on other grounds, on an AMD EPYC machine: a test of the rule itself)
        "tests/verification/test_verify_ipopt_finish.py::test_finish_or_keep_decisions"),
    "LICQ always holds": (
        "lexmargin/nlp/certify.py",
        [("return LICQ(m, rank, smallest, rank == m)", "return LICQ(m, rank, smallest, True)"),
         ("1.0 if distinct.size == m else 0.0, distinct.size == m)", "1.0 if distinct.size == m else 0.0, True)")],
        "tests/verification/test_verify_certify.py"),
    "LICQ rank counts every nonzero singular value": (
        "lexmargin/nlp/certify.py",
        [("rank_other = int(np.count_nonzero(s > rank_tol * top)) if top > 0 else 0",
          "rank_other = int(np.count_nonzero(s > 0))")],
        "tests/verification/test_verify_certify.py"),
    "working-set acceptance VIOLATION_TOL 1e-9 -> 1e-3": (
        "lexmargin/problems/maxmargin.py",
        [("VIOLATION_TOL = 1e-9", "VIOLATION_TOL = 1e-3")],
        "tests/verification/test_verify_maxmargin.py"),
    "dual route: violation tolerance VIOLATION 1e-13 -> 1e-3": (
        "lexmargin/problems/dual.py",
        [("VIOLATION = 1e-13 ", "VIOLATION = 1e-3 ")],
        "tests/verification/test_verify_dual.py"),
    "rows whose rounding matters neither re-evaluated nor bounded (UNRESOLVED 1e-2 -> inf)": (
        "lexmargin/nlp/certify.py",
        [("UNRESOLVED = 1e-2 ", "UNRESOLVED = np.inf ")],
        "tests/verification/test_verify_rounding.py"),
    "unresolved margin rows bounded, never re-evaluated exactly (no exact_values)": (
        "lexmargin/problems/maxmargin.py",
        [("exact = exact_values if source.linear and", "exact = None if source.linear and")],
        "tests/verification/test_verify_rounding.py"),
    "finish: a dependent row joins the working set without an exchange (DEPENDENT 1e-10 -> -1)": (
        "lexmargin/nlp/finish.py",
        [("DEPENDENT = 1e-10 ", "DEPENDENT = -1.0 ")],
        "tests/verification/test_verify_ipopt_finish.py"),
    "HiGHS's inequality marginals taken with their own sign (lambda <= 0)": (
        "lexmargin/nlp/highs.py",
        [("multipliers[~eq] = -np.asarray(lp.ineqlin.marginals, dtype=float)",
          "multipliers[~eq] = np.asarray(lp.ineqlin.marginals, dtype=float)")],
        "tests/verification/test_verify_highs.py"),
    "HiGHS's bound multipliers not mapped back from the scaled variables": (
        "lexmargin/nlp/highs.py",
        [("np.asarray(lp.lower.marginals, dtype=float) / scale", "np.asarray(lp.lower.marginals, dtype=float)")],
        "tests/verification/test_verify_highs.py"),
    "Farkas weights without iterative refinement (REFINE_STEPS 2 -> 0)": (
        "lexmargin/problems/separability.py",
        [("REFINE_STEPS = 2 ", "REFINE_STEPS = 0 ")],
        "tests/verification/test_verify_separability.py"),
    "dual route: inconsistent rows only at rho exactly 0 (RHO_ROUNDING 16 eps -> 0)": (
        "lexmargin/problems/dual.py",
        [("RHO_ROUNDING = 16 * np.finfo(float).eps", "RHO_ROUNDING = 0.0")],
        "tests/verification/test_verify_dual.py"),
}


def inject(name: str, verbose: bool = False) -> tuple[bool, str]:
    """(caught, detail) for one fault."""
    path, patches, tests = FAULTS[name]
    with tempfile.TemporaryDirectory(prefix="lexmargin-fault-") as tmp:
        shutil.copytree(ROOT / "lexmargin", Path(tmp) / "lexmargin",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "tests", Path(tmp) / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        target = Path(tmp) / path
        source = target.read_text()
        for original, faulty in patches:
            if source.count(original) != 1:
                return False, f"the patch no longer applies: {original!r} occurs {source.count(original)} times"
            source = source.replace(original, faulty)
        target.write_text(source)
        env = {**os.environ, "PYTHONPATH": tmp + os.pathsep + os.environ.get("PYTHONPATH", "")}
        check = subprocess.run([sys.executable, "-c", "import lexmargin; print(lexmargin.__file__)"], cwd=tmp,
                               env=env, capture_output=True, text=True)
        if not check.stdout.strip().startswith(tmp):
            return False, f"the faulty copy is not the one imported: {check.stdout.strip() or check.stderr}"
        run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", tests], cwd=tmp,
                             env=env, capture_output=not verbose, text=True)
        lines = (run.stdout or "").strip().splitlines()
        failed = [line for line in lines if line.startswith("FAILED")]
        if run.returncode == 1 and failed:
            return True, failed[0].removeprefix("FAILED ")
        return False, f"pytest exit code {run.returncode}: {lines[-1] if lines else ''}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(FAULTS))
        return 0
    missed = 0
    for name in FAULTS:
        started = time.perf_counter()
        caught, detail = inject(name, args.verbose)
        missed += not caught
        print(f"{'caught' if caught else 'MISSED'}  {name}  ({time.perf_counter() - started:.0f} s): {detail}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
