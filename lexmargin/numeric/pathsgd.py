"""Path-SGD (Neyshabur et al. 2015) for layered nets with p = 2.

The path norm squared is pi(w)^2 = sum over input-output paths of the product of squared weights.
Its derivative with respect to w_e^2 for the edge e = (u -> v) is kappa_e = gamma_in(u) * gamma_out(v),
where gamma_in(u) sums squared-weight products over paths from the inputs to u and gamma_out(v) over
paths from v to the output (one forward and one backward dynamic program on squared weights).
The Path-SGD step is  w_e <- w_e - eta * dL/dw_e / kappa_e,  with a fresh gradient every step (no
accumulation across steps).

The dynamic programmes run in the namespace of the weights (``backend.namespace``): numpy's ``einsum``
for numpy arrays, batched ``matmul`` for torch, CuPy or ``array_api_strict`` arrays.
"""

from __future__ import annotations

import itertools

import numpy as np

from .backend import namespace


def path_gammas(weights):
    """gamma_in per layer input (list of (R, n_in)) and gamma_out per layer output (list of (R, n_out)).

    ``weights`` are the layer matrices (R, n_out, n_in) from input to output (last one (R, 1, h)).
    """
    xp = namespace(*weights)
    if xp is not np:
        return _path_gammas_xp(xp, weights)
    squares = [np.square(W) for W in weights]
    R, d = weights[0].shape[0], weights[0].shape[2]
    gamma_in = [np.ones((R, d), dtype=weights[0].dtype)]
    for S in squares[:-1]:
        gamma_in.append(np.einsum("roi,ri->ro", S, gamma_in[-1]))
    gamma_out = [np.ones((R, squares[-1].shape[1]), dtype=weights[0].dtype)]
    for S in squares[:0:-1]:
        gamma_out.insert(0, np.einsum("roi,ro->ri", S, gamma_out[0]))
    return gamma_in, gamma_out


def _path_gammas_xp(xp, weights):
    """``path_gammas`` through batched matrix-vector products in the array namespace ``xp``."""
    squares = [xp.square(W) for W in weights]
    gamma_in = [xp.ones_like(weights[0][:, 0, :])]
    for S in squares[:-1]:
        gamma_in.append((S @ gamma_in[-1][:, :, None])[:, :, 0])
    gamma_out = [xp.ones_like(weights[-1][:, :, 0])]
    for S in squares[:0:-1]:
        gamma_out.insert(0, (xp.matrix_transpose(S) @ gamma_out[0][:, :, None])[:, :, 0])
    return gamma_in, gamma_out


def path_scales(weights):
    """kappa for every edge, one array (R, n_out, n_in) per layer.

    kappa_e = gamma_in(u) gamma_out(v) by a forward and a backward dynamic programme over the layers.

    Args:
        weights: the layers' weight matrices, each (R, n_out, n_in).

    Returns:
        One array of scales per layer, shaped like the weights.
    """
    gamma_in, gamma_out = path_gammas(weights)
    return [go[:, :, None] * gi[:, None, :] for gi, go in zip(gamma_in, gamma_out)]


def path_norm_squared(weights) -> np.ndarray:
    """sum over paths of prod w_e^2 (R,).

    Args:
        weights: the layers' weight matrices, each (R, n_out, n_in).

    Returns:
        The squared path norm of each run (R,).
    """
    gamma_in, _ = path_gammas(weights)
    xp = namespace(*weights)
    if xp is not np:
        return xp.sum(xp.square(weights[-1]) * gamma_in[-1][:, None, :], axis=(1, 2))
    return np.einsum("roi,ri->r", np.square(weights[-1]), gamma_in[-1])


def path_scales_bruteforce(weights):
    """kappa by explicit enumeration of all input-output paths (single run, tiny nets only).

    Args:
        weights: the layers' weight matrices, each (n_out, n_in).

    Returns:
        One array of scales per layer (the reference for ``path_scales``).
    """
    mats = [np.asarray(W, dtype=float) for W in weights]
    kappa = [np.zeros_like(W) for W in mats]
    sizes = [mats[0].shape[1]] + [W.shape[0] for W in mats]
    for path in itertools.product(*[range(n) for n in sizes]):
        edges = [(layer, path[layer + 1], path[layer]) for layer in range(len(mats))]
        squares = [mats[layer][o, i] ** 2 for layer, o, i in edges]
        for k, (layer, o, i) in enumerate(edges):
            kappa[layer][o, i] += np.prod(squares[:k] + squares[k + 1:])
    return kappa


def path_sgd_direction(kernel, theta, grad) -> np.ndarray:
    """grad / kappa for a kernel with ``path_scales`` (layered nets).

    Args:
        kernel: a kernel with ``path_scales`` (LayeredNetKernel).
        theta: the parameters (R, P).
        grad: the loss gradient (R, P).

    Returns:
        The Path-SGD (p = 2) direction (R, P).
    """
    scales = getattr(kernel, "path_scales", None)
    if scales is None:
        raise ValueError(f"Path-SGD needs a layered-net kernel; {kernel.name!r} has no path scales")
    kappa = scales(theta)
    if not bool(namespace(kappa).all(kappa > 0)):
        raise FloatingPointError("Path-SGD scale kappa_e is zero for some edge (a dead unit: all paths "
                                 "through it have a zero weight)")
    return grad / kappa


__all__ = ["path_gammas", "path_norm_squared", "path_scales", "path_scales_bruteforce", "path_sgd_direction"]
