"""Multilayer perceptron with positively homogeneous activations (ReLU / leaky ReLU).

    f_n(theta) = y_n * a . s(W_k s( ... s(W_1 x_n + b_1))),      s(z) = max(z, 0) or max(z, slope z),

with W_1 in R^{h_1 x D}, W_l in R^{h_l x h_{l-1}}, a in R^{h_k} and an optional first-layer bias
b_1 in R^{h_1}.  Each layer is its own block of degree 1 (``layer1`` = {W1[, b1]}, ..., ``layerk`` = {Wk},
``output`` = {a}): s(c z) = c s(z) for c > 0, so scaling every block by c scales f by c^L, L = k + 1
layers (a product form, jointly homogeneous of degree L).  The array names are those of the numpy
kernel ``lexmargin.numeric.LayeredNetKernel`` (W1, b1, W2, ..., Wk, a), which ``kernel_for`` picks.

Biases.  b_1 is a weight on a constant input: W_1 x + b_1 = [W_1, b_1] [x; 1], so it belongs to block
``layer1`` and the degree is unchanged.  A bias b_l in a later layer l >= 2 is not: its pre-activation
scales as z_l(c theta) = c^l W_l h_{l-1}(theta) + c b_l, two terms of different degrees, so f(c theta) is a
polynomial in c, not c^L f(theta); the max-margin theory (and its certificates) do not apply and ``build``
refuses it with ``HomogeneityError`` (so does an output bias, a constant added to f).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from lexmargin import Block, Model, ops
from lexmargin.errors import HomogeneityError, ModelError

ACTIVATIONS = ("relu", "leaky_relu")
LATER_BIAS = ("a bias after the first hidden layer makes f(c theta) a polynomial in c, not c^L f(theta) "
              "(not homogeneous)")


def _widths(hidden) -> tuple[int, ...]:
    values = (hidden,) if isinstance(hidden, Integral) and not isinstance(hidden, bool) else hidden
    try:
        widths = tuple(values)
    except TypeError:
        raise ModelError(f"mlp: hidden must be a sequence of positive integers; got {hidden!r}") from None
    for h in widths:
        if isinstance(h, bool) or not isinstance(h, Integral) or h < 1:
            raise ModelError(f"mlp: hidden must be a sequence of positive integers; got {hidden!r}")
    return tuple(int(h) for h in widths)


def _first_bias(bias, n_layers: int) -> bool:
    """True/False, or one flag per layer (k hidden + output): only the first hidden layer may have one."""
    if isinstance(bias, bool):
        flags = [bias] + [False] * (n_layers - 1)
    elif isinstance(bias, Sequence) and not isinstance(bias, str) and len(bias) == n_layers \
            and all(isinstance(b, bool) for b in bias):
        flags = list(bias)
    else:
        raise ModelError(f"mlp: bias must be True/False or {n_layers} booleans (one per layer); got {bias!r}")
    if n_layers == 1 and flags[0]:
        raise HomogeneityError("mlp: a bias on the output layer adds a constant to f (not homogeneous); "
                               "drop it, or add a hidden layer and bias that one")
    later = [i + 1 for i, flag in enumerate(flags) if flag and i > 0]
    if later:
        raise HomogeneityError(f"mlp: bias in layer {later[0]}: {LATER_BIAS}; keep a bias only in the first "
                               "hidden layer (bias=True)")
    return flags[0]


def activation_function(kind: str, slope: float = 0.1):
    """s(z) on every backend for ``kind`` in "relu" | "leaky_relu" | "identity" (slope in [0, 1])."""
    if kind == "relu":
        return ops.relu
    if kind == "leaky_relu":
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 <= slope <= 1:
            raise ModelError(f"mlp: leaky_relu slope must be in [0, 1] (max(z, slope z)); got {slope!r}")
        return lambda z: ops.leaky_relu(z, float(slope))
    if kind == "identity":
        return lambda z: z
    raise ModelError(f"mlp: activation must be one of {ACTIVATIONS}; got {kind!r}")


def network(input_dim: int, hidden, activations, *, bias: bool = False, name: str = "mlp",
            description: str = "", n_classes: int | None = None) -> Model:
    """An MLP with one activation per hidden layer (mixed nets, e.g. from ``lexmargin.from_torch``).

    Args:
        input_dim: D, the number of input features.
        hidden: widths (h_1, ..., h_k), k >= 0.
        activations: k pairs (kind, slope), kind in "relu" | "leaky_relu" | "identity".
        bias: a first-layer bias b_1 (needs k >= 1).
        name, description: of the Model.
        n_classes: K >= 2 for a K-output net g = A s(...) with A (K, h_k) (the array ``a``), margins
            f_nj = g_{y_n} - g_j; None (default) for the one-output binary net.

    Returns:
        The Model: blocks layer1 ({W1, b1} or {W1}) ... layerk, output ({a}), each of degree 1.
    """
    widths = _widths(hidden)
    K = _classes(n_classes)
    if len(activations) != len(widths):
        raise ModelError(f"mlp: need one activation per hidden layer ({len(widths)}); got {len(activations)}")
    first_bias = _first_bias(bool(bias), len(widths) + 1)
    sigmas = [activation_function(kind, slope) for kind, slope in activations]
    dims = (int(input_dim),) + widths
    blocks = [Block(f"layer{i}", {f"W{i}": (dims[i], dims[i - 1]), **({"b1": (dims[1],)} if i == 1 and first_bias
                                                                      else {})}, degree=1)
              for i in range(1, len(dims))]
    blocks.append(Block("output", {"a": (dims[-1],) if K is None else (K, dims[-1])}, degree=1))

    def output(p, x):
        h = x
        for i, sigma in enumerate(sigmas, start=1):
            z = ops.matmul(p[f"W{i}"], h)
            h = sigma(z + p["b1"] if i == 1 and first_bias else z)
        return ops.dot(p["a"], h) if K is None else ops.matmul(p["a"], h)

    if K is None:
        model = Model(name, blocks, input_dim=input_dim, output=output, description=description)
    else:
        model = Model(name, blocks, input_dim=input_dim, output=output, outputs=K, description=description)
    # the kernel family (lexmargin.numeric.registry); mixed activations have no batched kernel, and kernel_for says so
    model.numeric_structure = {"family": "layered_net", "hidden": widths, "activations": list(activations),
                               "first_bias": first_bias, "n_classes": K}
    return model


def _classes(n_classes):
    """None (one output) or the number of classes K >= 2."""
    if n_classes is None:
        return None
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 2:
        raise ModelError(f"mlp: n_classes must be an integer >= 2 (or None for one output); got {n_classes!r}")
    return int(n_classes)


def build(input_dim: int, *, hidden=(8,), activation: str = "relu", slope: float = 0.1, bias=False,
          n_classes: int | None = None) -> Model:
    """MLP y * a . s(W_k ... s(W_1 x + b_1)) with one activation throughout.

    Options:
        hidden: hidden widths (h_1, ..., h_k), k >= 0 (default (8,)); the joint degree is k + 1.
        activation: "relu" | "leaky_relu" (default "relu").
        slope: negative-side slope of "leaky_relu", in [0, 1] (default 0.1).
        bias: True for a first-layer bias b_1 (keeps homogeneity); a bias in a later layer (one flag per
            layer) raises HomogeneityError (default False).
        n_classes: K >= 2 for K outputs g = A s(...) (``a`` is (K, h_k); margins f_nj = g_{y_n} - g_j on
            ``Dataset(X, y, n_classes=K)``); None (default): one output, f = y a . s(...).
    """
    if activation not in ACTIVATIONS:
        raise ModelError(f"mlp: activation must be one of {list(ACTIVATIONS)}; got {activation!r}")
    widths = _widths(hidden)
    first_bias = _first_bias(bias, len(widths) + 1)
    if n_classes is not None and not widths:
        raise ModelError("mlp: n_classes needs a hidden layer (without one, use multiclass_linear)")
    model = network(input_dim, widths, [(activation, slope)] * len(widths), bias=first_bias,
                    name=f"mlp_{activation}", description=_describe(widths, activation, slope, first_bias),
                    n_classes=n_classes)
    # the kernel family (lexmargin.numeric.registry): kernel_for builds this LayeredNetKernel (verified)
    model.numeric_structure = {"family": "layered_net", "hidden": widths, "activation": activation,
                               "slope": float(slope), "first_bias": first_bias, "n_classes": n_classes}
    return model


def _describe(widths, activation: str, slope: float, first_bias: bool) -> str:
    act = f"leaky_relu[{slope:g}]" if activation == "leaky_relu" else activation
    inner = "W_1 x + b_1" if first_bias else "W_1 x"
    if not widths:
        return "f = y a . x (no hidden layer)"
    nest = inner if len(widths) == 1 else f"W_{len(widths)} ... {act}({inner})"
    return f"f = y a . {act}({nest}), hidden {list(widths)}"
