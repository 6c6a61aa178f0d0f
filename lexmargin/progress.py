"""Logging and progress bars of long solves and training, so that every call site is one line.

Library code never prints.  Every module logs to its own logger (``logging.getLogger(__name__)``, all
under the package logger ``"lexmargin"``, which carries a ``NullHandler``: nothing shows unless the
application configures logging or asks for it with ``verbose=``).  Progress is logged at INFO: one
record per start, activation region and working-set round of ``max_margin``, per rho / lambda of the
paths, per stage of the lexicographic and depth-sensitive solves, and per recorded checkpoint of
``numeric.train`` (step, loss, margin).

``verbose=`` (every solve, through ``SolveOptions``, and ``numeric.train``):

* ``False`` / ``0`` (default): logging is left as the application configured it;
* ``True`` / ``1`` / ``logging.INFO``-like levels: for the duration of the call, the ``"lexmargin"``
  logger is set to INFO and, when neither it nor the root logger has a handler, a stderr handler is
  attached (removed afterwards); progress bars (tqdm) are drawn when stderr is a terminal;
* ``2`` or more (or ``logging.DEBUG``): the same at DEBUG.

Progress bars are never drawn when stderr is not a TTY, under pytest, or when ``LEXMARGIN_NO_PROGRESS``
is set (to anything but ``""``/``"0"``); ``lexmargin -q`` sets it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator

PACKAGE_LOGGER = "lexmargin"

_lock = threading.Lock()
_depth = 0             # nested verbose() contexts (a path calling margin_path calling max_margin)
_saved: tuple | None = None
_solve_depth = contextvars.ContextVar("lexmargin_solve_depth", default=0)   # solves entered (verbose_call)


def get_logger(name: str) -> logging.Logger:
    """The logger of module ``name`` (``__name__``), under the package logger ``"lexmargin"``.

    Args:
        name: the module's ``__name__`` (names outside the package are put under ``lexmargin.``).

    Returns:
        ``logging.getLogger(name)``.
    """
    if name != PACKAGE_LOGGER and not name.startswith(PACKAGE_LOGGER + "."):
        name = f"{PACKAGE_LOGGER}.{name}"
    return logging.getLogger(name)


def level_of(verbose) -> int | None:
    """The logging level ``verbose`` asks for, or None for "leave logging alone".

    Args:
        verbose: False/None/0 (none), True/1 (INFO), 2+ (DEBUG), or a ``logging`` level >= 10
            (``logging.INFO``, ``logging.DEBUG``) taken as is.

    Returns:
        ``logging.INFO``, ``logging.DEBUG``, the level given, or None.

    Raises:
        TypeError: ``verbose`` is neither a bool nor an int.
        ValueError: a negative integer.
    """
    if verbose is None or verbose is False:
        return None
    if verbose is True:
        return logging.INFO
    if not isinstance(verbose, int):
        raise TypeError(f"verbose must be a bool or an int level; got {verbose!r}")
    if verbose < 0:
        raise ValueError(f"verbose must be >= 0; got {verbose}")
    if verbose == 0:
        return None
    if verbose >= logging.DEBUG:        # a logging level (10, 20, ...)
        return int(verbose)
    return logging.INFO if verbose == 1 else logging.DEBUG


def _stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    return handler


@contextlib.contextmanager
def verbosity(verbose) -> Iterator[bool]:
    """Show lexmargin's progress records for the duration of a call when ``verbose`` asks for it.

    Re-entrant: a nested call (a path's margin path, a start's region walk) neither adds a second
    handler nor restores the level early; the outermost call's level wins.

    Args:
        verbose: see ``level_of``.

    Yields:
        Whether progress is wanted (``verbose`` asks for a level), for ``bar``.
    """
    global _depth, _saved
    level = level_of(verbose)
    if level is None:
        yield False
        return
    logger = logging.getLogger(PACKAGE_LOGGER)
    with _lock:
        _depth += 1
        if _depth == 1:
            handler = None
            if not logging.getLogger().handlers and not [h for h in logger.handlers
                                                        if not isinstance(h, logging.NullHandler)]:
                handler = _stderr_handler()
                logger.addHandler(handler)
            _saved = (logger.level, handler)
            logger.setLevel(level)
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                old_level, handler = _saved
                logger.setLevel(old_level)
                if handler is not None:
                    logger.removeHandler(handler)
                _saved = None


def active() -> bool:
    """Whether a ``verbosity`` context asking for progress is open (in any thread of this process)."""
    return _depth > 0


def _verbose_argument(args, kwargs):
    """The ``verbose`` a solve was called with: the keyword, else that of its ``options`` (SolveOptions)."""
    if "verbose" in kwargs:
        return kwargs["verbose"]
    candidates = [kwargs.get("options"), *args]
    for value in candidates:
        if type(value).__name__ == "SolveOptions":
            return getattr(value, "verbose", False)
    return False


def verbose_call(fn):
    """Decorator of a solve taking ``options=`` / ``verbose=``: runs it inside ``verbosity(verbose)``.

    Args:
        fn: a function whose ``verbose`` comes as a keyword (a SolveOptions override) or inside a
            ``SolveOptions`` passed as ``options=`` or positionally.

    Returns:
        The wrapped function (same name, docstring and signature).
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        token = _solve_depth.set(_solve_depth.get() + 1)
        try:
            with verbosity(_verbose_argument(args, kwargs)):
                return fn(*args, **kwargs)
        finally:
            _solve_depth.reset(token)

    return wrapper


