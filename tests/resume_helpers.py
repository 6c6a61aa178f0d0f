"""Shared by the trainer tests: interrupt a checkpointed run, then resume it with the same call."""

import pytest

from lexmargin.numeric import Trainer, train


def raise_keyboard_interrupt(trainer):
    raise KeyboardInterrupt


def interrupted_then_resumed(kernel, theta, path, at_step, interrupt=raise_keyboard_interrupt, **kw):
    """History of a run stopped by ``interrupt(trainer)`` at the first record at or after ``at_step`` (it must
    raise KeyboardInterrupt, or make the trainer raise it), checked to be saved mid-way, then resumed."""

    def callback(trainer):
        if trainer.step >= at_step:
            interrupt(trainer)

    with pytest.raises(KeyboardInterrupt):
        train(kernel, theta, checkpoint_path=path, callback=callback, **kw)
    assert at_step <= Trainer.load(path, kernel, workers=kw.get("workers", 1)).step < kw["n_steps"]
    return train(kernel, theta, checkpoint_path=path, **kw)
