"""solve -> finish -> certify -> status, the same for every problem (one parametric NLP at a time)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import NoSeparatingPointError, SolverError
from ..nlp.certificate import Certificate, SolverInfo
from ..nlp.certify import KKTReport
from ..nlp.finish import Finished, finish_or_keep
from ..nlp.ipopt import IpoptResult, IpoptSolver
from ..nlp.options import SolveOptions, Tolerances
from ..nlp.status import Status, decide


@dataclass(frozen=True, eq=False)
class Solved:
    """One solve of an NLP: IPOPT's result, the (finished) point and multipliers, the report and status."""

    result: IpoptResult
    point: Finished
    report: KKTReport
    status: Status
    tolerances: Tolerances

    @property
    def z(self) -> np.ndarray:
        return self.point.z

    def solver_info(self, message: str = "") -> SolverInfo:
        r = self.result
        return SolverInfo("ipopt", r.status, r.return_status, r.iterations, r.seconds, message)


def solve(solver: IpoptSolver, z0, opts: SolveOptions, p=None) -> Solved:
    """Run the solver from z0, finish where it matters, certify (at parameter values p)."""
    result = solver.solve(z0, p)
    point, report = finish_or_keep(solver.nlp, result, opts, p)
    return Solved(result, point, report, decide(report.kkt_met(opts.tolerances), result.status), opts.tolerances)


def check(cert: Certificate, opts: SolveOptions, what: str) -> Certificate:
    """Raise SolverError (NoSeparatingPointError for ``no_separating_point``), carrying the certificate, when
    ``raise_on_failure`` and the status is not a success."""
    if opts.raise_on_failure and not cert.success:
        if cert.status == Status.NO_SEPARATING_POINT:
            raise NoSeparatingPointError(f"{what}: no separating point found from its start (IPOPT found "
                                         "f_n >= 1 locally infeasible); for a nonconvex model this is not a proof "
                                         "that the data is not separable", status=cert.status.value, certificate=cert)
        raise SolverError(f"{what} ended {cert.status.value}: {cert.summary()}", status=cert.status.value,
                          certificate=cert)
    return cert


def no_separating_point_if_infeasible(solved: Solved) -> Solved:
    """Margin constraints f_n >= 1 of a nonconvex model found locally infeasible: ``no_separating_point``."""
    if solved.status == Status.INFEASIBLE:
        return replace(solved, status=Status.NO_SEPARATING_POINT)
    return solved


def ipopt_options(opts: SolveOptions, defaults: dict | None = None) -> dict:
    """The problem's own IPOPT defaults under the user's options."""
    return {**(defaults or {}), **opts.ipopt_options()}


def assemble_solved(problem: str, solved: Solved, *, theta, objective, norm_label: str, margins,
                    normalized_margin, n_samples: int, constraints: str, diagnostics, message: str = ""):
    """The Certificate of one pipeline solve."""
    from ..nlp.certificate import assemble
    return assemble(problem, solved.report, status=solved.status, theta=theta, objective=objective,
                    norm=norm_label, margins=margins, normalized_margin=normalized_margin, n_samples=n_samples,
                    solver=solved.solver_info(message), finish=solved.point.info, tolerances=solved.tolerances,
                    constraints=constraints, diagnostics=diagnostics)