def inside_solve() -> bool:
    """Whether this code runs inside a solve (a ``verbose_call`` function) of this thread / task: a
    training run started by ``max_margin`` (its GD starts) then logs its checkpoints at DEBUG, not INFO."""
    return _solve_depth.get() > 0


def bars_enabled(wanted: bool = True) -> bool:
    """Whether a progress bar may be drawn: wanted, stderr a TTY, not under pytest, not switched off.

    Args:
        wanted: the caller's wish (``verbose``, ``progress=``).

    Returns:
        True only when every condition holds.
    """
    if not wanted or os.environ.get("LEXMARGIN_NO_PROGRESS", "") not in ("", "0"):
        return False
    if "PYTEST_CURRENT_TEST" in os.environ:
        return False
    try:
        return bool(sys.stderr is not None and sys.stderr.isatty())
    except (AttributeError, ValueError):   # a closed or replaced stream
        return False


def bar(iterable: Iterable | None = None, *, wanted: bool | None = None, total: int | None = None, desc: str = "",
        unit: str = "it", leave: bool = False):
    """A tqdm progress bar over ``iterable`` when ``bars_enabled(wanted)``, else a silent stand-in.

    Both have ``update(n)``, ``set_postfix_str(s)`` and ``close()`` and iterate over ``iterable``, so a
    call site reads the same either way.

    Args:
        iterable: what to iterate over (None: update by hand).
        wanted: the caller's wish (``verbose``, ``progress=``); None (default): ``active()``, i.e. the
            solve was called with ``verbose=``.
        total: the number of items (default ``len(iterable)`` when it has one).
        desc: the bar's label.
        unit: the unit of one item.
        leave: keep the finished bar on screen.

    Returns:
        A ``tqdm`` or a ``SilentBar``.
    """
    if not bars_enabled(active() if wanted is None else wanted):
        return SilentBar(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr)


class SilentBar:
    """What ``bar`` returns when no bar is drawn: iterates, and ignores updates."""

    def __init__(self, iterable=None):
        self._iterable = iterable

    def __iter__(self):
        return iter(self._iterable if self._iterable is not None else ())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        """Ignored."""

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Ignored."""

    def close(self) -> None:
        """Ignored."""


__all__ = ["PACKAGE_LOGGER", "SilentBar", "active", "bar", "bars_enabled", "get_logger", "inside_solve", "level_of",
           "verbose_call", "verbosity"]
