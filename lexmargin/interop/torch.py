"""PyTorch (and numpy / JAX) multilayer perceptrons as lexmargin models, and back.

A binary classifier  g(x) = w_m^T s_{m-1}(W_{m-1} ... s_1(W_1 x + b_1))  built from ``nn.Linear`` layers
with positively homogeneous activations is read into the lexmargin Model  f_n(theta) = y_n g(theta; x_n)
over the blocks layer1 = {W1[, b1]}, ..., layerk = {Wk}, output = {a = w_m} (degree 1 each, joint degree
m = number of Linear layers; ``models/mlp.py``) and the flat theta of its weights:

* ``from_torch(module, input_dim=None) -> (model, theta)``: ``nn.Sequential`` (nested too) or any
  ``nn.Module`` whose forward is a chain that ``torch.fx.symbolic_trace`` can record, of ``Linear``,
  ``ReLU``, ``LeakyReLU(negative_slope in [0, 1])``, ``Identity`` and ``Flatten(start_dim=1)`` modules and
  the calls ``F.relu``/``torch.relu``/``x.relu()``, ``F.leaky_relu``, ``torch.flatten(x, 1)``/``x.flatten(1)``;
* ``to_state_dict(model, theta, module)``: the way back, tensors in the module's dtype and device, for
  ``module.load_state_dict``;
* ``from_arrays(layers, activation="relu", slope=0.01)``: the same from plain arrays (numpy, JAX, ...):
  a list of ``{"weight": (out, in), "bias": (out,)}`` dicts or a state_dict-like mapping ``{"0.weight": ...}``,
  one activation between consecutive layers; ``to_arrays`` is its way back.  No PyTorch needed;
* ``load_state_dict(path)``: the arrays of an ``.npz`` (state_dict keys) or a PyTorch ``.pt``/``.pth``
  state_dict (``torch.load(weights_only=True)``: never unpickles code).

Homogeneity.  s(c z) = c s(z) for c > 0 and every supported s, so f(c theta) = c^m f(theta).  A bias on
the first Linear is a weight on a constant input 1 (``[W_1, b_1] [x; 1]``) and keeps this.  A bias on a later
Linear does not: layer l's pre-activation becomes c^l W_l h + c b_l, so f(c theta) is a polynomial in c;
an output bias adds a constant.  Both are refused with ``HomogeneityError`` (the max-margin theory and its
certificates need homogeneity).  No activation may follow the output layer or precede the first Linear.

K classes.  An output layer of K > 1 units gives the K-output model g(x) = A s(...) in R^K (``a`` is (K, h_k),
the bundled ``mlp`` with ``n_classes=K``, or ``mlp_mixed`` / ``mlp_linear``), whose margin rows are
f_{n,j} = g_{y_n}(x_n) - g_j(x_n), j != y_n, on ``Dataset(X, y, n_classes=K)`` with integer labels 0..K-1
(docs/multiclass.md); a single ``Linear(d, K, bias=False)`` is the bundled ``multiclass_linear`` (array ``W``).

When all hidden activations are the same ReLU or LeakyReLU the model is the bundled ``mlp``, for which
``lexmargin.numeric.kernel_for`` finds the fast numpy kernel; mixed activations (or none, Linear after
Linear) give a Model built by ``models.mlp.network`` with the same array names.  PyTorch is imported only
by the functions that take or return tensors (``pip install "lexmargin[torch]"``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from ..errors import DataError, HomogeneityError, ModelError

SUPPORTED = "Linear, ReLU, LeakyReLU, Identity and Flatten"
ACTIVATIONS = ("relu", "leaky_relu", "identity")


@dataclass(frozen=True)
class Layer:
    """One Linear layer: weight (out, in), bias (out,) or None, and the activation after it."""

    key: str
    weight: np.ndarray
    bias: np.ndarray | None
    activation: tuple[str, float] = ("identity", 0.0)


# ---- checks shared by every front door ----------------------------------------------------------
def _compose(first: tuple[str, float], then: tuple[str, float]) -> tuple[str, float]:
    """then(first(z)) for max(z, s z) activations: slopes multiply; relu is slope 0."""
    if first[0] == "identity":
        return then
    if then[0] == "identity":
        return first
    if "relu" in (first[0], then[0]):
        return ("relu", 0.0)
    return ("leaky_relu", first[1] * then[1])


def _check_slope(slope, label: str) -> float:
    if isinstance(slope, bool) or not isinstance(slope, (int, float, np.floating)) or not 0 <= slope <= 1:
        raise ModelError(f"{label}: negative slope {slope!r} is not in [0, 1]; lexmargin's leaky_relu is "
                         "max(z, slope z)")
    return float(slope)


def _check_layers(layers: list[Layer], input_dim: int | None) -> int:
    """Shapes, output width, biases; returns the input dimension."""
    if not layers:
        raise ModelError(f"no Linear layer found; lexmargin reads MLPs of {SUPPORTED}")
    for prev, layer in pairwise(layers):
        if layer.weight.shape[1] != prev.weight.shape[0]:
            raise ModelError(f"layer {layer.key!r} takes {layer.weight.shape[1]} inputs but {prev.key!r} gives "
                             f"{prev.weight.shape[0]}")
    last = layers[-1]
    if last.weight.shape[0] < 1:
        raise ModelError(f"output layer {last.key!r} has no outputs; a binary classifier has one, a K-class one K")
    if last.activation[0] != "identity":
        raise ModelError(f"an activation follows the output layer {last.key!r}; the score must be its output")
    if last.bias is not None:
        raise HomogeneityError(f"output layer {last.key!r} has a bias: it adds a constant to f, which is then not "
                               "homogeneous; build it with bias=False")
    later = [layer.key for layer in layers[1:] if layer.bias is not None]
    if later:
        raise HomogeneityError(f"hidden layer {later[0]!r} has a bias: a bias after the first layer makes "
                               "f(c theta) a polynomial in c, not c^L f(theta); keep a bias only in the first layer")
    dim = int(layers[0].weight.shape[1])
    if input_dim is not None and int(input_dim) != dim:
        raise ModelError(f"input_dim={input_dim} but the first layer {layers[0].key!r} takes {dim} inputs")
    return dim


def _finite(array, what: str) -> np.ndarray:
    out = np.array(array, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(out)):
        raise DataError(f"{what} contains non-finite values (NaN or inf)")
    return out


def _build(layers: list[Layer], input_dim: int | None = None):
    """(Model, theta) for checked layers: the bundled mlp when the hidden activations agree; K outputs give
    the K-output model (``multiclass_linear`` for a single Linear, else the mlp with ``n_classes=K``)."""
    from ..models import mlp, multiclass_linear

    dim = _check_layers(layers, input_dim)
    n_out = int(layers[-1].weight.shape[0])
    classes = None if n_out == 1 else n_out
    hidden = tuple(int(layer.weight.shape[0]) for layer in layers[:-1])
    activations = [layer.activation for layer in layers[:-1]]
    bias = len(layers) > 1 and layers[0].bias is not None
    kinds = set(activations)
    if classes is not None and not hidden:
        model = multiclass_linear.build(dim, n_classes=classes)
    elif len(kinds) <= 1 and (not kinds or next(iter(kinds))[0] != "identity"):
        kind, slope = next(iter(kinds)) if kinds else ("relu", 0.0)
        model = mlp.build(dim, hidden=hidden, activation=kind, slope=slope if kind == "leaky_relu" else 0.1,
                          bias=bias, n_classes=classes)
    else:
        names = ", ".join(_activation_name(a) for a in activations)
        name = "mlp_linear" if kinds == {("identity", 0.0)} else "mlp_mixed"
        score = "f = y a . " if classes is None else f"g = A ({classes} outputs) "
        model = mlp.network(dim, hidden, activations, bias=bias, name=name, n_classes=classes,
                            description=f"{score}s_k(W_k ... s_1(W_1 x{' + b_1' if bias else ''})), "
                                        f"hidden {list(hidden)}, activations [{names}]")
    return model, model.flatten(_named_arrays(layers))


def _activation_name(activation: tuple[str, float]) -> str:
    kind, slope = activation
    return f"leaky_relu[{slope:g}]" if kind == "leaky_relu" else kind


def _named_arrays(layers: list[Layer]) -> dict[str, np.ndarray]:
    named = {f"W{i}": layer.weight for i, layer in enumerate(layers[:-1], start=1)}
    if len(layers) > 1 and layers[0].bias is not None:
        named["b1"] = layers[0].bias
    last = layers[-1].weight
    if last.shape[0] > 1 and len(layers) == 1:
        return {"W": last}                   # multiclass_linear: g = W x
    named["a"] = last[0] if last.shape[0] == 1 else last
    return named


def _layer_arrays(model, theta) -> list[dict[str, np.ndarray]]:
    """Per Linear layer {"weight", "bias"?} (torch layout) of an mlp-shaped model's theta."""
    names = list(model.layout.names)
    if names == ["W"] and getattr(model, "n_outputs", 1) > 1:       # multiclass_linear: one Linear (K, d)
        return [{"weight": np.array(model.unflatten(np.asarray(theta, dtype=float))["W"])}]
    hidden = [n for n in names if n.startswith("W")]
    if "a" not in names or hidden != [f"W{i}" for i in range(1, len(hidden) + 1)] \
            or set(names) - set(hidden) - {"a", "b1"}:
        raise ModelError(f"model {model.name!r} is not an MLP of from_torch / from_arrays (arrays W1..Wk, b1, a); "
                         f"its arrays are {names}")
    p = model.unflatten(np.asarray(theta, dtype=float))
    a = np.array(p["a"])
    out = [{"weight": np.array(p[n])} for n in hidden] + [{"weight": a if a.ndim == 2 else a[None, :]}]
    if "b1" in p:
        out[0]["bias"] = np.array(p["b1"])
    return out


