"""Ensemble of homogeneous sub-models of different depths (Nacson et al. 2019, Theorem 1).

    f_n(theta) = y_n * sum_{k in depths} g_k(theta_k; x_n),

where g_k is a depth-k network (hidden width H_k, activation sigma applied after every hidden layer)

    g_1 = <w1, x>
    g_2 = <u2, sigma(U2_1 x)>
    g_3 = <u3, sigma(U3_2 sigma(U3_1 x))>
    g_k = <uk, sigma(Uk_{k-1} ... sigma(Uk_1 x))>

Each sub-model is its own block ``depth{k}`` of degree k (sigma is "linear", "relu" or
"leaky_relu", all positively 1-homogeneous).  The sum form declares each g_k on its own block, so
the model is not jointly homogeneous (``model.degree is None``); the lexicographic/depth-sensitive
solution maximizes the margin of the shallowest sub-model first.
"""

from collections.abc import Mapping

from lexmargin import Block, Model, ops
from lexmargin.errors import ModelError

ACTIVATIONS = ("linear", "relu", "leaky_relu")


def _positive_int(name, value):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ModelError(f"ensemble: {name} must be a positive integer; got {value!r}")
    return int(value)


def _widths(depths, widths) -> dict[int, int]:
    if isinstance(widths, Mapping):
        missing = [k for k in depths if k > 1 and k not in widths]
        if missing:
            raise ModelError(f"ensemble: widths gives no width for depths {missing}")
        return {k: _positive_int(f"width of depth {k}", widths[k]) if k > 1 else 0 for k in depths}
    return {k: _positive_int("width", widths) if k > 1 else 0 for k in depths}


def _sub_model(k: int, input_dim: int, width: int) -> Block:
    if k == 1:
        return Block("depth1", {"w1": (input_dim,)}, degree=1)
    shapes = {f"U{k}_1": (width, input_dim)}
    shapes.update({f"U{k}_{i}": (width, width) for i in range(2, k)})
    shapes[f"u{k}"] = (width,)
    return Block(f"depth{k}", shapes, degree=k)


def _summand(k: int, sigma):
    if k == 1:
        return lambda p, x: ops.dot(p["w1"], x)

    def g(p, x):
        h = x
        for i in range(1, k):
            h = sigma(ops.matmul(p[f"U{k}_{i}"], h))
        return ops.dot(p[f"u{k}"], h)

    return g


def build(input_dim: int, *, depths=(1, 2, 3), widths=2, activation: str = "linear") -> Model:
    """Sum of sub-models of the given depths.

    Options:
        depths: distinct positive depths of the sub-models (default (1, 2, 3)); block ``depth{k}``
            has degree k.
        widths: hidden width of every sub-model (int, default 2) or a mapping {depth: width}.
        activation: hidden activation "linear" (deep linear sub-models, default), "relu" or
            "leaky_relu" (slope 0.1).
    """
    depths = tuple(_positive_int("depth", k) for k in depths)
    if not depths or len(set(depths)) != len(depths):
        raise ModelError(f"ensemble: depths must be distinct positive integers, at least one; got {depths}")
    if activation not in ACTIVATIONS:
        raise ModelError(f"ensemble: activation must be one of {ACTIVATIONS}; got {activation!r}")
    sigma = {"linear": lambda h: h, "relu": ops.relu, "leaky_relu": ops.leaky_relu}[activation]
    width_of = _widths(depths, widths)
    blocks = [_sub_model(k, input_dim, width_of[k]) for k in depths]
    summands = {f"depth{k}": _summand(k, sigma) for k in depths}
    model = Model("ensemble_" + "_".join(map(str, depths)), blocks, input_dim=input_dim, summands=summands,
                  description=f"f = y sum_k g_k(x), depths {depths}, {activation} hidden layers")
    # the kernel family (lexmargin.numeric.registry): kernel_for builds its batched kernel from this declaration
    model.numeric_structure = {"family": "sum", "blocks": {f"depth{k}": _block_family(k, width_of[k], activation)
                                                           for k in depths}}
    return model


def _block_family(k: int, width: int, activation: str) -> dict:
    """The kernel family of the depth-k sub-model: linear for k = 1, else a layered net of k - 1 hidden layers."""
    if k == 1:
        return {"family": "linear"}
    return {"family": "layered_net", "hidden": (width,) * (k - 1), "activation": activation, "slope": 0.1}
