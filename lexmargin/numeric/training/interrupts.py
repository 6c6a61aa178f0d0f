"""Ctrl-C (SIGINT) and SIGTERM during training, deferred to the next step boundary.

While ``DeferredInterrupts.deferring`` is active (in the main thread), each signal whose handler is Python's
default takes a handler that only records it; the run loop calls ``raise_if_requested`` between steps, which
raises the signal's exception there, so the state saved on the way out is exact:

=========  ===========================================  ===============================================
signal     default handler taken over                   raised at the next step boundary
=========  ===========================================  ===============================================
SIGINT     ``signal.default_int_handler``               ``KeyboardInterrupt``
SIGTERM    ``signal.SIG_DFL`` (the process terminates)  ``SystemExit(143)`` (128 + 15: the shell's code
                                                        of a terminated process; schedulers such as
                                                        SLURM send SIGTERM before they kill a job)
=========  ===========================================  ===============================================

A second signal before that calls ``on_second`` (the training marks its state unsaveable: it may be mid-step)
and acts at once, as the default would: ``KeyboardInterrupt``, or the process terminated by SIGTERM.
Elsewhere (another thread, an application's own handler) signals are left alone.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any


def _terminate(signum, frame) -> None:
    """What SIGTERM's default does: the process ends, terminated by the signal."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


# signal -> (the default handler taken over, the exception raised at the boundary, the immediate action)
DEFERRED: dict[signal.Signals, tuple[Any, Callable[[], BaseException], Callable[[int, Any], None]]] = {
    signal.SIGINT: (signal.default_int_handler, KeyboardInterrupt, signal.default_int_handler),
    signal.SIGTERM: (signal.SIG_DFL, lambda: SystemExit(128 + signal.SIGTERM), _terminate),
}


class DeferredInterrupts:
    """The pending signal of one training and the handlers that record it."""

    def __init__(self):
        self.requested: int | None = None     # the signal that arrived, if one did

    @contextmanager
    def deferring(self, on_second: Callable[[], None] = lambda: None) -> Iterator[None]:
        """SIGINT and SIGTERM set ``requested`` instead of acting, for the body of the ``with``.

        Args:
            on_second: called at a second signal, before it acts at once.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        with ExitStack() as stack:
            for signum, (default, _, now) in DEFERRED.items():
                if signal.getsignal(signum) is default:
                    stack.enter_context(self._recording(signum, now, on_second))
            yield

    @contextmanager
    def _recording(self, signum: int, now, on_second) -> Iterator[None]:
        """``signum``'s handler records it (a second signal: ``on_second``, then ``now``) until the exit."""

        def request(sig, frame):
            if self.requested is not None:        # the second signal: at once, mid-step
                on_second()
                now(sig, frame)
            self.requested = sig

        previous = signal.signal(signum, request)
        try:
            yield
        finally:
            signal.signal(signum, previous)

    def raise_if_requested(self) -> None:
        """The exception of the signal that arrived since the last call, clearing it (nothing if none did)."""
        if self.requested is not None:
            signum, self.requested = self.requested, None
            raise DEFERRED[signal.Signals(signum)][1]()


__all__ = ["DEFERRED", "DeferredInterrupts"]
