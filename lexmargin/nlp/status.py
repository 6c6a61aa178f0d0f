"""One status vocabulary for every problem and backend.

A certificate's status is decided by the certificate itself (``decide``), never copied from the
solver: the solver's own verdict is kept in ``SolverInfo.status`` (mapped once per backend, e.g.
``nlp.ipopt.STATUS_MAP``).

========================  ==========================================================================
status                    meaning
========================  ==========================================================================
``optimal``               every relative KKT residual recomputed by ``certify`` is <= ``Tolerances.kkt``
``inaccurate``            the solver stopped normally but the recomputed residuals exceed the tolerance
``infeasible``            the solver found the constraints locally infeasible (no proof)
``not_separable``         proved: a Farkas certificate shows no theta satisfies f_n(theta) >= 1
``no_separating_point``   a nonconvex model: no start led to a separating point (not a proof)
``region_boundary``       ReLU nets: a KKT point of its activation region's problem that the
                          Clarke check (nlp.clarke) does not certify for the original problem;
                          Pyomo models: residuals met where abs / max / min / Expr_if switches
``max_iterations``        the solver hit its iteration limit before the residuals were met
``max_time``              the solver hit its time limit before the residuals were met
``failed``                the solver failed (restoration failure, numerical trouble, ...)
========================  ==========================================================================
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    OPTIMAL = "optimal"
    INACCURATE = "inaccurate"
    INFEASIBLE = "infeasible"
    NOT_SEPARABLE = "not_separable"
    NO_SEPARATING_POINT = "no_separating_point"
    REGION_BOUNDARY = "region_boundary"
    MAX_ITERATIONS = "max_iterations"
    MAX_TIME = "max_time"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    @property
    def success(self) -> bool:
        """True only for ``optimal``."""
        return self in SUCCESS


SUCCESS = frozenset({Status.OPTIMAL})
# solver verdicts that say the solver itself stopped without converging
_SOLVER_LIMITS = frozenset({Status.MAX_ITERATIONS, Status.MAX_TIME, Status.FAILED, Status.INFEASIBLE})


def decide(kkt_met: bool, solver_status: Status) -> Status:
    """The certificate's status from its own residuals and the solver's verdict.

    ``kkt_met``: every relative residual is within tolerance (the only way to ``optimal``).
    Otherwise the solver's reason for stopping is kept when it gave up (limits, failure, local
    infeasibility), and a solver that claims convergence is overruled: ``inaccurate``.
    """
    if kkt_met:
        return Status.OPTIMAL
    if solver_status in _SOLVER_LIMITS:
        return solver_status
    return Status.INACCURATE
