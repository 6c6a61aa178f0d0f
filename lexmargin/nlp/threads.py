"""One BLAS thread for the dense linear algebra of a solve.

A solve and its certificate make hundreds of BLAS and LAPACK calls on matrices of a few to a few thousand rows
(Gram matrices, Cholesky factors, SVDs of the active rows, products with the Jacobian).  OpenBLAS runs them on
all its threads by default; on a machine whose cores are shared, the second thread mostly waits, and a solve is
slower, with a spread of times several times its best (docs/max_margin.md has the measurements: no size of the
max-margin grids is faster with two threads on a shared 2-core machine).

``single_blas_thread()`` is threadpoolctl's limit of the BLAS libraries that numpy and scipy loaded (the controller
is built once per process: building it scans the loaded libraries).  Nested uses cost nothing: only the outermost
sets and restores the thread count.  Without threadpoolctl it changes nothing.  Thread counts change at most the
last bits of a result (the order in which a threaded product sums its parts), never what a certificate decides
beyond rounding.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["single_blas_thread"]

_CONTROLLER: list = []
_LIMITED = [False]   # a single_blas_thread block holds the limit (process-wide, like the BLAS thread counts)


def _controller():
    """threadpoolctl's controller of the BLAS libraries loaded by numpy and scipy (None without threadpoolctl)."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
            _CONTROLLER.append(ThreadpoolController())
        except ImportError:          # optional: without it BLAS keeps its own thread count
            _CONTROLLER.append(None)
    return _CONTROLLER[0]


@contextmanager
def single_blas_thread():
    """One BLAS thread inside the ``with`` block.  Inside another such block nothing is done: only the outermost
    sets and restores the count."""
    controller = None if _LIMITED[0] else _controller()
    if controller is None:
        yield
        return
    _LIMITED[0] = True
    try:
        with controller.limit(limits=1, user_api="blas"):
            yield
    finally:
        _LIMITED[0] = False
