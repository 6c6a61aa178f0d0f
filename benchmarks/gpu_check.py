"""Batched GD on a GPU through lexmargin's generic (array API) path, against that device's matmul peak.

    python benchmarks/gpu_check.py                     # CuPy if it finds a GPU, else torch CUDA, else skipped
    python benchmarks/gpu_check.py --backend cupy      # CuPy only ("no GPU/CuPy: skipped" without one)
    python benchmarks/gpu_check.py --backend torch     # torch on CUDA when there is one, else on the CPU
    python benchmarks/gpu_check.py --backend numpy --runs 8 --samples 2000 --dim 100 --steps 5   # the CPU path
    options: [--runs 64] [--samples 65536] [--dim 2048] [--steps 50] [--dtype float32|float64] [--json out.json]

R = ``--runs`` runs of normalized GD (``numeric.Normalized``) on a ``LinearKernel`` (f = theta A, A = (y X)^T of
shape (d, N)) are advanced at once by ``numeric.Trainer`` with theta0 a CuPy / torch array: the trainer's generic
path, the same code numpy runs (``numeric.backend``), on the device.  One step does two products, the margins
theta A (2 R N d flops) and the gradient e A^T (2 R N d flops); GFLOP/s counts only these 4 R N d flops, so the
loss, the weights and the update are overhead that lowers the figure (the convention of ``bench_numeric.py``).
The peak is the best rate of a large square product (``--peak-n``, default 8192 in float32, 4096 in float64)
timed in the same process on the same device, in the same precision.  R = 64 gives 2 R = 128 flops per element of
A read, so at these sizes a step is bound by the products, not by memory.

Printed: one line for people and one JSON object (also written to ``--json``): backend, device, sizes, seconds per
step, GFLOP/s, the peak and the fraction of it.  Without a GPU and CuPy (``--backend cupy``), or without any GPU
(the default ``auto``), it prints ``no GPU/CuPy: skipped`` and exits 0.  Not part of CI (no GPU there); timed
with ``synchronize`` before and after, after ``--warmup`` steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

SKIPPED = "no GPU/CuPy: skipped"


# ---- backends: (namespace module, device name, array constructor, synchronize) ----------------------------------
def _cupy():
    """CuPy with a visible GPU, or None."""
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # noqa: BLE001 - no CuPy, no driver, no device: all mean "no CuPy GPU"
        return None
    return cupy


def _torch(cuda_only: bool):
    """(torch, device) with CUDA when available (or CPU unless ``cuda_only``), or None."""
    try:
        import torch
    except ImportError:
        return None
    if torch.cuda.is_available():
        return torch, "cuda"
    return None if cuda_only else (torch, "cpu")


def backend(name: str):
    """(name, device description, to_device(numpy) -> array, synchronize()) for ``name``, or None when absent.

    Args:
        name: "auto" (CuPy, else torch CUDA), "cupy", "torch" (CUDA, else CPU) or "numpy".

    Returns:
        The backend, or None when the asked library or GPU is not there.
    """
    if name in ("auto", "cupy"):
        cupy = _cupy()
        if cupy is not None:
            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            return ("cupy", props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"]),
                    cupy.asarray, cupy.cuda.Device().synchronize)
        if name == "cupy":
            return None
    if name in ("auto", "torch"):
        found = _torch(cuda_only=name == "auto")
        if found is None:
            return None
        torch, device = found
        label = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        return "torch", label, (lambda a: torch.asarray(np.array(a), device=device)), sync
    if name == "numpy":
        return "numpy", "cpu", (lambda a: a), (lambda: None)
    return None


# ---- the measurements ----------------------------------------------------------------------------------------------
def matmul_peak(to_device, sync, dtype, n: int, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` n x n products on the backend's device (after one warm-up)."""
    rng = np.random.default_rng(0)
    a, b = to_device(rng.random((n, n)).astype(dtype)), to_device(rng.random((n, n)).astype(dtype))
    best = np.inf
    for i in range(repeats + 1):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        if i:
            best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


def batched_gd(to_device, sync, dtype, runs: int, samples: int, dim: int, steps: int, warmup: int) -> dict:
    """Seconds per step of R runs of normalized GD through ``numeric.Trainer``'s generic path on the device."""
    from lexmargin.numeric import LinearKernel, Normalized, Trainer
    from lexmargin.numeric.backend import to_numpy

    rng = np.random.default_rng(1)
    X = rng.standard_normal((samples, dim))
    y = np.where(X @ rng.standard_normal(dim) > 0, 1.0, -1.0)
    kernel = LinearKernel(X, y, dtype=dtype)
    theta0 = to_device(kernel.random_theta(np.arange(runs), 1.0))
    trainer = Trainer(kernel, theta0, rule=Normalized(0.01), n_steps=warmup + steps, checkpoints=[0],
                      store_direction=False, fused=False)
    trainer.run(until=warmup)
    sync()
    start = time.perf_counter()
    trainer.run(until=warmup + steps)
    sync()
    seconds = (time.perf_counter() - start) / steps
    log_loss = to_numpy(trainer.log_loss)
    return {"seconds_per_step": seconds, "gflops": 4.0 * runs * samples * dim / seconds / 1e9,
            "finite": bool(np.isfinite(log_loss).all()), "generic_path": not trainer.fused}


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("auto", "cupy", "torch", "numpy"), default="auto")
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--samples", type=int, default=65536)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--peak-n", type=int, default=None, help="size of the peak's square product")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON result here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    found = backend(args.backend)
    if found is None:
        print(SKIPPED)
        if args.json:
            args.json.write_text(json.dumps({"status": "skipped", "backend": args.backend, "reason": SKIPPED}) + "\n")
        return 0
    name, device, to_device, sync = found
    dtype = np.dtype(args.dtype)
    gd = batched_gd(to_device, sync, dtype, args.runs, args.samples, args.dim, args.steps, args.warmup)
    peak_n = args.peak_n or (8192 if dtype == np.float32 else 4096)
    peak = matmul_peak(to_device, sync, dtype, min(peak_n, 2048) if name == "numpy" and args.peak_n is None else peak_n)
    result = {"status": "ok", "backend": name, "device": device, "dtype": dtype.name, "runs": args.runs,
              "samples": args.samples, "dim": args.dim, "steps": args.steps, **gd, "peak_gflops": peak,
              "fraction_of_peak": gd["gflops"] / peak}
    print(f"{name} on {device} ({dtype.name}): R={args.runs} N={args.samples} d={args.dim}: "
          f"{gd['seconds_per_step'] * 1e3:.3f} ms/step, {gd['gflops']:.1f} GFLOP/s = "
          f"{100 * result['fraction_of_peak']:.1f} % of the {peak:.1f} GFLOP/s matmul peak")
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