# ---- numpy / JAX ------------------------------------------------------------------------------------
def _layers_from_mapping(arrays: Mapping) -> list[dict]:
    """{"fc1.weight": W, "fc1.bias": b, ...} -> one dict per prefix, in the mapping's order."""
    groups: dict[str, dict] = {}
    for key, value in arrays.items():
        prefix, _, field = str(key).rpartition(".")
        if field not in ("weight", "bias"):
            raise ModelError(f"state_dict key {key!r} is neither <layer>.weight nor <layer>.bias; lexmargin reads "
                             f"MLPs of {SUPPORTED}")
        groups.setdefault(prefix, {"key": prefix})[field] = value
    return list(groups.values())


def _layer_from_dict(index: int, entry, activation: tuple[str, float]) -> Layer:
    if not isinstance(entry, Mapping) or "weight" not in entry:
        raise ModelError(f"layer {index} must be a mapping with 'weight' (out, in) and optionally 'bias' (out,); "
                         f"got {type(entry).__name__}")
    unknown = set(entry) - {"weight", "bias", "key"}
    if unknown:
        raise ModelError(f"layer {index} has entries {sorted(unknown)}; expected 'weight' and 'bias'")
    key = str(entry.get("key", index))
    weight = _finite(entry["weight"], f"weight of layer {key!r}")
    if weight.ndim != 2:
        raise ModelError(f"weight of layer {key!r} must be 2-D (out, in); got shape {weight.shape}")
    bias = entry.get("bias")
    if bias is not None:
        bias = _finite(bias, f"bias of layer {key!r}")
        if bias.shape != (weight.shape[0],):
            raise ModelError(f"bias of layer {key!r} must have shape ({weight.shape[0]},); got {bias.shape}")
    return Layer(key, weight, bias, activation)


