"""Convert musicnn's MSD_musicnn checkpoint into genretag/pretrained/msd_musicnn.npz.

    pip download musicnn==0.1.0 --no-deps -d /tmp/musicnn && unzip -q /tmp/musicnn/*.whl -d /tmp/musicnn
    python tools/convert_musicnn.py /tmp/musicnn/musicnn/MSD_musicnn/ genretag/pretrained/msd_musicnn.npz --original /tmp/musicnn

Reads the TF1 checkpoint (needs TensorFlow), renames the variables to the Keras
layers of ``genretag.models.musicnn.build_extractor``, and leaves out the
front-end filters that never fire (batch-norm moving variance < 1e-12): their
output is a constant, which is folded into the first mid-end convolution's bias.
Then it checks on random log-mel input that the pruned network's pooled features
equal the full network's (at the kept channels), and prints the sha256 to put
into ``genretag/models/musicnn.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEAD_VARIANCE = 1e-12
BN = {"input_bn": "", "timbral0_bn": "_1", "timbral1_bn": "_2", "temporal0_bn": "_3", "temporal1_bn": "_4",
      "temporal2_bn": "_5", "mid0_bn": "_6", "mid1_bn": "_7", "mid2_bn": "_8"}
CONV = {"timbral0": "", "timbral1": "_1", "temporal0": "_2", "temporal1": "_3", "temporal2": "_4",
        "mid0": "_5", "mid1": "_6", "mid2": "_7"}
BACK_BN = {"pool_bn": "_9", "penultimate_bn": "_10"}
BACK_DENSE = {"penultimate": "", "tags": "_1"}
FRONT = ("timbral0", "timbral1", "temporal0", "temporal1", "temporal2")


def read_checkpoint(folder: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(folder)
    out = {}
    for name, suffix in BN.items():
        for key in ("gamma", "beta", "moving_mean", "moving_variance"):
            out[f"{name}/{key}"] = reader.get_tensor(f"batch_normalization{suffix}/{key}")
    for name, suffix in CONV.items():
        kernel = reader.get_tensor(f"conv2d{suffix}/kernel")
        out[f"{name}/kernel"] = kernel[:, :, 0, :] if name.startswith("mid") else kernel  # [7, C, 1, F] -> Conv1D
        out[f"{name}/bias"] = reader.get_tensor(f"conv2d{suffix}/bias")
    for name, suffix in BACK_BN.items():
        for key in ("gamma", "beta", "moving_mean", "moving_variance"):
            out[f"{name}/{key}"] = reader.get_tensor(f"batch_normalization{suffix}/{key}")
    for name, suffix in BACK_DENSE.items():
        out[f"{name}/kernel"] = reader.get_tensor(f"dense{suffix}/kernel")
        out[f"{name}/bias"] = reader.get_tensor(f"dense{suffix}/bias")
    return {k: v.astype(np.float32) for k, v in out.items()}


def prune(full: dict[str, np.ndarray], eps: float = 1e-3) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Drop dead front-end filters; returns the weights and the kept front-end channel indices."""
    w = dict(full)
    kept_all, constants, offset = [], [], 0
    for name in FRONT:
        var = full[f"{name}_bn/moving_variance"]
        keep = np.flatnonzero(var >= DEAD_VARIANCE)
        dead = np.flatnonzero(var < DEAD_VARIANCE)
        g, b, m = (full[f"{name}_bn/{k}"] for k in ("gamma", "beta", "moving_mean"))
        # a dead filter's ReLU output is 0, so its batch-norm output is this constant
        const = np.zeros(len(var), np.float32)
        const[dead] = b[dead] - g[dead] * m[dead] / np.sqrt(var[dead] + eps)
        constants.append(const)
        w[f"{name}/kernel"] = full[f"{name}/kernel"][..., keep]
        w[f"{name}/bias"] = full[f"{name}/bias"][keep]
        for k in ("gamma", "beta", "moving_mean", "moving_variance"):
            w[f"{name}_bn/{k}"] = full[f"{name}_bn/{k}"][keep]
        kept_all.append(offset + keep)
        offset += len(var)
    kept = np.concatenate(kept_all)
    const = np.concatenate(constants)
    kernel = full["mid0/kernel"]  # [7, 561, 64]
    dropped = np.setdiff1d(np.arange(kernel.shape[1]), kept)
    w["mid0/kernel"] = kernel[:, kept, :]
    w["mid0/bias"] = full["mid0/bias"] + np.einsum("tcf,c->f", kernel[:, dropped, :], const[dropped])
    # the back end: pooled features are (max, mean) per channel, interleaved; a dead channel's are both
    # its constant, so its batch-normed values are constants too, folded into the penultimate bias
    width = len(const) + full["mid0/kernel"].shape[-1] * 3
    keep_pooled = np.concatenate([kept, np.arange(len(const), width)])
    keep_pooled = np.stack([2 * keep_pooled, 2 * keep_pooled + 1], 1).ravel()
    drop_pooled = np.setdiff1d(np.arange(2 * width), keep_pooled)
    g, b, m, v = (full[f"pool_bn/{k}"] for k in ("gamma", "beta", "moving_mean", "moving_variance"))
    pooled_const = np.repeat(const, 2)[drop_pooled]
    normed_const = (pooled_const - m[drop_pooled]) / np.sqrt(v[drop_pooled] + eps) * g[drop_pooled] + b[drop_pooled]
    for k in ("gamma", "beta", "moving_mean", "moving_variance"):
        w[f"pool_bn/{k}"] = full[f"pool_bn/{k}"][keep_pooled]
    w["penultimate/kernel"] = full["penultimate/kernel"][keep_pooled]
    w["penultimate/bias"] = full["penultimate/bias"] + normed_const @ full["penultimate/kernel"][drop_pooled]
    return w, kept


