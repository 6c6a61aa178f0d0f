"""Two-layer network with a positively homogeneous activation.

    f_n(theta) = y_n * sum_j a_j sigma(<v_j, x_n>),     V in R^{H x D} (rows v_j), a in R^H,

blocks ``V`` and ``a`` with the degrees of the activation:

==============  ===========================  ==========  ==========
activation      sigma(z)                     V degree    a degree
==============  ===========================  ==========  ==========
"square"        z^2                          2           1
"squared_relu"  max(z, 0)^2                  2           1
"relu"          max(z, 0)                    1           1
"leaky_relu"    max(z, slope*z)              1           1
==============  ===========================  ==========  ==========

The joint degree is the sum (3 for square / squared_relu, 2 for relu / leaky_relu).
"""

from lexmargin import Block, Model, ops
from lexmargin.errors import ModelError

ACTIVATIONS = {"square": 2, "squared_relu": 2, "relu": 1, "leaky_relu": 1}


def _activation(name: str, slope: float):
    if name == "square":
        return ops.square
    if name == "squared_relu":
        return ops.squared_relu
    if name == "relu":
        return ops.relu
    return lambda z: ops.leaky_relu(z, slope)


def build(input_dim: int, *, activation: str = "relu", width: int = 2, slope: float = 0.1) -> Model:
    """Two-layer network y * a . sigma(V x).

    Options:
        activation: "square" | "squared_relu" | "relu" | "leaky_relu" (default "relu").
        width: number of hidden units H >= 1 (default 2).
        slope: negative-side slope of "leaky_relu", in [0, 1] (default 0.1).
    """
    if activation not in ACTIVATIONS:
        raise ModelError(f"two_layer: activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
    if isinstance(width, bool) or int(width) != width or width < 1:
        raise ModelError(f"two_layer: width must be a positive integer; got {width!r}")
    if not 0 <= slope <= 1:
        raise ModelError(f"two_layer: leaky_relu slope must be in [0, 1]; got {slope!r}")
    sigma = _activation(activation, slope)
    blocks = [Block.array("V", (int(width), input_dim), degree=ACTIVATIONS[activation]),
              Block.array("a", int(width), degree=1)]

    def output(p, x):
        return ops.dot(p["a"], sigma(ops.matmul(p["V"], x)))

    model = Model(f"two_layer_{activation}", blocks, input_dim=input_dim, output=output,
                  description=f"f = y a . {activation}(V x), width {int(width)}")
    # the kernel family (lexmargin.numeric.registry): kernel_for builds its batched kernel from this declaration
    model.numeric_structure = {"family": "layered_net", "hidden": (int(width),), "activation": activation,
                               "slope": float(slope)}
    return model