def from_arrays(layers, activation: str = "relu", slope: float = 0.01, input_dim: int | None = None):
    """An MLP given as arrays (numpy, JAX, ...) as a lexmargin (Model, theta).

    Args:
        layers: a list of ``{"weight": W (out, in), "bias": b (out,)}`` dicts (the bias optional; PyTorch's
            layout), input layer first, or a state_dict-like mapping ``{"0.weight": W, "0.bias": b, ...}`` in
            layer order.
        activation: between consecutive layers: "relu", "leaky_relu" (max(z, slope z)) or "identity".
        slope: the negative slope of "leaky_relu", in [0, 1] (default 0.01, PyTorch's).
        input_dim: when given, checked against the first layer's inputs.

    Returns:
        (model, theta): the bundled ``mlp`` model (or the identity-activation net) and its flat parameters.

    Raises:
        HomogeneityError: a bias after the first layer, or on the output layer.
        ModelError: shapes that do not chain, an output layer without outputs, an unknown activation.
        DataError: non-finite weights.
    """
    if activation not in ACTIVATIONS:
        raise ModelError(f"activation must be one of {list(ACTIVATIONS)}; got {activation!r}")
    act = (activation, _check_slope(slope, "leaky_relu") if activation == "leaky_relu" else 0.0)
    entries = _layers_from_mapping(layers) if isinstance(layers, Mapping) else layers
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise ModelError(f"layers must be a list of {{'weight', 'bias'}} dicts or a state_dict-like mapping; "
                         f"got {type(layers).__name__}")
    parsed = [_layer_from_dict(i, e, act if i < len(entries) - 1 else ("identity", 0.0))
              for i, e in enumerate(entries)]
    return _build(parsed, input_dim)