def original_taggram(checkpoint: str, wheel: str, x: np.ndarray) -> np.ndarray:
    """musicnn's own graph (``musicnn.models.define_model``, TF1 style) on ``x`` ``[batch, 96, 187]``."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1.layers needs tf_keras (pip install tf_keras)
    import tensorflow as tf

    sys.path.insert(0, wheel)
    from musicnn import models

    graph = tf.Graph()
    with graph.as_default():
        inp = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        logits = models.define_model(inp, False, "MSD_musicnn", 50)[0]
        probs = tf.nn.sigmoid(logits)
        with tf.compat.v1.Session(graph=graph) as sess:
            tf.compat.v1.train.Saver().restore(sess, checkpoint)
            return sess.run(probs, {inp: np.transpose(x, (0, 2, 1))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="the MSD_musicnn folder of the musicnn 0.1.0 wheel (with trailing /)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--original", help="the unpacked wheel's folder (holding musicnn/): also compare the tag "
                        "probabilities with musicnn's own TF1 graph")
    args = parser.parse_args()
    from genretag.models.musicnn import build_extractor, build_tagger

    full = read_checkpoint(args.checkpoint)
    pruned, kept = prune(full)
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 4.0, (16, 96, 187)).astype(np.float32)  # logc values of real music lie in 0..6
    a = np.asarray(build_extractor(full)(x))
    b = np.asarray(build_extractor(pruned)(x))
    width_full = a.shape[1] // 2
    width_pruned = b.shape[1] // 2
    channels = np.concatenate([kept, np.arange(561, width_full)])
    a_kept = a.reshape(len(x), width_full, 2)[:, channels, :].reshape(len(x), -1)
    front = 2 * len(kept)
    print(f"front-end channels kept: {len(kept)} of 561; pooled features {b.shape[1]} of {a.shape[1]}")
    print(f"max |full - pruned| front-end pooled: {np.abs(a_kept[:, :front] - b[:, :front]).max():.2e}, "
          f"mid-end pooled: {np.abs(a_kept[:, front:] - b[:, front:]).max():.2e} (scale {np.abs(a_kept).max():.1f})")
    assert width_pruned == len(channels)
    full_net, pruned_net = build_extractor(full), build_extractor(pruned)
    tags_full = np.asarray(build_tagger(full_net, full)(a))
    tags_pruned = np.asarray(build_tagger(pruned_net, pruned)(b))
    print(f"max |full - pruned| tag probabilities: {np.abs(tags_full - tags_pruned).max():.2e}")
    if args.original:
        tags_tf1 = original_taggram(args.checkpoint, args.original, x)
        print(f"max |original TF1 graph - pruned Keras| tag probabilities: {np.abs(tags_tf1 - tags_pruned).max():.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **pruned)
    print(args.out, f"{args.out.stat().st_size / 1e6:.2f} MB", "sha256", hashlib.sha256(args.out.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
