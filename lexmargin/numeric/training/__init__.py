"""The pieces of ``numeric.Trainer``, one responsibility each (``numeric.trainer`` is the façade over them).

* ``state`` -- the runs' lanes (theta, margins, loss weights per group of rows), the step rule's state, the
  step counter and the RNG (``TrainingState``), and the finiteness checks on them.
* ``steppers`` -- how the lanes advance: ``GenericStepper`` (any kernel, loss, rule, minibatches, any array
  library), ``FusedStepper`` (fused lanes stepped one step at a time in Python) and ``CompiledStepper``
  (fused lanes whose compiled kernel runs whole chunks of steps), behind the ``Stepper`` protocol.
* ``recorder`` -- the checkpoint schedule, what is measured at a checkpoint (``measure``) and the records
  turned into a ``History`` or into a checkpoint's arrays.
* ``checkpoint`` -- the file format: fingerprints of data and model, the configuration's validation, the
  single-writer lock, and reading and writing (atomic) checkpoints.
* ``interrupts`` -- Ctrl-C deferred to the next step boundary.
* ``errors`` -- ``DivergenceError`` and ``CheckpointMismatchError``.
"""

from .errors import CheckpointMismatchError, DivergenceError

__all__ = ["CheckpointMismatchError", "DivergenceError"]