def to_arrays(model, theta) -> list[dict[str, np.ndarray]]:
    """The way back of ``from_arrays``: ``[{"weight": W, "bias": b?}, ...]`` (float64, PyTorch layout).

    Args:
        model: a Model from ``from_arrays``/``from_torch`` or the bundled ``mlp``.
        theta: its flat parameters (P,).

    Returns:
        One dict per Linear layer, input layer first.
    """
    return _layer_arrays(model, theta)


def load_state_dict(path) -> dict[str, np.ndarray]:
    """The arrays of a saved state_dict: ``.npz`` (keys as in ``module.state_dict()``) or PyTorch ``.pt``/``.pth``.

    Args:
        path: the file; ``.pt``/``.pth`` is read with ``torch.load(weights_only=True)`` (tensors only, no code).

    Returns:
        key -> float64 array, in the file's order.

    Raises:
        DataError: missing, corrupt or foreign file, or entries that are not numeric tensors.
        ImportError: a ``.pt`` file without PyTorch installed.
    """
    from ..fileio import corrupt, read_npz

    path = Path(path)
    if path.suffix not in (".pt", ".pth"):
        return {key: _numeric(value, key, path) for key, value in read_npz(path, "state_dict").items()}
    torch = _torch()
    if not path.is_file():
        raise DataError(f"state_dict file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged or foreign files
        raise corrupt(path, "state_dict", exc) from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise corrupt(path, "state_dict", "it is not a mapping of tensors (save module.state_dict())")
    return {str(k): _numeric(v.detach().to("cpu", torch.float64).numpy(), k, path) if v.is_floating_point()
            else _numeric(v.numpy(), k, path) for k, v in state.items()}


def _numeric(value, key, path) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise DataError(f"{path}: entry {key!r} is not numeric (dtype {array.dtype})")
    return array.astype(np.float64)


# ---- PyTorch ----------------------------------------------------------------------------------------
def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError('lexmargin.from_torch needs PyTorch: pip install "lexmargin[torch]"') from None
    return torch


@dataclass(frozen=True)
class _Step:
    """One element of the chain: a Linear (module), an activation (kind, slope) or nothing (Identity, Flatten)."""

    label: str
    linear: object = None
    activation: tuple[str, float] | None = None


def _module_step(label: str, sub, torch) -> _Step:
    nn = torch.nn
    if isinstance(sub, nn.Linear):
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in sub.parameters()):
            raise ModelError(f"layer {label!r} is an uninitialized lazy Linear: run one batch through the net first")
        return _Step(label, linear=sub)
    if isinstance(sub, nn.ReLU):
        return _Step(label, activation=("relu", 0.0))
    if isinstance(sub, nn.LeakyReLU):
        return _Step(label, activation=("leaky_relu", _check_slope(sub.negative_slope, f"LeakyReLU {label!r}")))
    if isinstance(sub, nn.Identity):
        return _Step(label)
    if isinstance(sub, nn.Flatten):
        _check_flatten(sub.start_dim, sub.end_dim, label)
        return _Step(label)
    raise ModelError(f"unsupported layer {label!r} ({type(sub).__name__}); lexmargin reads MLPs of {SUPPORTED}")


def _check_flatten(start_dim, end_dim, label: str) -> None:
    if start_dim != 1 or end_dim != -1:
        raise ModelError(f"Flatten {label!r} has start_dim={start_dim}, end_dim={end_dim}; only Flatten(1, -1) "
                         "(keep the batch dimension, flatten the rest) is supported")


