"""Kernel registry: model families declare which batched kernel computes them.

A *model family* declares itself on every Model it builds, as ``model.numeric_structure``: a dict with a
``"family"`` tag and the family's options.  The bundled declarations in ``models/`` do, and so does the torch
bridge (through ``models.mlp.network``).  A *kernel family* registers, under the same tag, a factory next to its
kernel class (``@register_kernel("linear")`` in ``numeric/kernels.py``), the way optax composes named
transformations or cvxpy registers solvers: the tag selects a registered callable, never a chain of string
comparisons, and a user's model file can register a kernel of its own the same way.

=================== ==================================================== ==========================================
family              declared options                                     kernel
=================== ==================================================== ==========================================
``linear``          (none)                                               ``LinearKernel``
``svm_bias``        ``bias`` ("square" | "squares_difference" |          ``SVMBiasKernel``
                    "product")
``layered_net``     ``hidden``, ``activation`` (or one ``activations``   ``LayeredNetKernel``,
                    pair per layer), ``slope``, ``first_bias``,          ``MulticlassLayeredNetKernel`` (K outputs),
                    ``n_classes``                                        ``LinearKernel`` (no hidden layer)
``multiclass_linear`` (none)                                             ``MulticlassLinearKernel``
``sum``             ``blocks``: {block name: that block's declaration}   ``SumKernel`` of the blocks' kernels
``casadi``          (none): no batched kernel, by declaration            ``CasadiKernel`` (no warning)
=================== ==================================================== ==========================================

A factory maps a ``KernelRequest`` (the model, the data, the arrays (name, shape) of the layout to compute and
the declared options) to candidate builders ``dtype -> Kernel``; ``kernels.kernel_for`` accepts the first
candidate that reproduces the model's CasADi margins and gradients at random points
(``check_kernel_against_model``).  A factory that cannot serve the declaration (mixed activations, a layout
that is not the declared one) raises ``KernelUnavailable`` with the reason.

When no fast kernel results -- an unregistered family, a declaration the factory cannot serve, candidates that
do not reproduce CasADi, or (for a model that declares nothing) arrays that no family's layout fits -- the model
runs on ``CasadiKernel`` (one run at a time, orders of magnitude slower) and ``kernel_for`` says so with a
``KernelFallbackWarning`` naming the model, its family and what was missing.  Never silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LexmarginError

# a candidate kernel: dtype -> Kernel
Builder = Callable[[Any], Any]


class KernelFallbackWarning(UserWarning):
    """A model runs on the CasADi kernel (one run at a time) because no batched kernel serves it; says why."""


class KernelUnavailable(LexmarginError, ValueError):
    """A registered kernel factory cannot serve a model's declaration (the message says what is missing)."""


@dataclass(frozen=True)
class KernelRequest:
    """What a kernel factory is asked to compute.

    Attributes:
        model: the Model (its ``name``, ``n_outputs``, blocks).
        data: the Dataset (a multi-class one for K-output models).
        arrays: the (name, shape) pairs of the flat layout to compute, in order: the model's, or one block's.
        options: the declaration's options (everything but ``family``).
        block: the block of a sum this request is for (None: the whole model).
    """

    model: Any
    data: Any
    arrays: list
    options: dict = field(default_factory=dict)
    block: str | None = None


Factory = Callable[[KernelRequest], Iterable[Builder]]
_FACTORIES: dict[str, Factory] = {}


def register_kernel(family: str, factory: Factory | None = None):
    """Register ``factory`` as the kernel of model family ``family`` (usable as a decorator).

    Args:
        family: the tag models declare in ``numeric_structure["family"]``.
        factory: ``factory(request: KernelRequest) -> iterable of builders dtype -> Kernel``; omitted when used
            as ``@register_kernel(family)``.

    Returns:
        The factory (or the decorator).  A later registration of the same tag replaces the earlier one.
    """
    if not isinstance(family, str) or not family:
        raise TypeError(f"a kernel family is a non-empty string; got {family!r}")

    def register(fn: Factory) -> Factory:
        _FACTORIES[family] = fn
        return fn

    return register if factory is None else register(factory)


def registered_families() -> tuple[str, ...]:
    """The tags with a registered kernel factory, sorted."""
    return tuple(sorted(_FACTORIES))


def factory_for(family: str) -> Factory | None:
    """The factory registered for ``family`` (None if there is none)."""
    return _FACTORIES.get(family)


def reference_builder(builder: Builder) -> Builder:
    """Mark ``builder`` as building the reference itself (CasADi): ``kernel_for`` takes it without verification."""
    builder.reference = True  # type: ignore[attr-defined]
    return builder


def declaration(model) -> tuple[str, dict] | None:
    """(family, options) that ``model`` declares in ``numeric_structure``, or None when it declares no family.

    Args:
        model: a Model.

    Returns:
        The family tag and the other entries of the declaration; None when ``numeric_structure`` is missing or has
        no string ``family`` (such a dict is still read as a hint by the array reading of ``kernel_for``).
    """
    spec = getattr(model, "numeric_structure", None)
    if not isinstance(spec, dict) or not isinstance(spec.get("family"), str):
        return None
    return spec["family"], {k: v for k, v in spec.items() if k != "family"}


def warn_fallback(model, reason: str) -> None:
    """Warn (``KernelFallbackWarning``) that ``model`` runs on the CasADi kernel, and why."""
    warnings.warn(f"model {getattr(model, 'name', model)!r} runs on the CasADi kernel (one run at a time, no "
                  f"batching): {reason}", KernelFallbackWarning, stacklevel=4)     # the caller of kernel_for


__all__ = ["KernelFallbackWarning", "KernelRequest", "KernelUnavailable", "declaration", "factory_for",
           "reference_builder", "register_kernel", "registered_families", "warn_fallback"]
