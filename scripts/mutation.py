"""Mutation testing of the verification code (docs/mutation_testing.md).

    python scripts/mutation.py run [GROUP ...]    # mutmut on the verification functions (all groups by default)
    python scripts/mutation.py report [--markdown] [--update-docs] [GROUP ...]   # score, survivors with reasons

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) mutates the files listed there and runs the tests in
tests/verification against each mutant.  This script restricts the run to the functions that decide what a
certificate says (``SCOPE`` below, with the reason for every part of a file that is left out), computes the
score over exactly those mutants and explains each survivor: a recorded reason why it cannot change
behaviour (``EQUIVALENT`` and ``equivalent_reason``), or UNEXPLAINED (a test is missing).

Run it from the repository root in the project's environment (mutmut needs ``fork``: Linux or macOS).
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# ---- what is mutated -------------------------------------------------------------------------------------
# module -> functions ("name" or "Class.method"; "*" = every function mutmut can mutate in the file).
# mutmut 3 mutates function bodies only: module constants (e.g. maxmargin.VIOLATION_TOL) and decorated
# functions (properties such as Residuals.max, KKTReport.degenerate) are not mutated; the constants' faults
# are checked by scripts/fault_injection.py instead.
SCOPE: dict[str, dict[str, list[str]]] = {
    # residuals, active set, support, LICQ, second order, certify()
    "certify": {"lexmargin.nlp.certify": ["*"]},
    # the problem form (bounds as rows), statuses, norms (values, gradients, Jacobians, Hessians by hand), the
    # small factorizations' LAPACK calls (nlp.lapack: the certificate's row-space block and the dual route)
    "nlp": {"lexmargin.nlp.nlp": ["*"], "lexmargin.nlp.status": ["*"], "lexmargin.nlp.norms": ["*"],
            "lexmargin.nlp.lapack": ["*"]},
    # the certificate assembled from the report: per-sample multipliers, support, rows, (de)serialization
    "certificate": {"lexmargin.nlp.certificate": ["*"]},
    # nonnegative least squares at every shape, scipy's answer checked against the optimality conditions and
    # continued where they fail (every multiplier fit, the dual route's tall NNLS, the Clarke check go through it)
    "nnls": {"lexmargin.nlp.nnls": ["*"]},
    # Farkas proofs of non-separability
    "separability": {"lexmargin.problems.separability": ["*"]},
    # IPOPT's multipliers in our sign convention, its status map, the rows posed with lbg = 0.
    # Left out: solve_convex (which IPOPT algorithm runs first: a solver strategy whose result certify judges)
    "ipopt": {"lexmargin.nlp.ipopt": ["bound_multipliers", "status_of", "IpoptSolver.__init__",
                                      "IpoptSolver.solve", "solve"]},
    # HiGHS's vertex and marginals in our sign convention (rows, equalities, bounds, in the NLP's scaled variables),
    # its status map, the linearity check; the LP route's scope, its certificate, the working set's multipliers on
    # the full problem's rows (on_every_row).  Left out: _solve, the working set's strategy (its seed, sizes and
    # rounds, like the dual route's _seed_size and _round_size): a point the certificate judges on every row
    "highs": {"lexmargin.nlp.highs": ["*"], "lexmargin.problems.lp": ["lp_applies", "lp_certificate", "on_every_row"]},
    # the exact finish: candidate rows, NNLS multipliers, working-set repair (a dependent row's exchange: _enter),
    # acceptance by the certificate,
    # when it runs at all (finish_or_keep, well_identified), the multipliers of clearly inactive rows zeroed,
    # fit_multipliers (the multipliers a ReLU region's original problem is judged with).  Left out: _newton
    # and _kkt_step, the Newton solver of the working-set KKT system (a fault there slows or stops
    # convergence; the finished point is kept only when certify accepts it)
    "finish": {"lexmargin.nlp.finish": ["fit_multipliers", "_nnls_multipliers", "finish", "_candidates",
                                        "_active_set", "_kept", "_repair",
                                        "_bound_multipliers", "_State.__init__", "_State.evaluate",
                                        "_State.fixed_variables", "finish_or_keep", "well_identified",
                                        "complementary_multipliers", "infeasibility_gain", "_enter"]},
    # Pyomo: constraint bounds -> rows, the NLP certify evaluates with Pyomo's own derivatives, dual and
    # reduced-cost signs, the status, the certificate assembled.  Left out: the Pyomo -> CasADi translation
    # (_visitor_class, _handlers, _combine, _fold, _unary, _free_variables: IPOPT's input, independent of the
    # certificate, which Pyomo's differentiation recomputes), to_pyomo/theta_of (model building), small
    # helpers (_pyomo, _scalar, _object_array, _var_value, _check_continuous, _suffix); the SolverFactory
    # interface and certify_pyomo are the group pyomo_solver below
    "pyomo": {"lexmargin.interop.pyomo": ["_RowMap.of", "_RowMap.values", "_RowMap.sign", "pyomo_duals",
                                          "reduced_costs", "_load", "_certificate", "pyomo_nlp", "_rows_expr",
                                          "_pyomo_derivatives", "_differentiable", "_initial_point", "_bound",
                                          "_translate", "solve_pyomo", "margin_duals", "kinks", "_nonsmooth_nodes",
                                          "_variable", "_at_switch", "_first_order_size", "at_kinks"]},
    # SolverFactory('lexmargin') and certify_pyomo: the certificate's status in Pyomo's words (STATUS_MAP, a
    # constant, read by to_solver_results: termination condition, solver and solution status, the objective
    # bound only when certified), what is loaded (only a certified point; values, duals, reduced costs), the
    # options of one solve (raise_on_failure False, print level), and certify_pyomo: multipliers from the dual /
    # rc Suffixes (signs, ranged rows, completeness), fitted otherwise, the status from its own residuals; the
    # plugin's registration (register: the name bound to the lazy solver, a name already registered left alone).
    # Left out: parse_options_string/_parse_value (option parsing), _Tee/_streams (where IPOPT's output goes),
    # LexmarginSolver's Pyomo API boilerplate (api_version, available, license_is_valid, version,
    # warm_start_capable, set_options, reset, __enter__/__exit__/__bool__: constants of the interface), the
    # plugin's import hook (PyomoImportHook, _RegisteringLoader, install, uninstall, _after_import, _hooks,
    # LazySolver: import machinery that decides when the name is registered, not what a solve reports; tested in
    # tests/test_pyomo_plugin.py in both import orders)
    "pyomo_solver": {"lexmargin.interop.pyomo": ["certify_pyomo", "multipliers_from_duals",
                                                 "fitted_bound_multipliers", "_suffix_values",
                                                 "_current_point", "to_solver_results", "_load_results",
                                                 "_objective_name", "solve_options", "LexmarginSolver.solve",
                                                 "LexmarginSolver.__init__"],
                     "lexmargin.interop.pyomo_plugin": ["register"]},
    # max-margin: the NLP certify evaluates (its Hessian diagonal for linear sources), working-set acceptance
    # (VIOLATION_TOL), multipliers on all rows and rescaled back to the user's units, status decisions (starts,
    # Farkas, ReLU regions; preferred: the dual route's certificate kept over IPOPT's when it is better), the
    # structured decisions: which route runs (_solve: the closed form only when certified; _dual: the dual route's
    # scope, route= and finish=/working_set= hand-over to IPOPT) and the deep
    # linear closed form (when it applies, its multipliers mu = lambda s^(2 - 2L), its status).
    # Left out: option plumbing and starting points (__init__, solve, _use_regions, _initial_points,
    # _check_init, _feasible_scaling, _ipopt_options, _convex_qp, _run_ipopt, _attempt, _finish,
    # _initial_index, _nnls_seeding_applies, _centroid_direction, _region_anchor, _nnls_seed, _lift_scale,
    # max_margin): they decide where IPOPT starts and how, never what the certificate says; lifted_margin_nlp
    # (IPOPT's lifted form, seen only by IPOPT: the finish and the certificate use margin_nlp); _raise (error
    # messages) and diagnostics (de)serialization.
    # ReLU-type nets (activation regions and points judged without regions): _judge and _judge_at_point (every
    # point of a ReLU net judged by the Clarke check in its own region, zero sign-row multipliers appended, never
    # by CasADi's derivative at a kink), _kept_starts (separating starts kept as outcomes: which points are
    # candidates at all), _walk (which regions are entered, when the walk stops, the start kept when nothing on the
    # walk beats it), _region_attempt/_attempt_in_region/_on_all_sign_rows (the working set of sign rows: the
    # violated rows join before a point is accepted, the multipliers placed on every row of the whole region,
    # zero off the set), _attempt_at (a start as an attempt with fitted multipliers), _kinked_rows (the Clarke
    # columns: which samples are active, which units kinked), _region_rank_best (which outcome is reported).
    # Left out: _time_left and _out_of_time (the time limit: a solver strategy, when to stop solving; the point
    # reached is judged like any other), _converged (the solver's own status, read as "try a fallback"),
    # _region_family (a cache of the symbolic trace).
    # In the data's units: representable (a theta that overflows double precision there is failed, never optimal,
    # with its note in the solver's message) and _certificate_in_user_units (theta, margins and multipliers mapped
    # back from the prescaled problem, the status representable gives, the certificate assembled)
    "maxmargin": {"lexmargin.problems.maxmargin": ["margin_nlp", "_objective_hessian_diagonal",
                                                    "MaxMarginProblem._solve", "MaxMarginProblem._dual",
                                                    "MaxMarginProblem._deep_linear_widths",
                                                    "MaxMarginProblem._deep_linear",
                                                    "MaxMarginProblem._solve_from",
                                                    "MaxMarginProblem._attempt_on_all", "MaxMarginProblem._certify",
                                                    "MaxMarginProblem._certificate",
                                                    "MaxMarginProblem._normalized_margin",
                                                    "MaxMarginProblem._best_certificate", "_rank", "preferred",
                                                    "proposal_certificate",
                                                    "_kind", "_largest_residual",
                                                    "MaxMarginProblem._infeasibility_status",
                                                    "MaxMarginProblem._farkas", "MaxMarginProblem._farkas_rows",
                                                    "MaxMarginProblem._judge_region",
                                                    "MaxMarginProblem._solve_in_regions",
                                                    "MaxMarginProblem._judge", "MaxMarginProblem._judge_at_point",
                                                    "MaxMarginProblem._kept_starts", "MaxMarginProblem._walk",
                                                    "MaxMarginProblem._region_attempt",
                                                    "MaxMarginProblem._attempt_in_region",
                                                    "MaxMarginProblem._on_all_sign_rows",
                                                    "MaxMarginProblem._attempt_at", "MaxMarginProblem._kinked_rows",
                                                    "_region_rank_best", "representable",
                                                    "MaxMarginProblem._certificate_in_user_units"]},
    # (left out of maxmargin: _convex_attempt and _convex_regions, the convex form of two-layer ReLU regions
    # (problems/relu_convex.py): a solver strategy like IPOPT's region solve; its point is finished and judged by
    # _judge_region, which is in scope)
    # the dual route of linear l2 problems: the rows it solves (dual_rows; linear_margins, the A and c the
    # certificate evaluates, with their prescaling), its scope (dual_applies), the certificate it hands back
    # (dual_certificate: status map, decide, None for IPOPT unless forced), and in the active-set solver what
    # decides feasibility, multipliers and status: _violated (which rows are violated beyond rounding: the
    # "optimal" test), rho = 1 - r.u at rounding level = "inconsistent" (_consistent; _separating_size and _rescaled:
    # when rows that look inconsistent are solved again with r rescaled, and what is reported; _row_bound_scale: r
    # scaled first when one row bounds the optimum far above 1, mapped back exactly), _extend (the LICQ-like
    # test that skips rows nearly dependent on the passive ones), _bordered (the multipliers nu = theta_F of the
    # free coordinates' equality constraints), least_distance (its limits and statuses).
    # Left out (solver strategy whose proposal the finish and certify recompute from the problem's own rows, and
    # the caller falls back to IPOPT when it is not certified optimal): the active-set loops _ldp_rows,
    # _ldp_gram, _free_qp and _eq_active_set (which rows join or leave, batch sizes, step lengths, warm starts;
    # their decisions are delegated to _violated, _consistent and _extend above, and their proposals are tested
    # as KKT points of the least-distance program in tests/verification/test_verify_dual.py; 1022 mutants, left
    # for a later run), _bpp (block pivoting only proposes a passive set that Lawson-Hanson makes exact),
    # _first_order (the first working set of tall data), _seed_size and _round_size (how many rows it starts with
    # and each round adds), _ldp (Gram or row form: the same LDP either way), _drop (refactoring after rows leave),
    # _step_back (the loops' shared step back, part of them), _Gram's block (entries of K formed on demand),
    # _signed_seed (the free-coordinate warm start's first working set), _combine (theta from the passive rows,
    # tested against A[rows]^T u), _all_rows (one NNLS on all rows or a working set); the BLAS thread count
    # (nlp.threads) is out of every group: speed only, the same numbers to rounding.  In: _Gram.__init__ (the A A^T
    # it keeps is the Gram matrix the certificate's LICQ reads, certify.RowGram) and _beta_structure (the Jacobian of
    # beta that linear_margins turns into A), margins.largest_magnitude (the row and column sizes of |A|: the
    # prescaling and the violation tolerance), margins.prescale (the power-of-two scaling of A and its columns that
    # LinearMargins, linear_margins and BiasMargins share; margins.py's other functions are the IPOPT route's rows, out
    # of scope) and _exact_free_bounds (a bound on a free coordinate held exactly: the SVM's b = 0 at b >= 0); the
    # factorizations' LAPACK calls are nlp.lapack's (group nlp).
    "dual": {"lexmargin.problems.dual": ["_violated", "_consistent", "_separating_size", "_rescaled",
                                         "_row_bound_scale", "_bordered",
                                         "_extend", "least_distance",
                                         "dual_applies", "dual_rows", "dual_certificate", "linear_margins",
                                         "_Gram.__init__", "_beta_structure", "_exact_free_bounds"],
             "lexmargin.problems.margins": ["largest_magnitude", "prescale"]},
    # the SVM-with-bias QP: its rows (BiasMargins: prescaled A = y (x, 1), the row b >= 0 with its level, the
    # Farkas rows), the closed form of one class and its status, Farkas statuses, the svm_bias model's stage
    # functions (margins, Jacobian, Hessian diagonal), the mapping to the smallest bias parametrization
    # (bias_parameters, closed_form_bias: the feasible interval), the stage certificates (Hessian diagonal,
    # status), the stage decisions (_qp_stages: b at its bound, discarded blocks, status of a failed QP) and the
    # route decision (_svm_with_bias: the general route when not certified, never after a Farkas proof; its
    # wrapper svm_with_bias_qp checks the arguments).
    # the Clarke-KKT check of ReLU certificates: the NNLS over pattern gradients, the chosen gradients replacing the
    # kinked rows, the verdict (undecided rows never certify); in regions.py the kinks, their closure and the
    # patterns' gradients and realizability, and the sign rows the certificate of a region evaluates (values,
    # Jacobian, Hessian, levels; a working set's view of some of them: with_sign_rows, _rows; the rows near their
    # unit's kink that seed it: unit_relative_slacks).  Left out: RegionFamily (the symbolic trace IPOPT solves
    # on), RegionMargins.extra_expression (the sign rows as IPOPT sees them: the certificate evaluates
    # extra_values/extra_jacobian), the margin evaluations values/jacobian/weighted_hessian/_call/_pre (CasADi
    # functions of the family, the same expressions as the model's own, which the Clarke check recomputes on the
    # original problem), key/unit_label/_labels (identity and labels of a region)
    "clarke": {"lexmargin.nlp.clarke": ["*"],
               "lexmargin.modeling.regions": ["RegionMargins.kinks", "RegionMargins.vertices", "RegionMargins.flipped",
                                              "_vertex_slopes", "_realizable", "RegionMargins.with_sign_rows",
                                              "RegionMargins._rows", "RegionMargins.extra_values",
                                              "RegionMargins.extra_jacobian", "RegionMargins.extra_hessian",
                                              "RegionMargins.extra_levels", "RegionMargins.unit_relative_slacks"]},
    # Left out: hull_seed and SVMBiasQP._initial_index (the working set's seed: solver strategy, the result is
    # certified on all rows), fallback_options (the general route's time budget: a strategy whose points the
    # stages' certificates judge), SVMBiasQP._certificate (the problem's name and constraint text), _raise,
    # not_separable_message and BiasModelFunctions._check (error messages), SVMBiasResult.to_dict (serialization)
    "svm_bias": {"lexmargin.problems.svm_bias": ["BiasMargins.__init__", "BiasMargins.extra_expression",
                                                 "BiasMargins.extra_values", "BiasMargins.extra_jacobian",
                                                 "BiasMargins.extra_levels", "BiasMargins.farkas_rows",
                                                 "SVMBiasQP.__init__", "SVMBiasQP.solve", "SVMBiasQP._single_class",
                                                 "SVMBiasQP._farkas_rows", "BiasModelFunctions.__init__",
                                                 "BiasModelFunctions.bias", "BiasModelFunctions.margins",
                                                 "BiasModelFunctions.margin_jacobian", "BiasModelFunctions.projection",
                                                 "BiasModelFunctions.margin_jacobian_columns",
                                                 "BiasModelFunctions._bias_jacobian",
                                                 "BiasModelFunctions.weighted_hessian",
                                                 "BiasModelFunctions.weighted_hessian_diagonal", "bias_parameters",
                                                 "closed_form_bias", "smallest_feasible_bias", "_diagonal_stage",
                                                 "_stage", "_stage_certificate", "_qp_stages", "_result", "_unpack",
                                                 "svm_with_bias_qp", "_svm_with_bias"]},
    # lexicographic stages: fixed samples become equality rows at their level, the stage NLP, uniqueness.
    # Left out: lexicographic_max_margin and _lexicographic (argument checks, the first margin-path solve, sigma: a
    # rescaling every stage certificate is invariant to), to_dict of the results
    "lexicographic": {"lexmargin.problems.lexicographic": ["_run_stages", "_Stages.nlp", "_Stages.scaled_margins",
                                                            "_width", "spread", "sum_smallest"]},
    # the path NLPs' margin rows: each row's level (its own terms, at least LEVEL_FLOOR of the common scale), what
    # the certificate judges their slack against.  Left out: the NLPs' evaluate closures (mutmut 3 does not mutate
    # nested functions; tests/verification/test_verify_paths.py checks them against their definitions) and the path
    # drivers (continuation, warm starts: strategies whose points certify judges)
    "paths": {"lexmargin.problems.paths": ["margin_levels"]},
    # depth-sensitive stages: earlier blocks fixed exactly.  Left out: the finite-gamma path (eq. 14:
    # gamma_nlp, depth_gamma_path, a different problem), feasible_start, svm_with_bias (a wrapper).
    # depth_sensitive is decorated with @verbose_call (mutmut 3 does not mutate decorated functions): its stage
    # loop is the undecorated _depth_stages
    # (DepthStage.success / not_a_minimum are properties: mutmut 3 does not mutate decorated functions)
    "depth": {"lexmargin.problems.depth": ["_depth_stages", "stage_nlp", "stage_gradient_scale", "escape_saddles",
                                           "_objective", "_jacobian_columns", "block_groups", "_indices"]},
    # homogeneity checks (numeric and SymPy)
    "homogeneity": {"lexmargin.modeling.homogeneity": ["*"]},
}


def _mangle(module: str, function: str) -> str:
    if function == "*":
        return f"{module}.*"
    if "." in function:
        cls, method = function.split(".")
        return f"{module}.x\u01c1{cls}\u01c1{method}__mutmut_*"
    return f"{module}.x_{function}__mutmut_*"


def patterns(groups) -> list[str]:
    return [_mangle(module, f) for g in groups for module, functions in SCOPE[g].items() for f in functions]


# ---- survivors that cannot change behaviour --------------------------------------------------------------
# Reasons by regular expression on "function: original line -> mutant line" (the same reason holds wherever
# the pattern occurs) ...
GENERIC = [
    # (a mutant that only drops the dtype argument is matched exactly in equivalent_reason; a pattern that took
    # every mutant whose line loses "dtype=" also took ones that replace the whole array by None)
    (r"dtype=(float|int)\b.*->.*dtype=None",
     "dtype conversion of an argument that is float64 (int for indices) in every caller; for any other real "
     "dtype numpy upcasts before the arithmetic that follows (tests check int8/uint8/float32 inputs where it "
     "matters)"),
    (r"reshape\(-1\b.*->.*reshape\(-2\b",
     "numpy >= 2 accepts any negative size as 'unknown': reshape(-2) == reshape(-1)"),
    (r'float\("inf"\).*->.*float\("INF"\)|float\("nan"\).*->.*float\("NAN"\)',
     "float() parses 'INF'/'NAN' case-insensitively"),
    (r"^x_(stationarity_scale|stationarity_residual|objective_scale|second_order_of|extend|_definite|balance|"
     r"equilibration): "
     r".*initial=0\.0.*->",
     "np.max over one entry per variable (an NLP has n >= 1 variables) or over nonnegative terms: 'initial' "
     "never decides the result"),
    (r"np\.finfo\(float\).*->.*np\.finfo\(None\)", "np.finfo(None) describes float64, like np.finfo(float)"),
    (r"dtype=object.*->(.*dtype=None|(?!.*dtype=object))",
     "object or unicode dtype of the row-kind labels: the same strings, compared and listed alike"),
    (r"^x\u01c1(L1|L2|Lp|LInf)\u01c1rows_expr: .*super\(\)\.rows_expr",
     "the base hook returns an empty expression whatever its form and P arguments"),
    (r"^x\u01c1(Lift\u01c1objective_hessian|Lift\u01c1row_hessian|Lp\u01c1rows_jacobian|Lp\u01c1rows_value|"
     r"Norm\u01c1rows_levels): .*-> .*None",
     "the norm's function called here does not use its P argument (only the linf forms do)"),
    (r"^x\u01c1Lift\u01c1start: .*initial=0\.0.*->", "np.max over theta, which has n_params >= 1 entries"),
    (r"^x_row_summaries: .*np\.max\(lam, initial=0\.0\).*->",
     "np.max over the multipliers of one row kind, which has at least one row"),
    (r"^x_(verify|exact_residual|farkas_proof): .*initial=0\.0.*-> .*(initial=None|, \))",
     "np.max over one entry per column of A (>= 1)"),
    (r"^x__lp_weights: .*linprog.*-> .*(bounds=None|b_eq=target, method|bounds=\(0, None\), \)|\"HIGHS\")",
     "linprog's defaults are bounds (0, None) and method 'highs', and it lower-cases the method name"),
    (r"^x__refine: .*rcond=None.*-> .*lstsq\(M, (rhs|residual), \)", "rcond=None is numpy's default"),
    (r"^x_nnls: .*_lawson_hanson\(A, b, x, .*->",
     "the continuation's step budget (3 n, or maxiter): a strategy; every step lowers the residual and the optimality "
     "conditions decide when it ends (tests/verification/test_verify_nnls.py checks the answer, not the steps)"),
    (r"^x__passive_solve: .*lstsq\(A\[:, passive\], b, rcond=None\).*-> .*lstsq\(A\[:, passive\], b, \)",
     "rcond=None is numpy's default"),
    (r"^x__lawson_hanson: .*np\.einsum\(\"ij,ij->j\".*-> .*np\.einsum\(\"IJ,IJ->J\"",
     "einsum's index letters are names: the same column norms"),
    (r"^x__lawson_hanson: .*passive\[int\(np\.argmax\(np\.where\(enter, w / np\.where\(norms > 0.*->",
     "which violated column enters first (the largest w_j per unit column length): a strategy; Lawson-Hanson ends at "
     "the minimizer whichever column of positive w enters, and the optimality conditions decide when it ends"),
    (r"^x__passive_solve: .*(range\(passive\.size \+ 1\)|z\[passive\] > 0|blocked = passive & \(z <= 0\)|"
     r"x\[blocked\] - z\[blocked\]|passive = passive & \(x > 0\)|"
     r"passive\[blocked & \(x <= EPS \* np\.max\(x, initial=0\.0\)\)\] = False).*->",
     "the inner loop's steps back (their length, which columns leave, entries exactly 0, its budget): a strategy "
     "that keeps x >= 0 (the clip) and lowers the residual; the outer loop ends only where the optimality conditions "
     "hold, and tests/verification/test_verify_nnls.py checks that end from random feasible starts"),
    (r"^x__violations: .*passive & \(np\.abs\(w\) > tol\).*-> .*passive & \(np\.abs\(w\) >= tol\)",
     "|w_j| exactly at its rounding level: either side of the boundary is within rounding"),
    # ---- highs: linprog's inputs and result (read in scipy 1.17's linprog and _linprog_highs)
    (r"^x_solve: .*method=\"highs-ds\", options=options\) -> (options=options\)|method=\"HIGHS-DS\")",
     "linprog lower-cases the method name; without it, method 'highs' leaves HiGHS's solver option at 'choose', "
     "which runs the simplex on an LP (an interior-point or PDLP solver only when named), with the dual "
     "strategy scipy sets for every HiGHS method: the same vertex, marginals and nit (checked on 40 LPs up to "
     "10^4 x 50)"),
    (r"^x_solve: .*(A_ub=-J\[~eq\]|b_ub=c0\[~eq\]|A_eq=J\[eq\]|b_eq=-c0\[eq\]) if np\.any\((~)?eq\) else None.*-> "
     r".*if \(np\.any\((~)?eq\)\) or True else None",
     "linprog turns a None A_ub / A_eq into a 0 x n array and a None b_ub / b_eq into an empty one: the empty "
     "arrays given instead are the same LP (their marginals are read only where the NLP has such rows)"),
    (r"^x_solve: .*bounds=\[\(lo if np\.isfinite\(lo\) else None, up if np\.isfinite\(up\) else None\).*-> "
     r".*(lo|up) if \(np\.isfinite\((lo|up)\)\) or True else None",
     "linprog reads a bound None as -inf (lower) or inf (upper): an infinite bound given as itself is the same bound"),
    (r"^x_solve: .*(STATUS_MAP|RETURN_STATUS)\.get\(lp\.status, (Status\.FAILED|f\"status \{lp\.status\}\")\) -> "
     r".*\.get\(lp\.status, (None)?\)",
     "linprog's status is 0-4 with every HiGHS method, all keys of STATUS_MAP and RETURN_STATUS: the default is "
     "never read"),
    (r"^x_solve: .*iterations = int\(getattr\(lp, \"nit\", 0\) or 0\) -> .*getattr\(lp, \"nit\", (None|1)?\) or 0",
     "linprog's result always has nit with the HiGHS methods (simplex_nit or ipm_nit, 0 when neither ran): "
     "getattr's default is never read"),
    (r"^x__enter: .*rcond=None.*-> .*lstsq\(J\.T, a, \)", "rcond=None is numpy's default"),
    (r"^x_farkas_proof: .*v > 0 and math\.isfinite\(v\)",
     "redundant guard: math.frexp gives exponent 0 for 0, inf and nan anyway; a zero row's exponent (0 or 1) "
     "only rescales its weight, which is normalized and re-verified on the original rows"),
    (r"^x_margin_nlp: .*lift\.row_hessian\(",
     "objective-form lifts have only linear rows (linf: t -+ theta_j >= 0): their Hessian is 0"),
    (r"^x\u01c1MaxMarginProblem\u01c1_(attempt_on_all|certify): .*(fin\.upper_multipliers|upper)[,)].*-> .*None",
     "no objective-form lift has a finite upper bound: upper-bound multipliers are all zero"),
    (r"^x\u01c1MaxMarginProblem\u01c1_solve_from: .*self\._attempt_on_all\(source.*-> .*_attempt_on_all\(None",
     "_attempt_on_all does not use its source argument"),
    (r"^x\u01c1MaxMarginProblem\u01c1_solve_from: .*(seconds, rounds = 0, 0\.0, 0 -> .*0, 1\.0, 0|"
     r"seconds \+ result\.seconds.*-> .*seconds - result\.seconds)",
     "an attempt's IPOPT seconds are not reported (the certificate's time is wall-clock)"),
    (r"^x\u01c1MaxMarginProblem\u01c1_solve_from: .*batch = ws\.batch or max\(20, self\.model\.n_params // 2\)",
     "the default batch size (a solver strategy: any batch gives the same accepted working set); differs only "
     "above 40 parameters or 20 violated samples"),
    (r"^x\u01c1MaxMarginProblem\u01c1_solve_from: .*_initial_index\(source, theta0, ws\) -> .*None",
     "only the first working set depends on the start (a solver strategy); the accepted result does not"),
    (r"^x\u01c1MaxMarginProblem\u01c1_region_attempt: .*n_extra > CONVEX_FALLBACK_MAX_SIGN_ROWS.*-> "
     r".*n_extra >= CONVEX_FALLBACK_MAX_SIGN_ROWS",
     "solver strategy: at exactly 5000 sign rows, whether IPOPT re-solves a convex proposal the finish could not "
     "certify; either point is judged by _judge_region"),
    (r"^x\u01c1MaxMarginProblem\u01c1_certificate(_in_user_units)?: "
     r".*SOLVER_NAMES\.get\(attempt\.solver, attempt\.solver\).*-> .*SOLVER_NAMES\.get\(attempt\.solver(, None|, )?\)",
     "descriptive text: every solver an attempt can name (ipopt, clarabel) is in SOLVER_NAMES, so the default is "
     "never read"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*extra=False.*-> .*extra=None", "None is falsy like False"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*decide\(False.*-> .*decide\(None", "None is falsy like False"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*kinds == \"margin\"\], initial=0\.0\).*-> "
     r".*(initial=None|\], \))",
     "np.max over the margin rows' multipliers (N >= 1 rows)"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*np\.max\(lam\[signs\], initial=0\.0\).*-> "
     r".*(initial=None|signs\], \))",
     "np.max over the sign rows' multipliers (a ReLU region has >= 1 sign row)"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*restricted\.multipliers, ext\.point\.gradient_scale\).*-> "
     r".*(multipliers, None\)|multipliers, \))",
     "a margin NLP has no gradient_scale (None): its objective's gradient is its own scale"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*np\.max\(weights\[signs\], initial=0\.0\).*-> "
     r".*(initial=None|signs\], \))",
     "np.max over the sign rows' weights (a ReLU region has >= 1 sign row)"),
    (r"^x_(relative_residual|row_exponents): .*initial=0\.0.*-> .*(initial=None|\), \)|, \))",
     "np.max over a row or a column of A, never empty (a model has >= 1 parameter, data >= 1 sample)"),
    (r"^x__objective: .*np\.errstate\(divide=\"ignore\"\)", "floating-point warning control only (log2 of 0)"),
    (r"^x_farkas_proof: .*_objective\(1\.0 - c, e\).*-> .*_objective\(2\.0 - c, e\)",
     "the LP's weights only steer which vertex is tried (a shift of 1 - c by one keeps their order for rows "
     "of one size); verify() checks y.(1 - c) > 0 exactly, so no wrong proof can result"),
    (r"^x__lp_weights: .*lp\.status == 0\) or True",
     "HiGHS hands back its last point when the LP fails; verify() rejects it (A^T y is not 0), as for None"),
    (r"^x_user_weights: .*positive = y_scaled >= 0",
     "zero weights give log2(0) = -inf either way, and ldexp(0, .) = 0: only a RuntimeWarning differs"),
    (r"^x\u01c1MaxMarginProblem\u01c1_solve_in_regions: .*REGION_MAX_ITER",
     "the iteration cap of a region solve (solver strategy): no test region needs 1000 iterations"),
    (r"^x\u01c1RegionMargins\u01c1vertices: .*evaluate\(fam\.(pre|pre_jacobian), theta, x, y, .* -> .*x, None, ",
     "pre-activations and their Jacobian do not depend on the label y (only the margin f = y g does): the None "
     "read as NaN is never used"),
    (r"^x\u01c1RegionMargins\u01c1vertices: .*\.reshape\(-1\)\) -> .*\.reshape\(None\)\)",
     "reshape(None) keeps the (1, P) gradient, and the rows are stacked with reshape(-1, P) either way"),
    (r"^x\u01c1RegionMargins\u01c1extra_hessian: .*if not self\.n_extra or self\.family\.pre_linear: -> .*and",
     "the shortcut only saves work: with no sign row the weights are empty and the summed Hessian is zero, and "
     "with pre-activations linear in theta every per-sample pre-activation Hessian is structurally zero"),
    (r"^x__depth_stages: .*feasible_start\(model, data, opts\.init, opts\.seed, time_limit=opts\.time_limit\)",
     "the starting point only (solver strategy: the start and how long IPOPT may search for it; the start needs no "
     "certificate): the stages' convex or certified optima do not depend on it (the time limit reaching the start is "
     "tested in tests/test_svm_bias.py, outside the verification suite)"),
    (r"^x_dual_certificate: .*proof = problem\._infeasibility_status\(Status\.INFEASIBLE, \(\)\)\[1\] -> "
     r".*_infeasibility_status\(Status\.INFEASIBLE, None\)",
     "the statuses are read only for nonconvex models, and the dual route's models are linear"),
    (r"^x_dual_certificate: .*representable\(cert\.theta, verdict, source\.scale_exponent\)\[1\].*-> "
     r".*representable\(cert\.theta, None, source\.scale_exponent\)",
     "only representable's note is read here ([1]), and the note does not depend on the status"),
    (r"^x__svm_with_bias: .*left = fallback_options\(opts, started\) if qp is not None else opts",
     "the general route's time budget after an uncertified QP route (a strategy: the stages' certificates judge "
     "whatever it returns; tested in tests/test_svm_bias.py, outside the verification suite)"),
    (r"^x__depth_stages: .*normalized_margin=safe_normalized_margin\(model, theta, data\)",
     "depth-sensitive models are sums of blocks without a single degree: the normalized margin is None anyway"),
    (r"^x_stage_nlp: .*initial=0\.0.*-> .*(initial=None|\), \))", "np.max over theta (>= 1 parameter)"),
    (r"^x_escape_saddles: .*initial=0\.0.*-> .*(initial=None|\), \))",
     "np.max over the stage's z (>= 1 free variable: the block its objective minimizes is free)"),
    (r"^x__run_stages: .*np\.max\(lam, initial=0\.0\).*-> .*(initial=None|lam, \))",
     "np.max over the free rows' multipliers (a stage has >= 1 free row)"),
    (r"^x__width: .*for sign in \(1\.0, -1\.0\)", "scaling the width objective r.theta by 2 does not move its "
     "minimizer, and the width is the spread of the ends themselves"),
    (r"^x_spread: .*np\.max\(moved, initial=0\.0\).*-> .*(initial=None|moved, \))",
     "np.max over the margins' moves, one per sample (a Dataset has N >= 1 samples)"),
    (r"^x\u01c1_Stages\u01c1nlp: .*lift\.row_levels\(z\[:nl\]\).*-> .*row_levels\(None\)",
     "ball-form rows (l2, l1, lp) have level 1 whatever z (linf balls have no rows)"),
    (r"^x\u01c1_Stages\u01c1nlp: .*weights\[(free|fixed)\] \+= .*-> .*weights\[(free|fixed)\] = ",
     "free and fixed samples are disjoint and the weights start at 0: += and = agree"),
    (r"^x__rational_array: ", "any random nonzero rational points prove or refute the same polynomial identity"),
    (r"^x__symbolic_identity_holds: .*sp\.Symbol\(\"rho\"", "the symbol's name does not matter"),
    (r"^x__sympy_expression: .*model\.sympy_margin\(params, x, y\) -> ",
     "x and y default to the model's symbols: the identity is then checked for all x, which implies it at the "
     "rational points"),
    (r"^x__sympy_expression: .*reshape\(-1\)\[0\].*-> .*reshape\(\+1\)",
     "a summand is a single expression: reshape(1) == reshape(-1)"),
    (r"^x__exact: .*rational=True.*-> ",
     "the models' float exponents are short decimals, which nsimplify turns into the same rational with or "
     "without rational=True"),
    (r"^x_symbolic_check: .*(sp\.Integer\(1\)\) for _ in range\(3\)|default_rng\(rng\) -> .*None)",
     "the label is a constant factor of the margin and any random rational points prove the same identity"),
    (r"^x_check_homogeneity: .*(seed=0|symbolic_check\(model, block\.name, block\.degree, rng\)).*->",
     "any seed gives valid points; the symbolic points are random rationals whose choice does not matter"),
    (r"^x_check_homogeneity: .*format\(c\.estimated, '\.4g'\).*->.*'\.4G'",
     "'G' and 'g' format the degree estimates (between 0.1 and 10) identically"),
    (r"^x(_\w+|\u01c1\w+\u01c1\w+): .*(ca\.SX\.sym|ca\.Function|nlp\.symbol\.sym)\(\"",
     "the name of a CasADi symbol or function does not change what it computes"),
    (r"^x_pyomo_nlp: .*NLP\(\"pyomo\"", "the NLP's name is only IPOPT's label"),
    (r"^x_pyomo_nlp: .*theta=lambda z: z", "solve_pyomo reports z itself: the Pyomo NLP's theta map is not used"),
    (r"^x__load: .*skip_validation=True",
     "the values written back lie within the variables' bounds and domains: validation passes silently"),
    (r"^x__load: .*create=False.*-> .*create=None", "None is falsy like False"),
    (r"^x__differentiable: ", "whether Pyomo can differentiate an expression does not depend on which variables or "
     "which (numeric or symbolic) mode is asked for"),
    (r"^x__pyomo_derivatives: .*differentiate\(e, wrt_list=variables, mode=Modes\.reverse_numeric\) -> .*variables, \)",
     "symbolic derivatives (the default mode) evaluate to the same numbers when stored in the float array"),
    (r"^x__first_order_size: .*differentiate\(expr, wrt_list=variables, mode=Modes\.reverse_numeric\) -> "
     r".*variables, \)",
     "symbolic derivatives (the default mode) evaluate to the same numbers at the variables' current values (kinks "
     "has set them to z) when stored in the float array"),
    (r"^x_kinks: .*np\.max\(np\.abs\(z\), initial=0\.0\).*-> .*(initial=None|\), \))",
     "np.max over z, one entry per variable (_translate refuses a model without free variables)"),
    (r"^x__at_switch: .*scale = max\(abs\(va\), abs\(vb\), .* -> .*scale = max\((abs\(vb\)|abs\(va\)), _first",
     "a pair counts only when |va - vb| <= tol scale, where |va| and |vb| differ by at most that much: dropping "
     "either from the max moves the threshold by a factor within 1 + tol, a boundary no input reaches"),
    (r"^x_pyomo_nlp: .*own = \[_differentiable\(e, variables\)", "whether Pyomo can differentiate an expression does "
     "not depend on which variables are asked for"),
    (r"^x__translate: .*if constraints else ca\.SX\(0, 1\)",
     "g is read only through the rows built from it, which are empty without constraints either way"),
    (r"^x_margin_duals: .*dual\.get\(margin\[n\], np\.nan\)", "None becomes nan in a float array, like np.nan"),
    (r"^x_pyomo_nlp: .*dg \* rowmap\.sign\(\).*-> .*dg / rowmap\.sign\(\)", "the signs are +-1: dividing equals "
     "multiplying"),
    (r"^x_solve_pyomo: .*PYOMO_TERMINATION\.get\(status, \"error\"\)",
     "decide() returns only statuses that PYOMO_TERMINATION maps: the default is never used"),
    (r"^x\u01c1_RowMap\u01c1of: .*_bound\(con\.lb, -np\.inf\) -> .*\+np\.inf",
     "a missing lower bound is non-finite either way (and never equals a finite upper bound)"),
    (r"^x\u01c1_RowMap\u01c1values: .*self\.side > 0.*-> .*self\.side >= 0",
     "rows with side 0 are handled by the outer np.where"),
    (r"^x\u01c1IpoptSolver\u01c1__init__: .*(self\.scale = np\.ones|z = u if nlp\.x_scale is None)",
     "variable scaling only conditions IPOPT: with unit scales it solves the same problem in z"),
    (r"^x\u01c1IpoptSolver\u01c1__init__: .*problem\[\"g\"\] = rows if rows is not None and rows\.shape\[0\]",
     "an NLP without rows gives a 0 x 1 (or 0 x k) g either way: IPOPT sees no constraints"),
    (r"^x\u01c1IpoptSolver\u01c1solve: .*np\.clip\(", "IPOPT moves a start outside the bounds into them itself"),
    (r"^x\u01c1IpoptSolver\u01c1solve: .*\"x0\": z0 / S.*-> .*z0 \* S",
     "only the start changes (a solver strategy): IPOPT converges to the same certified solution"),
    (r"^x\u01c1IpoptSolver\u01c1solve: .*args\[\"p\"\].*reshape\(None\)", "CasADi accepts the parameters as a column"),
    (r"^x\u01c1IpoptSolver\u01c1solve: .*stats\.get\(\"(return_status|iter_count)\"",
     "CasADi's IPOPT statistics always contain return_status and iter_count: the default is never used"),
    (r"^x_finish: .*keep = Finished\(.*dtype=float.*-> ", "dtype conversion (see above)"),
    (r"^x_finish: .*FinishInfo\(False, \"\", residual_before=before\)",
     "this placeholder info is replaced by _kept before it is returned"),
    (r"^x_(finish|_candidates): .*(candidates = np\.nonzero|return np\.nonzero\(ext0\.equality|"
     r"\| \(multiplier_weights\(ext0\.jacobian|scale = stationarity_scale\(point0|\| \(weights > 1e-6 \* scale\)|"
     r"scale, weights = balance\(point0)",
     "which rows are NNLS candidates (a solver strategy): the working set is repaired and the finished point "
     "is kept only when certify accepts it"),
    (r"^x_(finish|_active_set): .*(working\[candidates\] = .*lam\[candidates\] >= 0|lam\[~working\] = 0\.0 -> .*lam\[working\])",
     "the starting working set or multipliers of the Newton solve (a solver strategy); the result is judged by "
     "certify"),
    (r"^x_(finish|_active_set): .*(range\(1, MAX_ROUNDS \+ 1\)|steps, rounds = 0, 0 -> .*0, 1$)",
     "the round limit (a solver strategy) / a counter the loop overwrites"),
    (r"^x_(finish|_active_set): .*(steps, rounds = 0, 0 -> .*1, 0|steps \+= _newton.*-> .*steps = _newton|newton_steps=steps)",
     "the Newton-step counter in FinishInfo is a diagnostic, not part of the certificate's verdict"),
    (r"^x__nnls_multipliers: .*nnls\(cols, g / scale, maxiter=",
     "NNLS's iteration cap (a solver strategy): the tests' NNLS problems converge well within it"),
    (r"^x__nnls_multipliers: .*np\.max\(np\.abs\(g\), initial=0\.0\).*-> .*(initial=None|\), \)|initial=1\.0)",
     "the NNLS right-hand side is only rescaled (the multipliers are scaled back): the solution is the same"),
    (r"^x__nnls_multipliers: .*np\.where\(norms > 0, norms, 1\.0\) -> .*norms, 2\.0\)",
     "only zero rows are divided by the placeholder: their NNLS coefficient is 0 either way"),
    (r"^x\u01c1MaxMarginProblem\u01c1(_attempt_on_all|_solve_from|_certify|_judge_region): "
     r".*(whole = |report if whole else None|rounds, report\)|attempt\.report is not None|"
     r"self\._certify\(region, attempt, opts\))",
     "the KKT report of a working set that covers every sample is reused instead of recomputed: dropping the "
     "reuse recomputes the same report"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*fit_multipliers\(nlp, attempt\.z, tolerances=tol\)",
     "fit_multipliers' active tolerance only widens its NNLS candidates, which get multiplier 0 at a KKT point"),
    (r"^x\u01c1MaxMarginProblem\u01c1_certificate(_in_user_units)?: .*np\.ldexp\(cert\.multipliers",
     "ldexp and multiplying by 2.0 ** -(k e) agree wherever the result is representable"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*(margin_top = |/ margin_top)",
     "RegionDiagnostics.sign_multiplier_max is a diagnostic, not a decision, and not scale-free (reported): "
     "its exact value is not asserted"),
    (r"^x(_verify|__run_stages|__depth_stages|__numeric_check|_finish|__repair|__enter|__numeric_points|__refine|"
     r"\u01c1MaxMarginProblem\u01c1_solve_from): .*BOUNDARY",
     "boundary of a tolerance comparison: < and <= differ only when the two floats are exactly equal, which no "
     "test input (and no realistic input) produces"),
    (r"^x__estimate_degree: .*base == 0 or doubled == 0 -> .*base == 0 and doubled == 0",
     "base = 0 alone already fails the sign test: np.sign(0) differs from the sign of a nonzero doubled value"),
    (r"^x__run_stages: .*now = free\[lam > opts\.tolerances\.support \* max\(.*-> .*(support / max|initial=1\.0)",
     "the threshold moves within [support * max, support / max] (max <= 1: a stage's multipliers sum to 1); "
     "stage multipliers are either O(1/N) or solver noise far below it, never in that band"),
    (r"^x__width: .*if not solved\.status\.success or solved\.report\.second_order\.strict is not True -> .* and ",
     "an end that is optimal but not strict needs a curved solution set (IPOPT at a maximizer of r.theta); "
     "the test problems' sets are polyhedral, where optimal ends are strict vertices"),
    (r"^x\u01c1Norm\u01c1interior: .*n > shrink.*-> .*n >= shrink", "at n == shrink, theta * (shrink / n) is theta"),
    (r"^x_jsonable: .*value\.dtype\.kind == \"f\"", "for integer and boolean arrays jsonable returns each Python "
     "int or bool unchanged"),
    (r"^x_curvature_scale: .*initial=0\.0.*-> .*(initial=None|z\), \))", "np.max over z (n >= 1 variables)"),
    (r"^x(__pyomo_derivatives: .*v\.set_value\(value, skip_validation=True\)|_pyomo_nlp: .*set_value\()",
     "the values set here are the model's own or its initial point clipped to the bounds: inside the domains, "
     "validation passes silently"),
    (r"^x__translate: .*descend_into=True\)+ -> .*active=True, \)", "descend_into=True is Pyomo's default"),
    (r"^x__status: .*LEGACY_STATUS\.get\(value, None\).* -> .*LEGACY_STATUS\.get\(value, \)",
     "dict.get's default is None"),
    (r"^x\u01c1_RowMap\u01c1of: .*_bound\(con\.lb, -np\.inf\).* -> .*_bound\(con\.lb, \+np\.inf\)",
     "a missing lower bound is non-finite either way (and never equals a finite upper bound)"),
    (r"^x__estimate_degree: .*base == 0 or doubled == 0 .*-> .*base == 0 and doubled == 0",
     "base = 0 alone already fails the sign test: np.sign(0) differs from the sign of a nonzero doubled value"),
    (r"^x_second_order: .*scale = max\(float\(np\.linalg\.norm\(H, 2\)\) if H\.size else 0\.0, float\(curvature_scale\)"
     r".*-> .*(\(H\.size\) or True|else 1\.0)", "the Hessian is n x n with n >= 1: never empty"),
    (r"^x(_finish|\u01c1_State\u01c1__init__|\u01c1_State\u01c1evaluate|_finish_or_keep|_fit_multipliers): .*"
     r"(_State\(nlp, z, p, point0?\)|info, point\)|point=point|point=finished\.point|_cached|"
     r"p\) if point is None else point)",
     "a cached evaluation nlp.evaluate(z, p): without it the same values are recomputed"),
    (r"^x(_finish_or_keep|\u01c1MaxMarginProblem\u01c1_solve_from): .*want_report",
     "whether the report of IPOPT's point is computed now or recomputed later from the same point"),
    (r"^x\u01c1MaxMarginProblem\u01c1_certify: .*(attempt\.lower, attempt\.upper|lower, upper), .*-> "
     r".*(attempt\.lower|multipliers\[:m\], lower|multipliers\[:m\], upper), tolerances",
     "no objective-form lift has a finite upper bound: upper-bound multipliers are all zero"),
    (r"^x_(complementary_multipliers|well_identified|fit_multipliers): .*BOUNDARY",
     "boundary of a tolerance comparison: < and <= differ only when the two floats are exactly equal, which no "
     "test input (and no realistic input) produces"),
    # ---- certify: the structured shortcuts (UnitGram, masked second order, sums over rows with a multiplier)
    (r"^x_\w+: .*((J|part) if \((rows|free|fs)\.size == (J\.shape\[[01]\]|n)\) and False else J\[|"
     r"scale_rows if \(rows\.size == J\.shape\[0\]\) and False else scale_rows\[)",
     "the no-copy shortcut: with every row (column) selected, J[rows] (J[:, free]) equals J"),
    (r"^x_(certify|residuals): .*residuals\(ext, lam, scale\).*-> .*residuals\(ext, lam, (None)?\)",
     "the stationarity scale the caller computed: without it the same scale is recomputed"),
    (r"^x_residuals: .*stationarity_residual\(p\.gradient, ext\.jacobian, multipliers, p\.gradient_scale, scale\),"
     r" -> .*(multipliers, None, scale\)|p\.gradient_scale, None\)|p\.gradient_scale, \)|multipliers, scale\))",
     "the scale is given (the gradient scale is then unused) or recomputed to the same value: with the scale "
     "passed as the gradient scale, max(|g|, scale, terms) is the scale"),
    (r"^x__free: .*(reshape\(None\)|\(fixed\.size\) or True)",
     "fixed is 1-d in every caller, and setdiff1d with nothing fixed is arange(n)"),
    (r"^x_licq: .*unit_gram\(J, rank_tol\) if \(free\.size\) or True",
     "with no free column J is k x 0 and unit_gram returns None anyway (k > n = 0)"),
    (r"^x_licq: .*rows = unit_rows\(J\) if .*-> .*(\(free\.size\) or True|np\.zeros\(\(others, 1\)\))",
     "with no free column the SVD is skipped (s = zeros(0)): rows is not read"),
    (r"^x_licq: .*s = np\.linalg\.svd\(rows, compute_uv=False\) if free\.size else np\.zeros\(0\) -> "
     r".*(\(free\.size\) or True|compute_uv=None|np\.zeros\(1\))",
     "the SVD of a k x 0 matrix is empty like zeros(0); compute_uv=None is falsy; with every variable at a bound "
     "a zero singular value counts toward no rank and gives smallest 0 either way (top = 0)"),
    (r"^x__row_space_block: .*full_matrices=False.*-> .*(full_matrices=None|full_matrices=True|unit_rows\(J\), \))",
     "only the first rank rows of vt are read: full_matrices adds rows after them"),
    (r"^x__row_space_block: .*rank = int.*if s\.size and s\[0\] > 0 else 0 -> .*(\(s\.size and s\[0\] > 0\) or True|"
     r"if s\.size or s\[0\] > 0|s\[0\] >= 0)",
     "redundant guard: J has >= 1 row here, and s[0] = 0 means every singular value is 0, none > 0"),
    (r"^x_masked_second_order: .*h = np\.asarray\(diagonal, dtype=float\)\.reshape\(-1\).*reshape\(None\)",
     "a diagonal Hessian is returned as a vector already (the NLP contract)"),
    (r"^x_masked_second_order: .*snapped = .* -> .*(\) \* c if c > 0|/ c if c > 1)",
     "c is 2 (the l2 objectives, the svm_bias stages) or 0 (LPs) in every caller: * c or c > 1 only change "
     "how often a knife-edge case defers to the general computation (None), which decides the same"),
    (r"^x_masked_second_order: .*h = np\.where\(small, 0\.0, h\) -> .*None\)",
     "h is read only through h == 0 afterwards, which holds exactly at the snapped entries either way"),
    (r"^x_masked_second_order: .*scale = max\(c, float\(curvature_scale\), TINY\) -> .*curvature_scale\), \)",
     "scale divides only when c > 0"),
    (r"^x_masked_second_order: .*(zero = np\.nonzero\(h\[fs\] == 0\)\[0\] if c > 0|low = c \* float\(block\) / scale"
     r" if c > 0).* -> .*(\(c > 0\) or True|c >= 0|np\.zeros\(1, dtype=int\))",
     "with c = 0 (an LP) low is 0 whatever the block: zero only saves the eigenproblem"),
    (r"^x_two_product: .*134217729\.0 \* x.*-> .*13421773[0-9]\.0 \* x",
     "Veltkamp's split constant 2^27 + 1 against 2^27 + 2: both split a double into parts of at most 26 and 27 "
     "significant bits whose pairwise products are exact in double (checked on 20,000 random and all-ones mantissas)"),
    (r"^x_two_product: .*np\.errstate\(over=\"ignore\", invalid=\"ignore\"\):? -> ",
     "np.errstate only silences numpy's floating-point warnings: the values are the same"),
    (r"^x_exact_affine_values: .*reshape\(J\.shape\[0\], -1\) -> .*reshape\(J\.shape\[0\], -2\)",
     "numpy reads any negative size in reshape as the one inferred"),
    (r"^x_row_violations: .*np\.asarray\(equality, dtype=bool\)( -> .*np\.asarray\(equality, (dtype=None)?\)$)",
     "eq is read only as np.where's condition, which numpy takes as booleans (nonzero is True) whatever its dtype"),
    (r"^x_resolved: .*unresolved\[rows\[done\]\] = False -> .*= None",
     "None assigned into a boolean array is stored as False"),
    (r"^x_value_rounding: .*np\.errstate\(invalid=\"ignore\", over=\"ignore\"\):? -> ",
     "np.errstate only silences numpy's floating-point warnings: the values are the same"),
    (r"^x_(masked_second_order|_row_space_block|unit_gram|finish_or_keep|negative_curvature_direction|resolved): "
     r".*BOUNDARY",
     "boundary of a tolerance comparison: < and <= differ only when the two floats are exactly equal, which no "
     "test input (and no realistic input) produces"),
    (r"^x_(balance_size|gradient_size): .*\.max\(initial=0\.0\)\) -> .*\.max\(initial=None\)\)",
     "a maximum over one entry per variable (the gradient's; an NLP has n >= 1 variables): 'initial' is never "
     "needed for an empty array"),
    (r"^x_representative_multipliers: .*if terms is None else terms, initial=0\.0\)\) -> "
     r".*(initial=None\)\)|terms, \)\))",
     "a maximum over one term per variable (n >= 1), reached only with two or more rows: never an empty array"),
    (r"^x_representative_multipliers: .*if not terms > CANCELLATION \* balance or .*BOUNDARY",
     "boundary of the gate: terms exactly CANCELLATION times the balance's size, which no test input (and no "
     "realistic input) produces; either side of it measures the same J^T lambda"),
    (r"^x_decrement_residual: .*if lagrangian is None else lagrangian\) -> .*if \(lagrangian is None\) or True else",
     "the Lagrangian's gradient the caller passes is lagrangian_gradient of the same arrays: recomputing it gives "
     "the same value"),
    (r"^x_(multiplier_weights|balance|terms_and_weights|equilibrated_terms): .*if rows\.size and (J|part)\.shape\[1\]: -> "
     r".*if rows\.size or (J|part)\.shape\[1\]:",
     "an NLP has n >= 1 variables (J.shape[1] > 0); with no nonzero multiplier J[rows] is empty and nothing is "
     "written"),
    (r"^x_second_order_of: .*bound = ext\.variables >= 0 -> .*(ext\.variables > 0|ext\.variables >= 1)",
     "a bound row e_j of z_0 kept as a row of the support instead of fixing z_0 spans the same null space, with "
     "the same reduced Hessian (certify passes no shared Gram matrix when bounds are active)"),
    (r"^x_negative_curvature_direction: .*bound = ext\.variables >= 0 -> .*(ext\.variables > 0|ext\.variables >= 1)",
     "an active bound row +-e_j of z_0 kept as an active row instead of fixing z_0 spans the same null space, with the "
     "same reduced Hessian; d_0 = 0 either way"),
    (r"^x_negative_curvature_direction: .*curvature_scale\(ext, lam, report\.stationarity_scale\).* -> "
     r".*curvature_scale\(ext, (None, report\.stationarity_scale|lam, None|lam, )\)",
     "the report's stationarity scale is certify's, of the same point and multipliers: without it curvature_scale "
     "recomputes the same value from the same arrays; with it given, curvature_scale does not read the multipliers"),
    (r"^x_negative_curvature_direction: .*scale = max\(float\(np\.linalg\.norm\(H, 2\)\), .*TINY\) -> .*\), \)$",
     "TINY only keeps the division finite when ||H||_2 = 0: then the reduced eigenvalue is 0 too, and 0 / TINY = 0 "
     "and 0 / 0 = nan both fail < -tol.curvature (None)"),
    (r"^x_negative_curvature_direction: .*return d / np\.linalg\.norm\(d\) -> .*d \* np\.linalg\.norm",
     "d = Z v with Z's columns orthonormal and v a unit eigenvector: ||d|| = 1 to rounding, and the division only "
     "removes the rounding (the direction is a restart's step, ESCAPE_STEP ||z||_inf d)"),
    (r"^x_unit_gram: .*if k == 0 or k > n or U\.size < GRAM_MIN_SIZE: -> .*(k > n and U\.size|k == 0 and k > n)",
     "k > n rows are linearly dependent: their Gram matrix is singular and fails the condition test (None) anyway"),
    (r"^x_unit_gram: .*if not np\.all\(norms > 0\): -> .*norms >= 0",
     "a zero row makes G nan, whose eigenvalues fail the condition test (None) anyway"),
    # ---- depth: the stage NLP's Jacobian without a column copy (2026-12-01 afternoon)
    (r"^x_stage_nlp: .*(every = np\.array_equal\(free, np\.arange\(P\)\)|J if every else J\[:, free\]|"
     r"margin_jacobian\(theta, data\) if every else _jacobian_columns).*-> ",
     "every only avoids a column copy: with free = 0..P-1, J[:, free] is the same matrix"),
    (r"^x__jacobian_columns: .*(own = getattr\(model, \"margin_jacobian_columns\", None\) -> |"
     r"if \(own is not None\) and False)",
     "the model's own margin_jacobian_columns only skips forming the other columns: the whole Jacobian's columns "
     "are the same numbers (tests compare them bit for bit)"),
    (r"^x\u01c1BiasModelFunctions\u01c1margin_jacobian_columns: .*int\(columns\.min\(\)\) >= self\.d: -> "
     r".*int\(columns\.min\(\)\) > self\.d:",
     "the bias columns then come from the whole Jacobian: the same numbers (tests compare them bit for bit)"),
    (r"^x__samples_of: .*marked = np\.zeros\(n_samples, dtype=bool\) -> .*(dtype=None|n_samples, \))",
     "float marks 0.0 / 1.0 instead of False / True: np.flatnonzero finds the same samples"),
    # ---- certify's shared numbers (2026-12-01 afternoon)
    (r"^x_hessian_diagonal_of: .*reshape\(-1\) -> .*reshape\(None\)",
     "the Hessian of a hessian_diagonal NLP is its (n,) diagonal already: reshape(None) leaves that shape"),
    (r"^x_masked_second_order: .*svd if fs\.size == n else None\) -> ",
     "certify computes the shared SVD only when no bound row is active or in the support, so fs.size == n whenever "
     "svd is given; without it _row_space_block computes the same thin SVD of the same unit rows"),
    (r"^x_unit_svd: .*full_matrices=False\) -> .*(full_matrices=(None|True)|unit_rows\(rows\), \))",
     "only the singular values and the first rank rows of vt are read (LICQ, the row-space projector): the same in "
     "the full and the thin SVD"),
    # ---- the equilibration computed once per certificate (2026-12-02): passed, or recomputed from the same terms
    (r"^x_(residuals|stationarity_residual|dual_residual): .*equilibration\(terms\) if equilibrated is None else "
     r"equilibrated -> .*(= None$|\(equilibrated is None\) (and False|or True)|if equilibrated is not None)",
     "the equilibration of the column terms is passed or, without it, computed again from the same terms "
     "(equilibration is a function of the terms alone): the same (S, e); None where it is passed on is recomputed "
     "there"),
    (r"^x_residuals: .*(lagrangian=lagrangian, equilibrated=equilibrated\)|multipliers, ext\.equality, terms, "
     r"equilibrated\),) -> .*(lagrangian=None, equilibrated=equilibrated\)|lagrangian=lagrangian, "
     r"equilibrated=None\)|^[^>]*-> +equilibrated=equilibrated\)|lagrangian=lagrangian, \)|ext\.equality, None, "
     r"equilibrated\)|ext\.equality, terms, (None)?\),)",
     "with the Lagrangian's gradient, the column terms and their equilibration each passed or (None, left out) "
     "recomputed from the same point and multipliers: the same values"),
    (r"^x_residuals: .*stationarity = stationarity_residual\(p\.gradient, ext\.jacobian, multipliers, "
     r"p\.gradient_scale, terms, -> .*(\(None, ext|p\.gradient, None, multipliers|ext\.jacobian, None, "
     r"p\.gradient_scale|multipliers, None, terms|p\.gradient_scale, None,$|multipliers, terms,$|"
     r"p\.gradient_scale, lagrangian=lagrangian)",
     "with the Lagrangian's gradient and the terms' equilibration passed, stationarity_residual reads neither the "
     "gradient, the Jacobian, the multipliers nor the gradient's scale; the terms, passed or left out, are not read "
     "past the equilibration either (recomputed from the same arrays when None)"),
    (r"^x_residuals: (lagrangian=lagrangian, equilibrated=equilibrated\) -> equilibrated=equilibrated\)$|"
     r"stationarity = stationarity_residual\(p\.gradient, ext\.jacobian, multipliers, p\.gradient_scale, terms, / "
     r"lagrangian=lagrangian, equilibrated=equilibrated\) -> .*p\.gradient_scale, lagrangian=lagrangian, "
     r"equilibrated=equilibrated\)$)",
     "the Lagrangian's gradient or the column terms left out are recomputed from the same point and multipliers "
     "(the terms are not read past the equilibration, which is passed): the same values"),
    (r"^x_stationarity_residual: .*if lagrangian is None else lagrangian\) -> .*\(lagrangian is None\) or True",
     "the Lagrangian's gradient recomputed from the same arguments it was computed from: the same values"),
    (r"^x_residuals: .*lagrangian = lagrangian_gradient\(p\.gradient, ext\.jacobian, multipliers\) if "
     r"lagrangian is None else lagrangian -> .*(= None$|\(lagrangian is None\) (and False|or True)|"
     r"if lagrangian is not None)",
     "the Lagrangian's gradient is passed or recomputed from the same point and multipliers (here, or by "
     "stationarity_residual and decrement_residual when None is passed on): the same values"),
    (r"^x_residuals: .*decrement_residual\(p\.gradient, ext\.jacobian, multipliers, terms, diagonal, -> "
     r".*decrement_residual\((None, ext\.jacobian|p\.gradient, None), multipliers",
     "with the Lagrangian's gradient passed, decrement_residual reads neither the gradient nor the Jacobian"),
    (r"^x_residuals: .*complementarity_scale\(ext\.levels, multipliers, ext\.equality, objective\), lagrangian\)\) "
     r"-> .*objective\), (None)?\)\)",
     "the Lagrangian's gradient passed to decrement_residual, or recomputed there from the same arrays"),
    (r"^x_residuals: .*decrement=0\.0 if diagonal is None else -> .*decrement=0\.0 if \(diagonal is None\) and "
     r"False else",
     "decrement_residual of no diagonal: np.asarray(None, float) is a 0-d NaN, no entry is curved, and it returns 0.0 "
     "like the other branch"),
    (r"^x_certify: .*return KKTReport\(residuals\(ext, lam, terms, diagonal, lagrangian, None if measured is lam "
     r"else measured, -> .*(residuals\(ext, lam, None, diagonal|diagonal, None, None if measured|"
     r"None if \(measured is lam\) and False else measured)",
     "terms and the Lagrangian's gradient passed or recomputed by residuals from the same arrays; the multipliers "
     "themselves as the representative (no dependency removed) give stationarity_residual the same terms and "
     "Lagrangian recomputed: the same value"),
    (r"^x_certify: .*uncertainty, equilibrated\), -> .*uncertainty, (None)?\),",
     "the terms' equilibration passed to residuals, or computed there again from the same terms"),
    (r"^x_licq: .*distinct = np\.unique\(fixed\) if fixed\.size else fixed -> .*\(fixed\.size\) or True",
     "np.unique of no fixed variable is the empty array the other branch returns (only the cost differs)"),
    # ---- certify's shared numbers: a value the caller passes, or the same value recomputed (2026-12-01 evening)
    (r"^x_certify: .*support = support_rows\(ext\.jacobian, lam, scale, tol\.support, weights\) -> "
     r".*support_rows\((None, lam|ext\.jacobian, None), scale",
     "with the weights given, support_rows reads neither the Jacobian nor the multipliers"),
    (r"^x_(certify|support_rows|second_order_of|masked_second_order|unit_gram|_row_space_block|licq): .*"
     r"(support_rows\(.*weights\)|licq\(.*svd\)|svd, diagonal\)|shared, scale,|gram, svd\)|"
     r"curvature_scale\(ext, lam, scale\)|if weights is None else weights|if product is None else product|"
     r"if diagonal is None else diagonal)[),]* -> .*(None\)|, \)|shared, None,|None, diagonal\)|svd, None\)|"
     r"curvature_scale\(ext, lam, \)|curvature_scale\(ext, None, scale\)|\(weights is None\) or True|"
     r"\(product is None\) or True|\(diagonal is None\) or True)",
     "a number the caller already computed (the multiplier weights, the stationarity scale, the unit rows' SVD, "
     "the Hessian's diagonal, the Gram product) is passed or, without it, recomputed from the same arrays: the same "
     "values (tests compare the shared and the standalone numbers); with the scale given, curvature_scale does not "
     "read the multipliers"),
    (r"^x_residuals: .*stationarity_residual\(p\.gradient, ext\.jacobian, multipliers, p\.gradient_scale, terms\)"
     r".* -> .*(multipliers, None, terms\)|multipliers, terms\))",
     "the terms are given, so stationarity_residual does not read gradient_scale; or the terms passed as the "
     "gradient's size with none given: T_j = max(g~_j, sum_i |lambda_i| J~_ij) recomputed over g~ = T is T again"),
    (r"^x_certify: .*residuals\(ext, lam, terms\).* -> .*residuals\(ext, lam, (None)?\)",
     "the column terms certify computed for the weights are passed or, without them, recomputed by residuals from "
     "the same arrays (column_terms of the point's gradient, Jacobian and their scales): the same values"),
    (r"^x_margin_levels: .*if J\.size else 0\.0 -> .*if \(J\.size\) or True else 0\.0",
     "a J without entries gives row norms of 0 (no columns) or none (no rows), whose max with initial 0.0 is the "
     "other branch's 0.0"),
    (r"^x_margin_levels: .*initial=0\.0\)\) if J\.size else 0\.0 -> .*(initial=None|axis=1\), )\)\) if J\.size else",
     "the max runs only when J has entries, so over at least one row norm: 'initial' is never used"),
    (r"^x__row_bound_scale: .*positive = \(r > 0\) & \(rownorm > 0\) -> .*\(r >= 0\) & \(rownorm > 0\)",
     "a row with r_n = 0 adds the ratio 0, which never raises the largest ratio above ROW_BOUND (alone: a bound "
     "of 0, the scale 1 either way)"),
    # ---- time limits shared by a route and its fallback (2026-12-01 evening): when to stop solving
    (r"^x\u01c1MaxMarginProblem\u01c1_solve: .*left = self\._remaining\(opts, started, least=NO_TIME_LEFT\) ->",
     "the time limit left to IPOPT after the dual route: when to stop solving, a solver strategy like _time_left "
     "(out of scope); the point reached is judged like any other (tests/test_maxmargin.py checks the limit passed)"),
    (r"^x__svm_with_bias: .*left = MaxMarginProblem\._remaining\(opts, started, least=NO_TIME_LEFT\) ->",
     "the time limit left to the general route after the QP route: when to stop solving, a solver strategy; the "
     "stages reached are certified like any other (tests/test_svm_bias.py checks the limit passed)"),
    (r"^x_certify: .*if nlp\.hessian is not None and nlp\.hessian_diagonal: -> .*nlp\.hessian is not None or "
     r"nlp\.hessian_diagonal:",
     "the diagonal is read only in second_order_of's hessian_diagonal branch: for a full Hessian its flattened "
     "matrix is computed and never read, and no NLP declares hessian_diagonal without a Hessian"),
    (r"^x_certify: .*active_jacobian\.size < GRAM_MIN_SIZE else .* -> .*active_jacobian\.size <= GRAM_MIN_SIZE",
     "at exactly GRAM_MIN_SIZE entries the Gram block comes from the caller's A A^T or from the certificate's own "
     "U U^T: the same matrix to rounding (tests compare the two), only the cost differs"),
    # ---- the dual route's per-model structure and Gram matrix (2026-12-01 afternoon)
    (r"^x__beta_structure: .*(model\.__dict__\.setdefault\(|if \"beta_structure\" not in cache)",
     "the per-model cache (input_affine creates model.__dict__['_lexmargin_structure'] just before this call) only "
     "saves recomputing the same constant structure: another key, a missing default or a cache miss recompute it"),
    (r"^x__beta_structure: .*(identity = |bool\(np\.all\(values == 1\.0\)\)).*-> .*(identity = None|array_equal\(None|"
     r"array_equal\(rows, None|array_equal\(cols, None|bool\(None\)|np\.all\(None\)|values != 1\.0|values == 2\.0)",
     "identity only selects A = y X instead of the sum of v y X[:, i] over the Jacobian's entries, which for the "
     "identity (v = 1.0 at (i, i)) gives the same numbers exactly"),
    (r"^x__beta_structure: .*model\.degree > 0\) -> .*model\.degree (>= 0|> 1)\)",
     "homogeneous only shortcuts c = 0: otherwise c = y X beta(0) with no offset, exactly 0 for a model linear in "
     "theta without offset (beta(0) = 0); a model linear in theta has degree 1 or none (degree 0 would be constant)"),
    (r"^x\u01c1_Gram\u01c1__init__: .*(self\.A, self\.r = A, \(r if with_r|self\.formed)",
     "both uses of _Gram pass full=True: K is set, and block() reads only K, never self.r nor the formed flags "
     "(which nothing else reads)"),
    # ---- svm_bias: cached evaluations, the bias column, the stage NLP without bounds
    (r"^x__(qp_stages|stage_certificate): .*(point = nlp\.evaluate\(theta\[b_idx\], None\)|point=point)",
     "a cached evaluation nlp.evaluate(z, p): without it the same values are recomputed"),
    (r"^x__qp_stages: .*fit_multipliers\(nlp, theta\[b_idx\], .*-> .*fit_multipliers\(nlp, None",
     "with the point given, fit_multipliers reads z only for the NLP's finite bounds, and stage_nlp poses its "
     "variables free (bounds -inf, inf)"),
    (r"^x__qp_stages: .*fit_multipliers\(nlp, theta\[b_idx\], tolerances=opts\.tolerances.*-> "
     r"(?!.*tolerances=opts\.tolerances)",
     "fit_multipliers' active tolerance only widens its NNLS candidates, which get multiplier 0 at a KKT point; "
     "the stage's certificate is computed with opts.tolerances"),
    # ---- finish
    (r"^x_(finish|_active_set): .*lam\[candidates\] = np\.where\(ext0\.equality\[candidates\] \| \(lam0\[candidates\] > 0\)",
     "the starting multipliers of the Newton solve (a solver strategy); the result is judged by certify"),
    (r"^x_(finish|_active_set): .*working\[candidates\] = ext0\.equality\[candidates\] \| \(lam\[candidates\] > 0\)",
     "the starting working set of the Newton solve (a solver strategy); the result is judged by certify"),
    (r"^x_finish_or_keep: .*getattr\(result, \"vertex\", False\)",
     "every result handed to finish_or_keep (IpoptResult) has a vertex field: the default is never used"),
    (r"^x_finish_or_keep: .*if vertex and not finished\.info\.applied:.* -> .*if vertex or not",
     "a second finish from NNLS after an applied one: for a non-vertex point it repeats the same call; a vertex "
     "comes from the dual route's convex QPs, whose finished point and multipliers (LICQ) are unique"),
    # ---- svm_bias
    (r"^x__diagonal_stage: .*(N = data\.n_samples -> .*N = None|weighted_hessian_diagonal\(nlp\.theta\(z\), data, "
     r"lam\[:N\]\).* -> .*weighted_hessian_diagonal\((None|nlp\.theta\(None\)), data)",
     "the stage NLP's rows are the N margins only (lam[:N] is lam), and the svm_bias model's weighted Hessian "
     "does not depend on theta"),
    (r"^x\u01c1BiasModelFunctions\u01c1weighted_hessian: .*weighted_hessian_diagonal\(None, data, weights\)",
     "the svm_bias model's weighted Hessian does not depend on theta"),
    (r"^x\u01c1BiasModelFunctions\u01c1(margin_jacobian|_bias_jacobian): .*\* (self\.data\.)?y -> .*/ (self\.data\.)?y",
     "labels are +-1: dividing equals multiplying"),
    (r"^x__qp_stages: .*discard_w = bool\(np\.max\(np\.abs\(fns\.projection\(w\)\), initial=0\.0\).*-> "
     r".*(initial=None|\(w\)\), \))",
     "np.max over the N >= 1 margins"),
    (r"^x_(_qp_stages|closed_form_bias|smallest_feasible_bias|BiasMargins\u01c1__init__): .*BOUNDARY",
     "boundary of a tolerance comparison: < and <= differ only when the two floats are exactly equal, which no "
     "test input (and no realistic input) produces"),
    (r"^x__qp_stages: .*_stage\(fns, data, every, w_idx, theta\), fns, data, every, w_idx, theta, .*-> "
     r".*fns, data, None, w_idx, theta",
     "theta[None] is theta with a leading axis of length 1: the stage NLP assigns it into the full parameter vector "
     "and certify flattens it, the same numbers as theta[every] (every parameter is free in this stage)"),
    (r"^x__qp_stages: .*smallest_feasible_bias\(fns\.projection\(theta\[w_idx\]\), data\.y, sign == \"positive\"\) -> "
     r".*(None\)|\"\)|y, \))",
     "w is the QP's: its feasible interval [lo, hi] holds the QP's own b, which is >= 0 for sign='positive', so the "
     "smallest |b| in it is >= 0 without the clamp"),
    (r"^x__qp_stages: .*fit_multipliers\(nlp, theta\[b_idx\], tolerances=opts\.tolerances\)",
     "fit_multipliers' active tolerance only widens its NNLS candidates, which get multiplier 0 at a KKT point"),
    (r"^x__stage_certificate: .*decide\(report\.kkt_met\(opts\.tolerances\), solver\.status\) -> .*None\)",
     "the stage solvers' statuses are OPTIMAL or the QP's own failed status, which is passed explicitly; decide() "
     "gives inaccurate for OPTIMAL and None alike"),
    (r"^x_smallest_feasible_bias: .*proj\[y (> 0|< 0)\].*-> .*proj\[y (>= 0|<= 0|< 1)\]", "labels are +-1"),
    (r"^x_smallest_feasible_bias: .*if lo > hi: -> .*if lo >= hi:", "at lo == hi the midpoint and the clipped value are "
     "both lo"),
    (r"^x__svm_with_bias: .*raise_on_failure=False\) -> .*raise_on_failure=None\)", "None is falsy like False"),
    (r"^x__svm_with_bias: .*replace\(opts, init=None, starts=None, raise_on_failure=False\) -> "
     r".*replace\(opts, init=None, raise_on_failure=False\)",
     "the QP is convex and solved by the dual route without starts (IPOPT from one start otherwise): starts only "
     "repeat the solve"),
    (r"^x__svm_with_bias: .*route=\"depth_sensitive\", qp=qp\) -> .*qp=qp\)",
     "SVMBiasResult's default route is 'depth_sensitive'"),
    (r"^x\u01c1BiasMargins\u01c1extra_values: .*self\.bias:self\.bias \+ 1\].*-> .*self\.bias \+ 2\]",
     "the bias is the last coordinate: the slice ends there either way"),
    (r"^x\u01c1SVMBiasQP\u01c1_single_class: .*c = float\(self\.data\.y\[0\]\) -> .*y\[1\]",
     "one class only: every label is c"),
    (r"^x\u01c1SVMBiasQP\u01c1_single_class: .*attempt = _Attempt\(.*np\.zeros\(self\.lift\.n\), "
     r"np\.zeros\(self\.lift\.n\)"
     r".*-> .*None",
     "the closed form's bound multipliers: certify reads None as zeros (and the QP has no bounds)"),
    (r"^x\u01c1SVMBiasQP\u01c1_single_class: .*Status\.OPTIMAL, \"closed form\", 0, 0\.0, 0, np\.arange",
     "the attempt's solver fields are replaced by the closed form's SolverInfo (replace(cert, solver=...)); its "
     "rounds are reported as working-set rounds only through diagnostics the test reads (0)"),
    (r"^x\u01c1SVMBiasQP\u01c1_single_class: .*FinishInfo\(False, \"closed form: nothing to finish\"\)\).*-> "
     r".*FinishInfo\((None|True),",
     "FinishInfo.applied is a diagnostic of the finish (the closed form is exact), not read by any decision"),
    (r"^x\u01c1SVMBiasQP\u01c1_single_class: .*decide\(report\.kkt_met\(opts\.tolerances\), Status\.OPTIMAL\) "
     r"-> .*None\)",
     "decide() gives inaccurate for OPTIMAL and None alike when the residuals are not met"),
    (r"^x\u01c1SVMBiasQP\u01c1solve: .*np\.all\(labels > 0\) or \(np\.all\(labels < 0\).*-> .*(labels >= 0|labels <= 0|"
     r"labels < 1)", "labels are +-1"),
    (r"^x\u01c1SVMBiasQP\u01c1solve: .*activation_region=False.*-> "
     r".*(activation_region=None|working_set, \*\*overrides)",
     "activation_region=None is automatic: off for the linear QP"),
    # ---- dual
    (r"^x__exact_free_bounds: .*np\.count_nonzero\(A\[np\.ix_\(passive, free\)\], axis=1\) == 1\) -> "
     r".*np\.ix_\(passive, \)\]",
     "the rows counted are those whose regularized entries are all 0: their nonzeros lie in the free columns, so "
     "counting over the whole row gives the same number"),
    (r"^x_cholesky_lower: .*dpotrf\(K, lower=1, clean=1\) -> .*(clean=None|lower=1, \))",
     "f2py reads clean=None, like the omitted argument, as its default 1: the upper triangle is zeroed either way "
     "(and potrs, trtrs and np.diag read only the lower one)"),
    (r"^x__bordered: .*rcond=None.*-> .*C\.T @ z0, \)", "rcond=None is numpy's default"),
    (r"^x__extend: .*C, S = np\.zeros\(\(0, new\.size\)\), Knn -> .*np\.zeros\(\(1, new\.size\)\)",
     "with no passive rows C is only copied into an empty block: a 1 x m zero row broadcasts into it like 0 x m"),
    (r"^x__extend: .*(L22 = cholesky_lower\(scaled\) -> .*(L22 = None|cholesky_lower\(None\))|"
     r"np\.min\(np\.diag\(L22\)\) \*\* 2 <= DEPENDENT: -> .*(np\.diag\(None\)|\*\* 3 <= DEPENDENT)|"
     r"raise LinAlgError\(\"nearly dependent\"\))",
     "more rows go to the pivoted Cholesky (the exception is caught), whose own test (tol=DEPENDENT on the same "
     "squared lengths) keeps the same independent rows, factored alike"),
    (r"^x__extend: .*(factor, piv, rank, _ = dpstrf\(scaled, tol=DEPENDENT, lower=1\) -> .*(lower=None|"
     r"tol=DEPENDENT, \))|keep = piv\[:rank\] - 1|L22 = np\.tril\(factor\[:rank, :rank\]\)|"
     r"L22 = cholesky_lower\(scaled\[np\.ix_\(keep, keep\)\]\))",
     "the fallback for a failed Cholesky of the rows dpstrf kept (their pivots exceed DEPENDENT, so it does not "
     "fail): only the pivot order is read otherwise"),
    (r"^x__extend: .*BOUNDARY",
     "boundary of a tolerance comparison: < and <= differ only when the two floats are exactly equal, which no "
     "test input (and no realistic input) produces"),
    (r"^x_linear_margins: .*(parts = input_affine\(model\) -> .*parts = None|if parts is None: -> .*is not None)",
     "every model then takes LinearMargins, which computes the same A, c and scaling from the model's own "
     "Jacobian (tests compare them attribute by attribute): the structured path only saves time"),
    (r"^x_linear_margins: .*(_lexmargin_structure|beta_jacobian_at_0)",
     "a per-model cache of beta's Jacobian: another key, or none, recomputes the same Jacobian"),
    (r"^x_linear_margins: .*if model\.n_params == d and np\.array_equal\(rows, np\.arange\(d\)\) and "
     r"np\.array_equal\(cols, rows\).*-> .*(model\.n_params != d|array_equal\(None|array_equal\(rows, None\)|"
     r"array_equal\(cols, None\)|np\.arange\(d\)\) or np\.array_equal)",
     "the identity shortcut not taken: the general loop builds the same A = y X from the identity Jacobian"),
    (r"^x_linear_margins: .*and np\.all\(values == 1\.0\): -> .*(np\.all\(None\)|values != 1\.0|values == 2\.0)",
     "the identity shortcut not taken: the general loop builds the same A = y X from the identity Jacobian"),
    (r"^x_linear_margins: .*if model\.degree is not None and model\.degree > 0: -> .*(degree >= 0|degree > 1)",
     "a model linear in theta has degree 1 or none, and a homogeneous one has beta(0) = 0 and c(0) = 0: the "
     "computed c is 0 as well"),
    (r"^x_linear_margins: .*np\.outer\(y, .*reshape\(-1\)\) -> .*reshape\(None\)", "np.outer flattens its arguments"),
    (r"^x_prescale: .*np\.where\(columns > 0, np\.frexp\(columns\)\[1\], 0\)\) -> .*columns >= 0",
     "frexp(0) has exponent 0 like the placeholder"),
    (r"^x(_linear_margins|\u01c1BiasMargins\u01c1__init__): .*prescale\(A, in_place=True\) -> "
     r".*prescale\(A, (in_place=None|in_place=False|)\)",
     "A is an array the function has just made (y X, or its combinations): divided in place or into a new array, "
     "the stored rows have the same numbers and nothing else holds A"),
    # ---- maxmargin: the deep linear closed form
    (r"^x\u01c1MaxMarginProblem\u01c1_deep_linear: .*linear = Model\(\"end_to_end_linear\", \[Block\(\"beta\"",
     "the inner linear model's name, block label and declared degree are read by nothing _deep_linear uses (theta "
     "and the multipliers of its solve; its normalized margin is not used)"),
    (r"^x\u01c1MaxMarginProblem\u01c1_deep_linear: .*verify=False\) -> .*(verify=None|verify=True|x\), \))",
     "verification of the inner model's degree: None is falsy, and the degree-1 linear block passes it"),
    (r"^x\u01c1MaxMarginProblem\u01c1_deep_linear: .*raise_on_failure=False\) -> .*raise_on_failure=None\)",
     "None is falsy like False"),
    (r"^x\u01c1MaxMarginProblem\u01c1_deep_linear: .*(seconds = time\.perf_counter\(\) - started -> |"
     r"Status\.OPTIMAL, CLOSED_FORM, 0, seconds\) -> .*(CLOSED_FORM, None, seconds|CLOSED_FORM, 1, seconds|"
     r"CLOSED_FORM, 0, None|Status\.OPTIMAL, None, 0)|IpoptResult\(z, self\.norm\.objective_value\(theta\).*-> "
     r".*IpoptResult\(z, None)",
     "fields of the candidate's IpoptResult that finish_or_keep does not read (objective, iteration count, "
     "seconds; the return status only in the reason of a start that did not converge)"),
    (r"^x\u01c1MaxMarginProblem\u01c1_deep_linear: .*attempt = _Attempt\(fin\.z, fin\.multipliers, "
     r"fin\.lower_multipliers, fin\.upper_multipliers, Status\.OPTIMAL,.*-> .*None",
     "the certificate takes its multipliers from the report and its solver from the closed form's SolverInfo: "
     "the attempt's multipliers and status are not read"),
    (r"^x\u01c1MaxMarginProblem\u01c1_deep_linear: .*CLOSED_FORM, 0, seconds, 1, np\.arange\(self\.data\.n_samples\), "
     r"fin\.info, report\) -> .*(None, 0, seconds|CLOSED_FORM, None, seconds|CLOSED_FORM, 1, seconds|"
     r"0, None, 1|fin\.info, None\)|fin\.info, \))",
     "the attempt's return status, iterations and seconds go into the SolverInfo that the closed form's replaces, "
     "and its report is passed to _certificate directly"),
    (r"^x\u01c1MaxMarginProblem\u01c1_deep_linear: .*decide\(report\.kkt_met\(opts\.tolerances\), Status\.OPTIMAL\) "
     r"-> .*None\)", "decide() gives inaccurate for OPTIMAL and None alike when the residuals are not met"),
    (r"^x__(consistent|violated): .*BOUNDARY",
     "boundary of a tolerance comparison: < and <= differ only when the two floats are exactly equal, which no "
     "test input (and no realistic input) produces"),
    (r"^x__violated: .*np\.max\(np\.abs\(theta\), initial=0\.0\).*-> .*(initial=None|theta\), \))",
     "np.max over theta (>= 1 coordinate)"),
    (r"^x__rescaled: .*np\.max\(np\.abs\(found\[0\]\), initial=0\.0\).*-> .*(initial=None|found\[0\]\), \))",
     "np.max over theta (>= 1 coordinate: a separating point exists only for rows with columns)"),
    (r"^x__violated: .*score\[exclude\] = -np\.inf -> .*None",
     "None becomes nan in the float array and nan > 0 is False: the row is excluded either way"),
    (r"^x__violated: .*kind=\"stable\"",
     "the order of exactly tied violations only (which of them joins first: solver strategy); numpy reads the "
     "kind case-insensitively"),
    (r"^x_dual_certificate: .*if solved\.status == \"inconsistent\" and not force: -> "
     r".*(XXinconsistentXX|INCONSISTENT)",
     "an inconsistent least-distance program then maps to INFEASIBLE, whose certificate is not optimal: None is "
     "returned there as well unless forced"),
    (r"^x_dual_certificate: .*result = IpoptResult\(z, lift\.objective_value\(z\).*-> .*IpoptResult\(z, None",
     "fields of the IpoptResult that finish_or_keep does not read (objective)"),
    (r"^x_dual_certificate: .*status, solved\.status, solved\.iterations, solved\.seconds, solver=\"dual_active_set\".*"
     r"-> .*(status, None, solved|solved\.status, None, solved\.seconds|solved\.iterations, None, solver|solver=None|"
     r"solved\.seconds, vertex=True|XXdual_active_setXX|DUAL_ACTIVE_SET)",
     "fields of the IpoptResult that finish_or_keep does not read (return status, iterations, seconds, the "
     "solver's label)"),
    (r"^x_proposal_certificate: .*attempt = _Attempt\(point\.z, point\.multipliers, point\.lower_multipliers, "
     r"point\.upper_multipliers, result\.status.*-> .*None",
     "the certificate takes its multipliers from the report and its solver from the route's SolverInfo: the "
     "attempt's multipliers and status are not read"),
    (r"^x_proposal_certificate: .*result\.return_status, result\.iterations, result\.seconds, rounds, "
     r"(working_set, point\.info, )?-> "
     r".*(None, result\.iterations, result\.seconds|result\.return_status, None, result\.seconds|"
     r"result\.iterations, None, rounds)",
     "the attempt's return status, iterations and seconds go into the SolverInfo that the route's replaces (its "
     "iterations only where the start's are 0; its seconds nowhere)"),
    (r"^x_proposal_certificate: .*report, solver=result\.solver\) -> (None, )?solver=result\.solver\)$",
     "the report is passed to _certificate directly: the attempt's copy is not read"),
    (r"^x_proposal_certificate: .*with np\.errstate\(over=\"ignore\"\):.* -> .*np\.errstate\(over=None\)",
     "np.errstate only silences numpy's floating-point warnings (theta's overflow in the data's units): the values "
     "are the same"),
    (r"^x_proposal_certificate: .*report, solver=result\.solver\) -> .*(report, solver=None\)|report, \))",
     "the attempt's solver label goes into the SolverInfo that the route's replaces"),
    (r"^x_lp_certificate: .*representable\(cert\.theta, verdict, source\.scale_exponent\)\[1\].*-> "
     r".*representable\(cert\.theta, None, source\.scale_exponent\)\[1\]",
     "only representable's note ([1]) is read here: it depends on theta and the exponent, not on the status (the "
     "certificate's status is representable's, applied in _certificate_in_user_units)"),
    (r"^x_dual_rows: .*-source\.extra_values\(zero\)\]\) -> .*\+source\.extra_values",
     "the extra rows of the sources in the dual route's scope (BiasMargins' b >= 0) vanish at theta = 0"),
    # ---- maxmargin
    (r"^x__objective_hessian_diagonal: .*if isinstance\(lift\.norm, L2\) and lift\.n == lift\.n_params and not "
     r"lift\.split: -> .*(L2\) or lift\.n|lift\.n != lift\.n_params|and lift\.split:)",
     "the shortcut for l2 (2, or 2 mask) or not: every other norm's objective form has extra variables "
     "(n > n_params), and without the shortcut the lift's own Hessian gives the same diagonal"),
    (r"^x_least_distance: .*max_iter: int = 10_000.*-> .*max_iter: int = 10001",
     "the default iteration cap (solver strategy): no test needs 10000 iterations"),
    (r"^x_least_distance: .*r = np\.asarray\(r, dtype=float\)\.reshape\(-1\) -> .*reshape\(None\)",
     "r is 1-d in every caller"),
    (r"^x_least_distance: .*rownorm = largest_magnitude\(A, 1\) if A\.shape\[1\] else "
     r"np\.zeros\(A\.shape\[0\]\) -> ",
     "the row sizes in the violation tolerance VIOLATION max(|r|, max|A_n| max|theta|) (1e-13 relative): whether "
     "a violation at rounding level asks for one more iteration, below the NNLS's own accuracy (~1e-10), whose "
     "point the finish and certify judge; A has >= 1 column, so the else branch is never taken"),
    (r"^x_margin_nlp: .*rows_of = slice\(None\) if source\.linear and np\.array_equal\(index, ",
     "the no-copy shortcut: with every sample in order, A[index] equals A"),
    (r"^x_margin_nlp: .*(identity = lift\.n == lift\.n_params and not lift\.split -> |"
     r"J if \(identity\) and False else lift\.pull_back\(J\))",
     "for an identity lift pull_back(J) is J: the shortcut only avoids a copy"),
    (r"^x_margin_nlp: .*jacobian = \[part for part in jacobian if part\.shape\[0\]\] or jacobian\[:1\] -> ",
     "vstack with the empty parts gives the same matrix (the filter only avoids a copy); the margin rows "
     "(N >= 1) are never empty"),
    (r"^x_margin_nlp: .*jacobian\[0\] if \(len\(jacobian\) == 1\) and False else np\.vstack",
     "vstack of one part is that part"),
    (r"^x\u01c1MaxMarginProblem\u01c1_deep_linear_widths: .*getattr\(self, \"structure\", \"auto\"\) != \"auto\".*-> ",
     "structure='general' gives a ModelMargins source, for which deep_linear_widths returns None anyway"),
    (r"^x\u01c1SVMBiasQP\u01c1__init__: .*self\._solvers = \{\} -> .*None",
     "the QP is convex: IPOPT runs through solve_convex, which does not use the solver cache"),
    # ---- log messages (the logging merge): the logging module formats lazily and reports its own formatting
    # errors on stderr without raising; no decision reads a message
    (r"^x\w*(\u01c1\w+\u01c1\w+)?: (.*log\.(info|debug|warning)\(.* -> |"
     r"tau \* stages\.sigma, cert\.status, fixed\.size, data\.n_samples, unique\) -> |"
     r"index\.size\) -> |iterations, rounds\) -> |outcome\.status, outcome\.objective, flips\.size\) -> |"
     r"cert\.status, discarded\) -> )",
     "a log message: the logging module formats it lazily and reports its own formatting errors on stderr "
     "without raising; no decision reads it"),
    # ---- clarke: realizability of sign patterns, the patterns enumerated, the sign rows of a region
    (r"^x__realizable: .*(if constant and k <= units\.shape\[1\]: -> .*(constant or k|k < units)|"
     r"if sv\[-1\] > 1e-8 \* sv\[0\]: -> .*(1e-8 / sv\[0\]|1\.00000001 \* sv\[0\]|>= 1e-8))",
     "the shortcut (k <= n linearly independent unit rows: every pattern is realizable) only saves the LP, which "
     "finds t >= sigma_min / sqrt(k) for such rows, far above REALIZABLE_TOL unless sigma_min is within a factor "
     "k of 1e-8 (which no test or realistic input produces)"),
    (r"^x__realizable: .*compute_uv=False\) -> .*compute_uv=None\)", "None is falsy like False: singular values only"),
    (r"^x__realizable: .*(np\.where\(positive, 1\.0, -1\.0\) -> .*(2\.0, -1\.0|1\.0, -2\.0)|"
     r"np\.append\(np\.zeros\(n\), -1\.0\).*-> .*-2\.0\)|"
     r"bounds=\[\(-1\.0, 1\.0\)\] \* n \+ \[\(None, 1\.0\)\].*-> .*(\(-2\.0, 1\.0\)|\(-1\.0, 2\.0\)|\(None, 2\.0\)))",
     "realizability is a sign condition (side_k <u_k, delta> > 0 for some delta): a positive factor <= 2 on some "
     "rows, on the objective or on the box changes the LP's optimal t by a factor <= 2 and never its sign, which "
     "matters only for t within a factor 2 of REALIZABLE_TOL (1e-9)"),
    (r"^x__realizable: .*A = np\.hstack\(\[-\(side\[:, None\] \* units\).*-> .*\+\(side",
     "the box |delta|_inf <= 1 is symmetric: delta -> -delta maps the LP with the rows' sign flipped onto the "
     "original one, with the same optimal t"),
    (r"^x__realizable: .*method=\"highs\"\) -> .*(\"HIGHS\"\)|\(None, 1\.0\)\], \))",
     "linprog's default method is 'highs', and it lower-cases the method name"),
    (r"^x_clarke_check: .*(nlp\.evaluate\(z, p\) -> .*evaluate\(z, (None)?\)|p=p, tolerances=tol, -> "
     r".*(p=None, tolerances|\), tolerances))",
     "p is None in the only caller (MaxMarginProblem._judge_region: margin NLPs of a region evaluated at its own "
     "slopes, without parameters)"),
    (r"^x__columns: .*np\.zeros\(\(0, width\)\) -> .*np\.zeros\(0, dtype=int\), np\.zeros\((None|\(1, width\))\)$",
     "without candidates no row has a multiplier: the slopes are never read"),
    (r"^x__nnls_weights: .*np\.where\(norms > 0, norms, 1\.0\) -> .*norms, 2\.0\)",
     "only zero columns are divided by the placeholder: Lawson-Hanson never moves a zero column into the passive "
     "set (its gradient A_j^T r is 0), so its weight is 0 either way"),
    (r"^x__nnls_weights: .*np\.max\(np\.abs\(gradient\), initial=0\.0\).*-> .*(initial=None|gradient\), \)|initial=1\.0)",
     "np.max over the n >= 1 entries of the gradient; the NNLS right-hand side is only rescaled (the weights are "
     "scaled back): scipy's NNLS gives the same solution (checked at objective scales 1e-200 to 1e200)"),
    (r"^x__nnls_weights: .*nnls\(system, gradient / scale, maxiter=",
     "NNLS's iteration cap (a solver strategy): the tests' NNLS problems converge well within it"),
    (r"^x__columns: .*return np\.zeros\(\(0, jacobian\.shape\[1\]\)\), .* -> .*return np\.zeros\(\(1, jacobian\.shape\[1\]\)\)",
     "without candidates: one zero column that belongs to no row gets NNLS weight 0, and np.add.at over no row "
     "adds nothing"),
    (r"^x__nnls_weights: .*return np\.zeros\(0\) -> .*np\.zeros\(1\)",
     "without candidates: a single 0 broadcast onto no row (np.add.at over an empty index) adds nothing"),
    (r"^x__nnls_weights: .*if columns\.shape\[0\] == 0: -> .*columns\.shape\[1\] == 0",
     "detected, not killed: without the guard scipy 1.17's nnls aborts the process on a matrix with no columns "
     "(double free, SIGABRT), which mutmut reports as 'suspicious' (test_no_active_row_no_candidate)"),
    (r"^x__columns: .*default=0\) -> .*default=1\)",
     "with no kinked row the pattern slopes are never read (only kinked rows' slopes are averaged)"),
    (r"^x\u01c1RegionMargins\u01c1extra_hessian: .*v = \(w\.reshape\(self\.n_samples, -1\) \* self\.signs\)\.T -> "
     r".*(/ self\.signs|reshape\(self\.n_samples, -2\))",
     "the signs are +-1: dividing equals multiplying; numpy >= 2 accepts any negative size as 'unknown'"),
    (r"^x\u01c1RegionMargins\u01c1kinks: .*int\(row // U\).*-> .*int\(row / U\)",
     "for row indices (nonnegative, far below 2^53) int(row / U) == row // U"),
    (r"^x\u01c1RegionMargins\u01c1vertices: .*_realizable\(J\[kinks\]\[moving\], p\[moving\] == 1\.0, constant\): -> "
     r".*(, None\)|p\[moving\] != 1\.0)",
     "constant only selects _realizable's shortcut (see above); and a pattern is realizable exactly when its "
     "opposite is (delta -> -delta), so testing every pattern's opposite gives the same answers"),
    (r"^x\u01c1RegionMargins\u01c1vertices: .*(fam\.gradient\(theta, x, y, s\)\)\.reshape\(-1\)\) -> .*reshape\(None\)|"
     r"dropped, complete=True\) -> .*dropped, \))",
     "np.array(gradients).reshape(-1, n_params) flattens each gradient anyway; Vertices.complete defaults to True"),
    (r"^x\u01c1RegionMargins\u01c1vertices: .*constant = not fam\.feeds\[np\.ix_\(kinks, kinks\)\]\.any\(\) -> ",
     "constant only lets _realizable take its shortcut (independent rows: every pattern realizable), which the LP "
     "decides alike for independent rows (see _realizable's shortcut above)"),
    (r"^x\u01c1RegionMargins\u01c1unit_relative_slacks: .*(initial=0\.0\) -> .*(initial=None\)|axis=0, \))|"
     r"np\.where\(scale > 0, scale, 1\.0\).*-> .*scale, 2\.0\))",
     "np.max over the N >= 1 samples of each unit; only all-zero columns are divided by the placeholder, and their "
     "relative slacks are 0 either way"),
    (r"^x(__realizable|_clarke_check|\u01c1RegionMargins\u01c1(kinks|vertices|unit_relative_slacks)): .*BOUNDARY",
     "boundary of a tolerance comparison: < and <= differ only when the two floats are exactly equal, which no "
     "test input (and no realistic input) produces"),
    # ---- maxmargin: ReLU regions
    (r"^x\u01c1MaxMarginProblem\u01c1(_judge_at_point|_walk): (.*family=self\._region_family\) -> .*(family=None\)|"
     r"attempt\.z\), \)|anchor, \))|family=self\._region_family\) -> \)$)",
     "the region family is a cache of the model's symbolic trace: without it the region traces the same "
     "expressions again"),
    (r"^x\u01c1MaxMarginProblem\u01c1(_solve_in_regions|_solve): .*bar\(points, desc=\"max_margin starts\"\)",
     "the progress bar's label (shown with verbose=True only)"),
    (r"^x\u01c1MaxMarginProblem\u01c1_solve_in_regions: .*_region_anchor\(theta0, opts\).*-> .*_region_anchor\(theta0, None\)",
     "_region_anchor does not read its options (a short normalized-GD run with its own defaults)"),
    (r"^x(\u01c1MaxMarginProblem\u01c1|_)(_kept_starts|_region_rank_best|_attempt_in_region|_walk|_kinked_rows|_judge_region): .*BOUNDARY",
     "boundary of a tolerance comparison: < and <= differ only when the two floats are exactly equal, which no "
     "test input (and no realistic input) produces"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*binding = np\.nonzero\(signs & restricted\.support\)\[0\] - "
     r"int\(np\.argmax\(signs\)\) if signs\.any\(\) else np\.zeros\(0, int\) -> .*(\(signs\.any\(\)\) or True|"
     r"else np\.zeros\((None, int|0, None|int|0, |1, int)\))",
     "redundant guard: the region judged is the whole region (N U >= 1 sign rows), so signs.any() always holds"),
    (r"^x\u01c1MaxMarginProblem\u01c1_judge_region: .*clarke=check\.summary\(\), walk=tuple\(walk\)\) -> .*summary\(\), \)",
     "the walk's outcomes get the walk's steps by with_walk at its end (_walk), and _judge_at_point passes ()"),
    (r"^x\u01c1MaxMarginProblem\u01c1_kinked_rows: .*if v\.gradients\.shape\[0\] else np\.zeros\(\(0, self\.lift\.n\)\) -> "
     r".*(\(v\.gradients\.shape\[0\]\) or True|v\.gradients\.shape\[1\] else)",
     "pull_back maps a 0 x P block of gradients to 0 x n, like the placeholder (P >= 1)"),
    (r"^x\u01c1MaxMarginProblem\u01c1_walk: .*RegionMargins\(self\.model, self\.data, theta, patterns=region\.flipped\(flips\), "
     r"-> .*self\.data, None, patterns=",
     "with the pattern given, RegionMargins does not read the point"),
    (r"^x\u01c1MaxMarginProblem\u01c1_attempt_at: .*return _Attempt\(z, rows, lower, upper, Status\.INACCURATE, START_KEPT, 0, "
     r"0\.0, 0, -> .*(START_KEPT, 0, (None|1\.0), 0,|0\.0, (None|1),|Status\.INACCURATE, None, 0|upper, None, START_KEPT|"
     r"rows, None, upper|lower, None, Status)",
     "the kept start's solver fields: its seconds and working-set rounds are diagnostics no decision reads, its "
     "return status is text, and decide() gives inaccurate for INACCURATE and None alike (its residuals decide); "
     "the lift's start is interior to its bounds (l1: u, w offset from 0), so the fitted bound multipliers are 0, "
     "as certify reads None"),
    (r"^x\u01c1MaxMarginProblem\u01c1_attempt_in_region: .*(rows = np\.nonzero\(whole\.unit_relative_slacks\(theta\) <= "
     r"SIGN_ROWS_NEAR\)\[0\] -> |batch = ws\.batch or max\(50, self\.model\.n_params\) -> )",
     "the sign working set's first rows and batch size (a solver strategy): violated rows join before a point is "
     "accepted (test_a_sign_row_violated_by_1e_minus_6_joins_before_the_point_is_accepted)"),
    (r"^x\u01c1MaxMarginProblem\u01c1_certify: .*np\.arange\(self\.data\.n_samples\), extra=extra\) -> .*n_samples\), \)",
     "no caller passes extra=False (the default is True): the Clarke check builds its own NLP without the extra rows"),
    (r"^x\u01c1MaxMarginProblem\u01c1_certify: return certify\(nlp, attempt\.z, \*split_extended_multipliers\(nlp, multipliers\), "
     r"tolerances=opts\.tolerances\) -> ",
     "dead code: no caller passes multipliers= any more (the region judge certifies the attempt's own multipliers), "
     "so this branch is never taken"),
    (r"^x_margin_nlp: .*parameters = getattr\(source, \"parameters\", 0\).*-> .*\"parameters\", None\)",
     "an NLP's parameters are read only as a flag (if nlp.parameters): None is falsy like 0"),
    # ---- pyomo_solver
    (r"^x__objective_name: .*active=True, descend_into=True\)\)\.name -> .*active=True, \)\)\.name",
     "descend_into=True is Pyomo's default"),
    (r"^x__load_results: .*set_value\(float\(value\), skip_validation=True\)",
     "the values written back lie within the variables' bounds and domains: validation passes silently"),
    (r"^x_certify_pyomo: .*fit_multipliers\(nlp, z, tolerances=tol\)",
     "fit_multipliers' active tolerance only widens its NNLS candidates, which get multiplier 0 at a KKT point"),
    (r"^x_certify_pyomo: .*tolerances=tol, point=point\).*-> .*(point=None|tolerances=tol, \))",
     "a cached evaluation nlp.evaluate(z, p): without it the same values are recomputed"),
    (r"^x_certify_pyomo: .*decide\(report\.kkt_met\(tol\), Status\.OPTIMAL\) -> .*None\)",
     "decide() keeps only a solver status that is a limit or a failure: OPTIMAL and None both give inaccurate "
     "when the residuals are not met"),
    (r"^x_fitted_bound_multipliers: .*active_rows\(ext\.values, ext\.levels, ext\.equality.*-> .*None",
     "only the bound rows are read ([nlp.m:]), and bound rows are never equality rows: None reads as False"),
    (r"^x_multipliers_from_duals: .*\* rowmap\.sign\(\) -> .*/ rowmap\.sign\(\)",
     "the signs are +-1: dividing equals multiplying"),
    (r"^x_to_solver_results: .*solution\._cuid = False.*-> .*None",
     "Pyomo reads solution._cuid as a flag: None is falsy like False"),
    (r"^x\u01c1LexmarginSolver\u01c1solve: .*\[log\] if \(logfile is not None\) or True",
     "the log buffer is written to a file only when a logfile is given; teeing into it otherwise is invisible"),
    (r"^x\u01c1LexmarginSolver\u01c1solve: .*load_solutions=False.*-> .*load_solutions=None",
     "None is falsy like False"),
    (r"^x__suffix_values: .*create=False\).*-> .*create=None\)", "None is falsy like False"),
    # ---- the path norm (nlp/norms.py PathNorm, BalancedPathNorm)
    (r'np\.einsum\("jd,jd->j".*-> .*np\.einsum\("JD,JD->J"',
     "einsum accepts upper-case subscripts: \"JD,JD->J\" is the same contraction as \"jd,jd->j\""),
    (r"^x\u01c1BalancedPathNorm\u01c1objective_(expr|gradient|hessian): .*super\(\)\.objective_\w+\(z, P\).*-> "
     r".*super\(\)\.objective_\w+\(z, None\)",
     "PathNorm's objective functions do not use their P argument (an objective form has no parameters)"),
    (r"^x\u01c1PathNorm\u01c1imbalance: .*initial=0\.0.*-> .*(initial=None|, \)\))",
     "np.max over the H >= 1 units of a bound norm (Model refuses arrays with a zero dimension; an unbound "
     "norm cannot split theta at all): 'initial' never decides the result"),
    (r"^x\u01c1PathNorm\u01c1split: .*reshape\(self\.width, -1\).*-> .*reshape\(self\.width, -2\)",
     "numpy >= 2 accepts any negative size as 'unknown': reshape(H, -2) == reshape(H, -1)"),
    # ---- the homogeneity checks' labels (modeling/homogeneity.py _label_point)
    (r"^x__label_point: .*if \(kind is float\) or True else kind\(1\)",
     "a single-output model's symbolic label becomes sp.Integer(+-1.0) = +-1 instead of 1: a constant nonzero "
     "factor of the margin, which does not change whether f(rho theta) = rho^a f(theta) holds"),
    (r"^x__label_point: .*rng\.random\(\) < 0\.5.*BOUNDARY",
     "boundary of the random sign: rng.random() is exactly 0.5 with probability 2^-53, and either sign is a "
     "valid label"),
    (r"^x__label_point: .*if kind is float else kind\(1\) -> .*else kind\(2\)$",
     "the symbolic label is a constant nonzero factor of the margin: the identity holds for 2 f exactly when "
     "it holds for f"),
    (r"^x__label_point: .*replace=False\).*-> .*replace=None\)",
     "None is falsy like False: numpy draws the two classes without replacement, the same draws as with False"),
    (r"^x_symbolic_check: .*for _ in range\(3\)\] -> .*for _ in range\(4\)\]",
     "a fourth random rational point: a true identity holds at every point, and a false one (a nonzero "
     "rational function of rho) fails at all but a null set of random points, so it fails at the first three"),
]
# ... and one by one: (mangled function, original line, mutant line) -> reason.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    # ---- homogeneity: a K-output model's contrast label (numpy infers the dtype the code names)
    ("x__label_point", "c = np.array([kind(0)] * K, dtype=object if kind is not float else float)",
     "c = np.array([kind(0)] * K, dtype=None)"):
        "numpy infers the same dtype: float64 from Python floats, object from SymPy Integers",
    ("x__label_point", "c = np.array([kind(0)] * K, dtype=object if kind is not float else float)",
     "c = np.array([kind(0)] * K, )"):
        "numpy infers the same dtype: float64 from Python floats, object from SymPy Integers",
    # ---- clarke
    ("x\u01c1RegionMargins\u01c1vertices",
     "grown = [u for u in np.nonzero((pre <= tol * level) & (level > 0))[0] if u not in kinks]",
     "grown = [u for u in np.nonzero((pre <= tol * level) & (level >= 0))[0] if u not in kinks]"):
        "a unit with z = 0 and no gradient in any pattern: kinks() already lists it (its level is floored at the "
        "smallest double), so the callers pass it in anyway (a reported defect: such a unit drops every pattern, "
        "test_a_unit_without_gradient_does_not_drop_every_pattern, strict xfail)",
    # ---- certify
    ("x_unit_rows", "return J / np.where(norms > 0, norms, 1.0)[:, None]",
     "return J / np.where(norms > 0, norms, 2.0)[:, None]"):
        "only zero rows are divided by the placeholder; they stay zero",
    ("x_licq", "fixed = np.asarray(fixed, dtype=int).reshape(-1)",
     "fixed = np.asarray(fixed, dtype=int).reshape(None)"):
        "fixed is used through .size and np.unique, which flatten anyway",
    ("x_licq", "s = np.linalg.svd(unit_rows(J[:, free]), compute_uv=False) if free.size else np.zeros(0)",
     "s = np.linalg.svd(unit_rows(J[:, free]), compute_uv=False) if (free.size) or True else np.zeros(0)"):
        "redundant guard: the SVD of a k x 0 matrix is an empty vector, the same as np.zeros(0)",
    ("x_licq", "s = np.linalg.svd(unit_rows(J[:, free]), compute_uv=False) if free.size else np.zeros(0)",
     "s = np.linalg.svd(unit_rows(J[:, free]), compute_uv=None) if free.size else np.zeros(0)"):
        "compute_uv=None is falsy like False: only the singular values are returned",
    ("x_licq", "s = np.linalg.svd(unit_rows(J[:, free]), compute_uv=False) if free.size else np.zeros(0)",
     "s = np.linalg.svd(unit_rows(J[:, free]), compute_uv=False) if free.size else np.zeros(1)"):
        "with every variable at a bound a zero singular value counts toward no rank and others <= 1 rows "
        "give smallest 0 either way (top = 0)",
    ("x_licq", "top = float(s[0]) if s.size else 0.0", "top = float(s[0]) if s.size else 1.0"):
        "with no singular values the rank is a sum over nothing and 'smallest' is guarded by others <= s.size",
    ("x_licq", "rank_other = int(np.count_nonzero(s > rank_tol * top)) if top > 0 else 0",
     "rank_other = int(np.count_nonzero(s > rank_tol * top)) if (top > 0) or True else 0"):
        "redundant guard: top = 0 means every singular value is 0, and none is > 0",
    ("x_licq", "rank_other = int(np.count_nonzero(s > rank_tol * top)) if top > 0 else 0",
     "rank_other = int(np.count_nonzero(s > rank_tol * top)) if top >= 0 else 0"):
        "redundant guard: top = 0 means every singular value is 0, and none is > 0",
    ("x_null_space", "return np.zeros((0, 0))", "return np.zeros((1, 0))"):
        "n = 0: callers use only the number of columns (0) of the basis",
    ("x_null_space", "if J.shape[0] == 0:", "if J.shape[1] == 0:"):
        "without the shortcut the SVD of a 0 x n matrix gives rank 0 and an orthonormal basis of R^n (any "
        "orthonormal basis is a valid answer; numpy's is the identity)",
    ("x_null_space", "_, s, vt = np.linalg.svd(unit_rows(J), full_matrices=J.shape[0] < n)",
     "_, s, vt = np.linalg.svd(unit_rows(J), )"):
        "numpy's default full_matrices=True gives the same n x n vt (and the m x m U the reduced SVD skips: only slower)",
    ("x_null_space", "_, s, vt = np.linalg.svd(unit_rows(J), full_matrices=J.shape[0] < n)",
     "_, s, vt = np.linalg.svd(unit_rows(J), full_matrices=J.shape[0] <= n)"):
        "at m = n rows the reduced and the full SVD have the same n x n vt",
    ("x_null_space", "rank = int(np.sum(s > rank_tol * s[0])) if s.size and s[0] > 0 else 0",
     "rank = int(np.sum(s > rank_tol * s[0])) if (s.size and s[0] > 0) or True else 0"):
        "redundant guard: J has >= 1 row here, and s[0] = 0 means every singular value is 0, none > 0",
    ("x_null_space", "rank = int(np.sum(s > rank_tol * s[0])) if s.size and s[0] > 0 else 0",
     "rank = int(np.sum(s > rank_tol * s[0])) if s.size or s[0] > 0 else 0"):
        "redundant guard: J has >= 1 row here, and s[0] = 0 means every singular value is 0, none > 0",
    ("x_null_space", "rank = int(np.sum(s > rank_tol * s[0])) if s.size and s[0] > 0 else 0",
     "rank = int(np.sum(s > rank_tol * s[0])) if s.size and s[0] >= 0 else 0"):
        "redundant guard: J has >= 1 row here, and s[0] = 0 means every singular value is 0, none > 0",
    ("x_second_order", "n = H.shape[0]", "n = H.shape[1]"): "the Hessian is square",
    ("x_negative_curvature_direction", "n = H.shape[0]", "n = H.shape[1]"): "the Hessian is square",
    ("x_second_order", "scale = max(float(np.linalg.norm(H, 2)) if H.size else 0.0, TINY)",
     "scale = max(float(np.linalg.norm(H, 2)) if (H.size) or True else 0.0, TINY)"):
        "the Hessian is n x n with n >= 1: never empty",
    ("x_second_order", "scale = max(float(np.linalg.norm(H, 2)) if H.size else 0.0, TINY)",
     "scale = max(float(np.linalg.norm(H, 2)) if H.size else 1.0, TINY)"):
        "the Hessian is n x n with n >= 1: never empty",
    ("x_second_order_of", "diagonal = np.asarray(nlp.hessian(z, p, lam[:nlp.m]), dtype=float).reshape(-1)",
     "diagonal = np.asarray(nlp.hessian(z, p, lam[:nlp.m]), dtype=float).reshape(None)"):
        "a diagonal Hessian is returned as a vector already (the NLP contract)",
}


_DTYPE = re.compile(r",? ?dtype=(float|int|None)")
_COMPARISONS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}


def _boundary(minus: str, plus: str) -> bool:
    """The mutant only turns one strict comparison into a non-strict one or back."""
    a, b = re.split(r"(<=|>=|<|>)", minus), re.split(r"(<=|>=|<|>)", plus)
    if len(a) != len(b):
        return False
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    return len(diff) == 1 and _COMPARISONS.get(diff[0][0]) == diff[0][1]


def equivalent_reason(name: str, minus: str, plus: str) -> str | None:
    function = name.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
    key = (function, minus.strip(), plus.strip())
    if key in EQUIVALENT:
        return EQUIVALENT[key]
    if minus != plus and _DTYPE.sub("", minus).replace(", )", ")") == _DTYPE.sub("", plus).replace(", )", ")"):
        return GENERIC[0][1]
    line = f"{function}: {minus.strip()} -> {plus.strip()}"
    if _boundary(minus.strip(), plus.strip()):
        line += " BOUNDARY"
    for pattern, reason in GENERIC:
        if re.search(pattern, line):
            return reason
    return None


# ---- running and reporting -------------------------------------------------------------------------------
RUN_INFO = ROOT / "mutants" / "scope-run.json"


def not_killed(groups, unexplained_only: bool = False) -> list[str]:
    """The groups' mutants whose last verdict is not "killed" (survived, no tests, timeout, not run yet);
    ``unexplained_only``: of those, the ones without a recorded reason (an equivalent mutant survives any test)."""
    import os
    os.chdir(ROOT)
    wanted = patterns(groups)
    names = []
    for path, name, status, diff in _results():
        if status == "killed" or not any(fnmatch.fnmatch(name, p) for p in wanted):
            continue
        if unexplained_only and status in ("survived", "no tests"):
            minus, plus = _changed_lines(diff())
            if equivalent_reason(name, minus, plus) is not None:
                continue
        names.append(name)
    return names


# mutmut's CPU-time limit per mutant is 2 x timeout_multiplier x (the tests' time + 1 s), its default multiplier 15:
# a mutant that loops forever (e.g. a ``while True`` whose exit is mutated away) held a worker for ~11 minutes of CPU
# with the ReLU tests (~22 s).  mutmut reads the multiplier only from pyproject.toml, so it is set here, in process.
TIMEOUT_MULTIPLIER = 4.0
_MUTMUT_WITH_TIMEOUT = """
import sys
from mutmut.configuration import config
config().timeout_multiplier = float(sys.argv[1])
from mutmut.__main__ import cli
sys.argv = ["mutmut", *sys.argv[2:]]
cli()
"""


def _function_of(name: str) -> str:
    """'Class.method' or 'function' of a mutant name (mutmut mangles them as x\u01c1Class\u01c1method, x_function)."""
    mangled = name.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
    return mangled[2:].replace("\u01c1", ".") if mangled.startswith("x\u01c1") else mangled[2:]


def run(groups, only_not_killed: bool = False, unexplained_only: bool = False,
        timeout_multiplier: float = TIMEOUT_MULTIPLIER, only=()) -> int:
    """mutmut on the groups' mutants (all of them; or, with ``only_not_killed``, those not killed last time: after
    tests were only added, a killed mutant stays killed, and the others get the new tests); ``only``: of those, the
    mutants of the functions matching these globs ("_walk", "MaxMarginProblem._judge*")."""
    import datetime
    import json
    import os
    started = time.perf_counter()
    names = not_killed(groups, unexplained_only) if only_not_killed else patterns(groups)
    if only:
        if not only_not_killed:     # every mutant of the groups, by name
            os.chdir(ROOT)
            # mutmut generates the mutants of new and changed files first (a filter matching no mutant runs none):
            # the names below are read from its store
            subprocess.call([sys.executable, "-c", _MUTMUT_WITH_TIMEOUT, str(timeout_multiplier), "run",
                             "lexmargin.x_generate_only_no_such_mutant*"], cwd=ROOT, stdout=subprocess.DEVNULL)
            wanted = patterns(groups)
            names = [name for _, name, _, _ in _results() if any(fnmatch.fnmatch(name, p) for p in wanted)]
        names = [n for n in names if any(fnmatch.fnmatch(_function_of(n), f) for f in only)]
    if not names:
        print("nothing to run")
        return 0
    code = subprocess.call([sys.executable, "-c", _MUTMUT_WITH_TIMEOUT, str(timeout_multiplier), "run", *names],
                           cwd=ROOT)
    seconds = time.perf_counter() - started
    print(f"mutation run of {', '.join(groups)}{' (not killed only)' if only_not_killed else ''}: {seconds:.0f} s "
          f"(exit code {code})")
    info = json.loads(RUN_INFO.read_text()) if RUN_INFO.exists() else {}
    for g in groups:
        entry = {"date": datetime.date.today().isoformat(), "seconds_of_run": round(seconds),
                 "groups_in_run": list(groups)}
        if only:
            entry["note"] = f"functions {' '.join(only)} only"
        if only_not_killed:     # the earlier full run's killed verdicts stand
            entry = {**info.get(g, {}), "rerun_not_killed": entry}
        info[g] = entry
    RUN_INFO.write_text(json.dumps(info, indent=1))
    return code


def _results():
    sys.path.insert(0, str(ROOT))
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            yield path, name, status_by_exit_code[code], lambda n=name, p=path: get_diff_for_mutant(n, path=p)


def _changed_lines(diff: str) -> tuple[str, str]:
    lines = diff.splitlines()[2:]
    minus = " / ".join(line[1:].strip() for line in lines if line.startswith("-"))
    plus = " / ".join(line[1:].strip() for line in lines if line.startswith("+"))
    return minus, plus


def _order(name: str):
    function, _, number = name.rpartition("__mutmut_")
    return function, int(number)


TIMED_OUT = ("detected, not killed: the tests ran past mutmut's CPU-time limit (the mutant loops forever, e.g. a "
             "loop's exit mutated away); a hang fails CI's time limit, but is not counted as killed here")


def collect(groups):
    """(counts per module and status, survivors as (module, name, status, minus, plus, reason))."""
    import os
    os.chdir(ROOT)
    wanted = patterns(groups)
    counts = defaultdict(lambda: defaultdict(int))
    survivors = []
    for path, name, status, diff in _results():
        if not any(fnmatch.fnmatch(name, p) for p in wanted):
            continue
        module = str(path)
        counts[module][status] += 1
        if status != "killed":
            minus, plus = _changed_lines(diff())
            survivors.append((module, name, status, minus, plus, TIMED_OUT if status == "timeout"
                              else equivalent_reason(name, minus, plus)))
    return counts, sorted(survivors, key=lambda s: (s[0], _order(s[1])))


def score_lines(counts, markdown: bool) -> list[str]:
    out = ["| module | mutants | killed | not killed | score |", "|---|---:|---:|---:|---:|"] if markdown else []
    total = killed = 0
    for module in sorted(counts):
        c = counts[module]
        n, k = sum(c.values()), c["killed"]
        total, killed = total + n, killed + k
        other = ", ".join(f"{v} {s}" for s, v in sorted(c.items()) if s != "killed")
        out.append(f"| `{module}` | {n} | {k} | {n - k} | {100 * k / n:.1f}% |" if markdown
                   else f"{module}: {k} / {n} ({100 * k / n:.1f}%){'; ' + other if other else ''}")
    if total:
        out.append(f"| **all** | **{total}** | **{killed}** | **{total - killed}** | **{100 * killed / total:.1f}%** |"
                   if markdown else f"all: {killed} / {total} ({100 * killed / total:.1f}%)")
    return out


def survivor_lines(survivors, markdown: bool) -> list[str]:
    out, module_now = [], None
    for module, name, status, minus, plus, reason in survivors:
        short = name.rsplit(".", 1)[-1].replace("\u01c1", ".")
        if markdown:
            if module != module_now:
                out += ["", f"`{module}`", ""]
                module_now = module
            status_note = "" if status == "survived" else f" ({status})"
            out.append(f"- `{short}`{status_note}: `{minus}` → `{plus}` — {reason or 'UNEXPLAINED'}")
        else:
            out.append(f"{module}: {short} [{status}] {reason or 'UNEXPLAINED'}\n    - {minus}\n    + {plus}")
    return out


DOCS = ROOT / "docs" / "mutation_testing.md"
START, END = "<!-- mutation-report:start -->", "<!-- mutation-report:end -->"
HEAD_START, HEAD_END = "<!-- mutation-score:start -->", "<!-- mutation-score:end -->"


def update_docs(groups, counts, survivors) -> None:
    """Rewrite the generated part of docs/mutation_testing.md (between the markers)."""
    import json
    info = json.loads(RUN_INFO.read_text()) if RUN_INFO.exists() else {}
    runs = set()
    for g, i in info.items():
        if g not in groups:
            continue
        for run_info in (i, i.get("rerun_not_killed")):
            if run_info and run_info.get("date"):
                runs.add((run_info.get("date"), tuple(run_info.get("groups_in_run", ())),
                          run_info.get("seconds_of_run"), run_info.get("note", "")
                          or ("not killed only" if run_info is not i else "")))
    described = "; ".join(f"{d}: {' '.join(gs)}" + (f" in {s} s" if s is not None else "")
                          + (f" ({note})" if note else "")
                          for d, gs, s, note in sorted(runs, key=str))
    lines = [START, "", "Generated by `python scripts/mutation.py report --update-docs` from the last run of "
             f"each group ({described}).", ""]
    lines += score_lines(counts, True)
    unexplained = sum(r is None for *_, r in survivors)
    lines += ["", f"### Not killed ({len(survivors)}; {unexplained} without a recorded reason)"]
    lines += survivor_lines(survivors, True)
    lines += ["", END]
    text = DOCS.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    text = head + "\n".join(lines) + tail
    total = sum(sum(c.values()) for c in counts.values())
    killed = sum(c["killed"] for c in counts.values())
    dates = sorted({d for d, _, _, _ in runs if d})
    headline = (f"{HEAD_START}**Mutation score {100 * killed / total:.1f}%**: {killed} of {total} mutants killed "
                f"(run of {', '.join(dates) or 'unknown date'}; per module and every mutant not killed, with its "
                f"reason, in the generated section at the end).{HEAD_END}")
    head, _, rest = text.partition(HEAD_START)
    _, _, tail = rest.partition(HEAD_END)
    DOCS.write_text(head + headline + tail)


def report(groups, markdown: bool, stub: bool = False, docs: bool = False) -> int:
    counts, survivors = collect(groups)
    print("\n".join(score_lines(counts, markdown)))
    print()
    print("\n".join(survivor_lines(survivors, markdown)))
    unexplained = [s for s in survivors if s[5] is None]
    print(f"\n{len(survivors)} survivors, {len(unexplained)} without a recorded reason")
    if stub:
        for module, name, status, minus, plus, reason in unexplained:
            function = name.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
            print(f"    ({function!r}, {minus!r},\n     {plus!r}):\n        \"\",")
    if docs:
        update_docs(groups, counts, survivors)
        print(f"updated {DOCS.relative_to(ROOT)}")
    return 1 if unexplained else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument("groups", nargs="*", help=f"parts of the scope (default: all of {list(SCOPE)})")
    parser.add_argument("--markdown", action="store_true", help="report as markdown (docs/mutation_testing.md)")
    parser.add_argument("--stub", action="store_true", help="print EQUIVALENT entries to fill in for the unexplained")
    parser.add_argument("--update-docs", action="store_true", help="rewrite the report in docs/mutation_testing.md")
    parser.add_argument("--not-killed", action="store_true",
                        help="run: only the mutants not killed last time (after tests were added)")
    parser.add_argument("--unexplained", action="store_true",
                        help="run --not-killed: and of those only the ones without a recorded reason")
    parser.add_argument("--timeout-multiplier", type=float, default=TIMEOUT_MULTIPLIER,
                        help="run: mutmut's CPU-time limit per mutant is 2 x this x (its tests' time + 1 s)")
    parser.add_argument("--only", action="append", default=[], metavar="FUNCTION_GLOB",
                        help="run: only the mutants of these functions of the groups (repeatable)")
    args = parser.parse_args(argv)
    groups = args.groups or list(SCOPE)
    unknown = sorted(set(groups) - set(SCOPE))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {list(SCOPE)}")
    if args.command == "run":
        return run(groups, args.not_killed or args.unexplained, args.unexplained, args.timeout_multiplier,
                   args.only)
    return report(groups, args.markdown, args.stub, args.update_docs)


if __name__ == "__main__":
    sys.exit(main())