def _sequential_steps(module, prefix: str, torch) -> list[_Step]:
    steps = []
    for name, sub in module.named_children():
        label = f"{prefix}{name}"
        steps += (_sequential_steps(sub, f"{label}.", torch) if isinstance(sub, torch.nn.Sequential)
                  else [_module_step(label, sub, torch)])
    return steps


def _function_step(node, torch) -> _Step:
    F = torch.nn.functional
    target, args, kwargs = node.target, node.args, node.kwargs
    name = getattr(target, "__name__", str(target))
    if node.op == "call_method":
        if target in ("relu", "relu_"):
            return _Step(node.name, activation=("relu", 0.0))
        if target == "flatten":
            _check_flatten(_arg(args, kwargs, 1, "start_dim", 0), _arg(args, kwargs, 2, "end_dim", -1), node.name)
            return _Step(node.name)
    elif target in (torch.relu, torch.relu_, F.relu, F.relu_):
        return _Step(node.name, activation=("relu", 0.0))
    elif target in (F.leaky_relu, F.leaky_relu_):
        slope = _arg(args, kwargs, 1, "negative_slope", 0.01)
        return _Step(node.name, activation=("leaky_relu", _check_slope(slope, f"leaky_relu {node.name!r}")))
    elif target is torch.flatten:
        _check_flatten(_arg(args, kwargs, 1, "start_dim", 0), _arg(args, kwargs, 2, "end_dim", -1), node.name)
        return _Step(node.name)
    what = f"operator {name}" if getattr(operator, name, None) is target else f"call {name}"
    raise ModelError(f"unsupported {what} at {node.name!r} in forward(); lexmargin reads MLPs of {SUPPORTED} "
                     "(relu / leaky_relu / flatten calls)")


def _arg(args, kwargs, index: int, name: str, default):
    return args[index] if len(args) > index else kwargs.get(name, default)


def _traced_steps(module, torch) -> list[_Step]:
    """The chain recorded by torch.fx: one input, every node feeding only the next one."""
    fx = torch.fx
    try:
        graph = fx.symbolic_trace(module).graph
    except Exception as exc:  # noqa: BLE001 - tracing runs the user's forward(); any failure is reported
        text = " ".join(str(exc).split())[:200]
        raise ModelError(f"cannot trace {type(module).__name__}.forward with torch.fx ({type(exc).__name__}: "
                         f"{text}); write the net as nn.Sequential") from None
    steps, previous = [], None
    for node in graph.nodes:
        if node.op == "placeholder":
            if previous is not None:
                raise ModelError(f"{type(module).__name__}.forward takes more than one input")
            previous = node
            continue
        inputs = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node)]
        if node.op == "output":
            if inputs != [previous]:
                raise ModelError(f"{type(module).__name__}.forward does not return the end of its layer chain")
            return steps
        if node.op == "get_attr":
            raise ModelError(f"forward() uses the tensor {node.target!r} directly; use nn.Linear layers")
        if inputs != [previous] or not node.args or node.args[0] is not previous:
            raise ModelError(f"node {node.name!r} of {type(module).__name__}.forward is not a plain chain "
                             "(branches, residuals and extra inputs are not supported)")
        steps.append(_module_step(node.target, module.get_submodule(node.target), torch)
                     if node.op == "call_module" else _function_step(node, torch))
        previous = node
    raise ModelError(f"{type(module).__name__}.forward has no output")


def _steps(module, torch) -> list[_Step]:
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise ModelError(f"from_torch takes a torch.nn.Module; got {type(module).__name__}")
    if isinstance(module, nn.Sequential):
        steps = _sequential_steps(module, "", torch)
    elif isinstance(module, (nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Flatten)):
        steps = [_module_step("", module, torch)]      # a bare Linear: state_dict keys "weight", "bias"
    else:
        steps = _traced_steps(module, torch)
    keys = [s.label for s in steps if s.linear is not None]
    shared = {k for k in keys if keys.count(k) > 1}
    if shared:
        raise ModelError(f"Linear {min(shared)!r} is applied more than once (shared weights are not supported)")
    return steps


