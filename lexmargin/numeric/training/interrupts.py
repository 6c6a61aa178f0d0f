"""Ctrl-C during training, deferred to the next step boundary.

While ``DeferredInterrupts.deferring`` is active (in the main thread, with Python's default SIGINT handler
installed), SIGINT only sets a flag; the run loop calls ``raise_if_requested`` between steps, which turns
it into ``KeyboardInterrupt`` there, so the state saved on the way out is exact.  A second SIGINT before
that calls ``on_second`` (the training marks its state unsaveable: it may be mid-step) and raises at once.
Elsewhere (another thread, an application's own handler) signals are left alone.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class DeferredInterrupts:
    """The pending-interrupt flag of one training and the SIGINT handler that sets it."""

    def __init__(self):
        self.requested = False

    @contextmanager
    def deferring(self, on_second: Callable[[], None] = lambda: None) -> Iterator[None]:
        """SIGINT sets ``requested`` instead of raising, for the body of the ``with``.

        Args:
            on_second: called at a second SIGINT, before it raises ``KeyboardInterrupt`` at once.
        """
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is not threading.main_thread() or previous is not signal.default_int_handler:
            yield
            return

        def request(signum, frame):
            if self.requested:                # the second Ctrl-C: at once, mid-step
                on_second()
                previous(signum, frame)
            self.requested = True

        signal.signal(signal.SIGINT, request)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def raise_if_requested(self) -> None:
        """``KeyboardInterrupt`` (clearing the flag) if a SIGINT arrived since the last call."""
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt


__all__ = ["DeferredInterrupts"]
