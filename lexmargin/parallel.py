"""Independent tasks on Dask: the grid points of a sweep, the checks of a suite.

``run_tasks(fn, calls, jobs=K, scheduler=...)`` returns ``[fn(*call) for call in calls]`` in the order of
``calls`` whatever order the tasks finish in, so a parallel run gives the same list as a serial one.
Each call is one ``dask.delayed`` task computed by

* the local scheduler ``"processes"`` (default: one process per job, the GIL and non-thread-safe
  libraries such as matplotlib out of the way) or ``"threads"``, with ``num_workers=jobs``;
* ``"sync"``, or ``jobs=1`` without an address: in this process, one after the other (no Dask needed);
* a ``dask.distributed`` cluster when ``address`` is given (``tcp://host:8786``): a ``Client`` is opened
  on it for the run and closed afterwards.

Dask is an optional dependency (``pip install "lexmargin[dask]"``), imported only here and only when a
run needs it; without it a parallel run raises ``MissingDependencyError`` naming the extra.  ``fn`` must
be importable by name (a module-level function of an installed module) for the process and distributed
schedulers, which run it in other interpreters.

A task that raises does not lose the others: ``on_error(call, exc)`` gives the value recorded for it
(without ``on_error`` the exception propagates).  When the scheduler itself fails (a worker process
killed), the tasks are run again one compute each, so only the tasks whose own compute fails are lost
to ``on_error``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .errors import LexmarginError, MissingDependencyError
from .progress import get_logger

#: The local Dask schedulers ``run_tasks`` accepts (``address`` selects a distributed cluster instead).
SCHEDULERS = ("processes", "threads", "sync")

log = get_logger(__name__)


def require_dask(what: str = "a parallel run"):
    """Import dask or raise ``MissingDependencyError`` with the extra to install.

    Args:
        what: what needs dask, for the message (``"--jobs 2"``).

    Returns:
        The ``dask`` module.
    """
    try:
        import dask
        import dask.delayed  # the submodule run_tasks uses
    except ImportError:
        raise MissingDependencyError(f"{what} needs dask, which is not installed: pip install \"lexmargin[dask]\" "
                                     "(or run with --jobs 1)") from None
    return dask


def _client(address: str):
    try:
        from dask.distributed import Client
    except ImportError:
        raise MissingDependencyError(f"--address {address} needs dask.distributed: pip install \"dask[distributed]\"") \
            from None
    return Client(address)


def check_run_options(jobs: int, scheduler: str, address: str | None = None) -> None:
    """Validate ``jobs`` (an integer >= 1) and ``scheduler`` (one of ``SCHEDULERS``) before any work.

    Raises:
        LexmarginError: a bad value.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise LexmarginError(f"jobs must be an integer >= 1; got {jobs!r}")
    if scheduler not in SCHEDULERS:
        raise LexmarginError(f"scheduler must be one of {SCHEDULERS}; got {scheduler!r}")
    if address is not None and not str(address).strip():
        raise LexmarginError("address must be a scheduler address such as tcp://127.0.0.1:8786")


def needs_dask(jobs: int, scheduler: str, address: str | None) -> bool:
    """Whether ``run_tasks`` would use Dask for these settings (False: serial, in this process)."""
    return address is not None or (jobs > 1 and scheduler != "sync")


def run_tasks(fn: Callable, calls: Sequence[tuple], *, jobs: int = 1, scheduler: str = "processes",
              address: str | None = None, on_error: Callable | None = None) -> list:
    """``[fn(*call) for call in calls]``, each call a Dask task, in the order of ``calls``.

    Args:
        fn: an importable module-level function (for the process and distributed schedulers).
        calls: the argument tuples, one per task (picklable for those schedulers).
        jobs: the number of worker processes / threads of a local scheduler (1: serial, no Dask).
        scheduler: ``"processes"``, ``"threads"`` or ``"sync"`` (ignored when ``address`` is given).
        address: a dask.distributed scheduler address; None for a local scheduler.
        on_error: ``on_error(call, exc) -> value`` recorded for a call that raised; None: raise.

    Returns:
        One value per call, in order.

    Raises:
        MissingDependencyError: Dask (or dask.distributed for ``address``) is needed and not installed.
        LexmarginError: bad ``jobs`` or ``scheduler``.
    """
    check_run_options(jobs, scheduler, address)
    calls = [tuple(c) for c in calls]
    if not needs_dask(jobs, scheduler, address):
        return [_guarded(fn, call, on_error) for call in calls]
    dask = require_dask(f"--jobs {jobs}" if address is None else f"--address {address}")
    tasks = [dask.delayed(_guarded, pure=False)(fn, call, on_error) for call in calls]
    if address is not None:
        with _client(address) as client:
            return list(client.gather(client.compute(tasks)))
    try:
        return list(dask.compute(*tasks, scheduler=scheduler, num_workers=jobs))
    except Exception as exc:   # the scheduler failed (a killed worker): keep what can be kept
        if on_error is None:
            raise
        log.warning("the %s scheduler failed (%s: %s); running the tasks one compute each", scheduler,
                    type(exc).__name__, exc)
        out = []
        for call, task in zip(calls, tasks):
            try:
                out.append(dask.compute(task, scheduler=scheduler, num_workers=1)[0])
            except Exception as again:  # noqa: BLE001
                out.append(on_error(call, again))
        return out


def _guarded(fn, call, on_error):
    """``fn(*call)``; an exception becomes ``on_error(call, exc)`` when ``on_error`` is given."""
    if on_error is None:
        return fn(*call)
    try:
        return fn(*call)
    except Exception as exc:  # noqa: BLE001 - one failing task must not lose the others
        return on_error(call, exc)




# ---- suites ---------------------------------------------------------------------------------------------
_SUITES: dict = {}


def load_suite(folder: str, name: str):
    """The module ``{folder}/{name}_suite.py``, loaded once per process (in workers too).

    Args:
        folder: the benchmarks folder (``lexmargin.cli.benchmarks_dir()``).
        name: the suite (``paper``).

    Returns:
        The suite's module (registered as ``lexmargin_benchmarks_{name}``).
    """
    import importlib.util
    import sys
    from pathlib import Path

    key = (str(folder), name)
    loaded = sys.modules.get(f"lexmargin_benchmarks_{name}")   # the one the command line loaded, in this process
    if key not in _SUITES and loaded is not None and getattr(loaded, "__file__", None) and \
            Path(loaded.__file__).resolve() == (Path(folder) / f"{name}_suite.py").resolve():
        _SUITES[key] = loaded
    if key not in _SUITES:
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        spec = importlib.util.spec_from_file_location(f"lexmargin_benchmarks_{name}", Path(folder) / f"{name}_suite.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module   # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
        _SUITES[key] = module
    return _SUITES[key]


def run_suite_check(folder: str, suite: str, function: str, config: dict):
    """One check of a suite, in whatever process Dask runs it: ``run_check(check, cfg=SuiteConfig(**config))``.

    Args:
        folder: the benchmarks folder.
        suite: the suite's name (its module ``{suite}_suite.py`` defines ``SuiteConfig`` and the checks).
        function: the check's function name (``check_lemma3_bound``).
        config: the ``SuiteConfig`` fields (plain values).

    Returns:
        The check's ``CheckResult`` (an exception inside the check is an ``error`` result, as serially).
    """
    module = load_suite(folder, suite)
    return module.run_check(getattr(module, function), cfg=module.SuiteConfig(**config))


__all__ = ["SCHEDULERS", "check_run_options", "load_suite", "needs_dask", "require_dask", "run_suite_check",
           "run_tasks"]