def _layers_of(steps: list[_Step], arrays) -> list[Layer]:
    """Fold the chain into Linear layers, each with the composition of the activations after it."""
    layers: list[Layer] = []
    for step in steps:
        if step.linear is not None:
            weight, bias = arrays(step)
            layers.append(Layer(step.label, weight, bias))
        elif step.activation is not None:
            if not layers:
                raise ModelError(f"activation {step.label!r} comes before the first Linear layer; apply it to the "
                                 "data instead")
            last = layers[-1]
            layers[-1] = Layer(last.key, last.weight, last.bias, _compose(last.activation, step.activation))
    return layers


def from_torch(module, input_dim: int | None = None):
    """A PyTorch MLP (binary: one output; K classes: K outputs) as a lexmargin (Model, theta).

    Args:
        module: ``nn.Sequential`` or an ``nn.Module`` with a chain forward (see the module docstring), whose
            last Linear has no bias: one output (binary, labels +-1) or K outputs (integer labels 0..K-1).
        input_dim: when given, checked against the first Linear's ``in_features`` (a leading ``Flatten`` makes
            the model's input the flattened sample).

    Returns:
        (model, theta): the bundled ``mlp`` model when the hidden activations agree (fast numpy kernel in
        ``lexmargin.numeric``), else an equivalent Model with per-layer activations; theta is float64.  With
        K > 1 outputs the model has ``n_outputs = K`` (``multiclass_linear`` for a single Linear).

    Raises:
        HomogeneityError: a bias on a Linear after the first, or on the output layer.
        ModelError: an unsupported layer or call (named), an output layer without outputs, a non-chain forward.
        DataError: non-finite weights.
    """
    torch = _torch()

    def arrays(step):
        lin = step.linear
        weight = _finite(lin.weight.detach().to("cpu", torch.float64).numpy(), f"weight of {step.label!r}")
        bias = None if lin.bias is None else _finite(lin.bias.detach().to("cpu", torch.float64).numpy(),
                                                     f"bias of {step.label!r}")
        return weight, bias

    return _build(_layers_of(_steps(module, torch), arrays), input_dim)


def to_state_dict(model, theta, module) -> dict:
    """theta as a state_dict of ``module`` (the way back of ``from_torch``), loadable with ``load_state_dict``.

    Args:
        model: the Model ``from_torch(module)`` returned (or one with the same arrays).
        theta: flat parameters (P,), e.g. a max-margin solution.
        module: the PyTorch module; its parameters give the keys, dtype and device (it is not modified).

    Returns:
        An ordered dict with every key of ``module.state_dict()``: the Linear weights and biases from theta,
        anything else (buffers, unused parameters) copied from the module.

    Raises:
        ModelError: the model's arrays do not match the module's Linear layers.
    """
    torch = _torch()
    linears = [s for s in _steps(module, torch) if s.linear is not None]
    arrays = _layer_arrays(model, theta)
    if len(arrays) != len(linears):
        raise ModelError(f"model {model.name!r} has {len(arrays)} layers but the module has {len(linears)} Linear")
    values = {}
    for step, entry in zip(linears, arrays):
        lin = step.linear
        if tuple(lin.weight.shape) != entry["weight"].shape or (lin.bias is None) != ("bias" not in entry):
            raise ModelError(f"layer {step.label!r} of the module does not match the model's arrays (weight "
                             f"{tuple(lin.weight.shape)} vs {entry['weight'].shape}, bias differs or not)")
        prefix = f"{step.label}." if step.label else ""
        values[f"{prefix}weight"] = _tensor(entry["weight"], lin.weight, torch)
        if lin.bias is not None:
            values[f"{prefix}bias"] = _tensor(entry["bias"], lin.bias, torch)
    own = module.state_dict()
    return type(own)((key, values.get(key, value.detach().clone())) for key, value in own.items())


def _tensor(array: np.ndarray, like, torch):
    return torch.as_tensor(np.ascontiguousarray(array), dtype=like.dtype, device=like.device).clone()


__all__ = ["ACTIVATIONS", "SUPPORTED", "Layer", "from_arrays", "from_torch", "load_state_dict", "to_arrays",
           "to_state_dict"]
