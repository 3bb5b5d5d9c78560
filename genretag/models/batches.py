"""How windows go through a compiled network: fixed batch shapes, and the OpenVINO settings every artifact is
compiled with. Shared by the per-window classifiers (:mod:`genretag.models.runtime`) and the track-level YAMNet
(:mod:`genretag.models.track_experts`); NumPy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

OPENVINO_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}
"""f32 only: the CPU's default bf16 changed 2 of 320 real windows' top genre (max abs diff 2e-2)."""


def padded_size(n: int, batch_size: int) -> int:
    """The batch a partial batch of ``n`` windows is padded to: the next power of two
    (at least 8), never above ``batch_size``. Full batches and these few sizes are
    the only shapes the model sees, so it is traced at most ~log2(batch_size) times,
    and 3 windows are never run as a batch of thousands."""
    return min(batch_size, max(8, 1 << max(n - 1, 0).bit_length()))


def batched(run: Callable[[np.ndarray], object], windows: np.ndarray, *, batch_size: int, n_out: int,
            on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """``run`` over ``windows`` in batches of ``batch_size``, a partial one padded to :func:`padded_size`."""
    n = len(windows)
    out = None
    for start in range(0, n, batch_size):
        chunk = windows[start : start + batch_size]
        padded = padded_size(len(chunk), batch_size)
        if len(chunk) < padded:  # a few input shapes only, so the model is traced a few times at most
            pad = np.zeros((padded - len(chunk),) + chunk.shape[1:], np.float32)
            chunk = np.concatenate([chunk, pad])
        result = np.asarray(run(np.ascontiguousarray(chunk, np.float32)))
        if out is None:
            out = np.empty((n,) + result.shape[1:], np.float32)
        done = min(start + batch_size, n)
        out[start:done] = result[: done - start]
        if on_batch is not None:
            on_batch(done)
    return out if out is not None else np.empty((0, n_out), np.float32)
