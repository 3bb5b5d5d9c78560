"""Convert YAMNet's TensorFlow Lite file into genretag/pretrained/yamnet_as.npz, and check it.

    python tools/convert_yamnet.py ../shared/pretrained/yamnet_spectra_in.tflite genretag/pretrained/yamnet_as.npz --clips ../shared/corpus

The file (``yamnet_spectra_in.tflite``, Coral's build of YAMNet) is quantised to 8 bits: each convolution's
kernel int8 with a scale per output channel, its bias (batch norm folded in) int32, activations int8 after a
ReLU6. The weights are kept as they are (int8 kernels, their scales; the biases dequantised to float32), in
Keras' layouts, under ``layer<n>.*`` (the file's own layer numbers) and ``logits.*``; the network
(``genretag.models.yamnet.build_network``) multiplies them out and runs in float32. Prints the sha256 to put
into ``genretag/models/yamnet.py``. TensorFlow Lite's interpreter (``tf.lite`` or ``ai-edge-litert``) is
needed only here.

Then it checks, on YAMNet's front end (``genretag.features.yamnet_log_mel``) of real clips:

- the front end against ``tf.signal.stft`` and ``tf.signal.linear_to_mel_weight_matrix`` (YAMNet's published
  ``features.py``), and against the reference pair shipped with the network;
- every layer of the Keras network, fed the interpreter's own (dequantised) input to that layer, against the
  interpreter's output of it: within about one int8 step of that output (1/42.5 after a ReLU6);
- the whole network against the interpreter: scores, and the top 3 classes of each clip.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from genretag.models import yamnet  # noqa: E402

PRETRAINED = ROOT.parent / "shared" / "pretrained"


def interpreter(path: Path, *, keep_all: bool = False):
    """The TFLite interpreter, allocated; ``keep_all``: every intermediate tensor kept and no delegate (so they
    can be read)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        import tensorflow as tf

        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    kwargs = {"experimental_preserve_all_tensors": True,
              "experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES} if keep_all else {}
    net = Interpreter(model_path=str(path), **kwargs)
    net.allocate_tensors()
    return net


def dequantised(net, index: int) -> np.ndarray:
    """A tensor's values as floats: ``(q - zero_point) * scale``, per channel where it has a scale per channel."""
    detail = net.get_tensor_details()[index]
    q = net.get_tensor(index).astype(np.float64)
    params = detail["quantization_parameters"]
    if not len(params["scales"]):
        return q.astype(np.float32)
    shape = [1] * q.ndim
    if len(params["scales"]) > 1:
        shape[params["quantized_dimension"]] = -1
    return ((q - params["zero_points"].reshape(shape)) * params["scales"].reshape(shape)).astype(np.float32)


def layer_ops(net) -> list[dict]:
    """The convolution and fully connected ops in order, each with its layer number (the file's ``layer<n>``)."""
    ops = [op for op in net._get_ops_details() if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    for number, op in enumerate(ops, start=1):
        op["layer"] = number if op["op_name"] != "FULLY_CONNECTED" else "logits"
    return ops


def read_weights(net) -> dict[str, np.ndarray]:
    """``layer<n>.kernel_q`` (int8, Keras layout), ``layer<n>.kernel_scale`` (float32, per output channel, shaped to
    broadcast against the kernel), ``layer<n>.bias`` (float32); the same for ``logits``."""
    details = net.get_tensor_details()
    out = {}
    for op in layer_ops(net):
        _, kernel, bias = op["inputs"]
        q = net.get_tensor(kernel)
        params = details[kernel]["quantization_parameters"]
        if np.any(params["zero_points"]):
            raise ValueError(f"layer {op['layer']}: kernel zero points are not 0")
        scales = params["scales"].astype(np.float32)
        if op["op_name"] == "CONV_2D":  # [out, kh, kw, in] -> [kh, kw, in, out]
            q, scale = q.transpose(1, 2, 3, 0), scales.reshape(1, 1, 1, -1)
        elif op["op_name"] == "DEPTHWISE_CONV_2D":  # [1, kh, kw, c] -> [kh, kw, c, 1]
            q, scale = q.transpose(1, 2, 3, 0), scales.reshape(1, 1, -1, 1)
        else:  # [521, 1024] -> [1024, 521], one scale for all
            q, scale = q.T, np.broadcast_to(scales.reshape(1, -1), (1, q.shape[0])).copy()
        name = op["layer"] if op["layer"] == "logits" else f"layer{op['layer']}"
        out[f"{name}.kernel_q"] = np.ascontiguousarray(q)
        out[f"{name}.kernel_scale"] = scale
        out[f"{name}.bias"] = dequantised(net, bias)
    return out


def clip_patches(clips: Path, limit: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """One patch (the middle 0.96 s) of ``limit`` clips spread over ``clips``: (patches ``[k, 96, 64]``, names,
    the 16 kHz audio ``[k, n]`` they came from)."""
    from genretag.audio import load_segments, probe
    from genretag.config import YAMNET_RATE
    from genretag.discover import discover
    from genretag.features import yamnet_log_mel, yamnet_patches

    found = sorted(discover([clips]).files)
    files = found[:: max(1, len(found) // limit)][:limit]
    audio, seconds = [], 0.975  # 1 + (15600 - 400) // 160 = 96 frames
    for f in files:
        info = probe(f)
        start = max(0.0, info.duration / 2 - seconds / 2)
        audio.append(load_segments(f, np.array([start]), seconds=seconds, sample_rate=YAMNET_RATE, info=info)[0])
    audio = np.stack(audio)
    return yamnet_patches(yamnet_log_mel(audio))[:, 0], [str(f.relative_to(clips)) for f in files], audio


def check_front_end(audio: np.ndarray) -> None:
    import tensorflow as tf

    from genretag.config import YAMNET_GAIN
    from genretag.features import yamnet_log_mel

    mel = tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125.0, 7500.0).numpy()
    ref = np.log(np.abs(tf.signal.stft(audio * YAMNET_GAIN, 400, 160, 512).numpy()) @ mel + 0.001)
    print(f"front end vs tf.signal on {len(audio)} clips: max |diff| {np.abs(yamnet_log_mel(audio) - ref).max():.2e}")
    wave = np.fromfile(PRETRAINED / "yamnet_test_audio.bin", np.int16).astype(np.float32) / 32768
    expected = np.fromfile(PRETRAINED / "yamnet_test_spectra.bin", np.float32).reshape(96, 64)
    got = yamnet_log_mel(wave)[:96]
    print(f"front end vs the shipped reference patch: correlation {np.corrcoef(got.ravel(), expected.ravel())[0, 1]:.5f}, "
          f"mean |diff| {np.abs(got - expected).mean():.3f}, max {np.abs(got - expected).max():.3f}")


def check_layers(source: Path, model, patch: np.ndarray) -> float:
    """The largest difference, in int8 steps of the layer's output, between each Keras layer and the interpreter,
    both fed the interpreter's input to that layer."""
    net = interpreter(source, keep_all=True)
    net.set_tensor(net.get_input_details()[0]["index"], patch[None])
    net.invoke()
    worst = 0.0
    for op in layer_ops(net):
        if op["layer"] == "logits":
            continue
        name = f"layer{op['layer']}"
        x = dequantised(net, op["inputs"][0])
        y = model.get_layer(f"{name}_relu6")(model.get_layer(name)(x))
        expected = dequantised(net, op["outputs"][0])
        step = net.get_tensor_details()[op["outputs"][0]]["quantization_parameters"]["scales"][0]
        worst = max(worst, float(np.abs(np.asarray(y) - expected).max() / step))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tflite", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--limit", type=int, default=16)
    args = parser.parse_args()

    source = hashlib.sha256(args.tflite.read_bytes()).hexdigest()
    if source != yamnet.SOURCE_SHA256:
        sys.exit(f"{args.tflite}: sha256 {source} is not yamnet_spectra_in.tflite's ({yamnet.SOURCE_SHA256})")
    weights = read_weights(interpreter(args.tflite, keep_all=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as fh:
        np.savez(fh, **weights)
    print(f"wrote {args.out}: {len(weights)} arrays, "
          f"{sum(v.size for k, v in weights.items() if not k.endswith('scale')):,} parameters")
    print(f"sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")

    patches, names, audio = clip_patches(args.clips, args.limit)
    check_front_end(audio)
    model = yamnet.build_network(yamnet.dequantise(weights))
    print(f"every layer vs the interpreter's, on the interpreter's input to it: largest difference "
          f"{max(check_layers(args.tflite, model, p) for p in patches):.2f} int8 steps")
    net = interpreter(args.tflite)
    into, out = net.get_input_details()[0]["index"], net.get_output_details()[0]["index"]
    expected = []
    for p in patches:
        net.set_tensor(into, p[None])
        net.invoke()
        expected.append(net.get_tensor(out)[0].copy())
    expected = np.array(expected)
    logits, _ = (np.asarray(a) for a in model.predict_on_batch(patches))
    scores = 1.0 / (1.0 + np.exp(-logits))
    print(f"{len(names)} clips: scores vs the 8-bit interpreter's: max |diff| {np.abs(scores - expected).max():.4f}, "
          f"mean {np.abs(scores - expected).mean():.5f} (its scores come in steps of 1/256 = 0.0039)")
    labels = [line.split(",", 2)[2].strip().strip('"') for line in
              (PRETRAINED / "audioset_class_labels_indices.csv").read_text().splitlines()[1:]]
    same = 0
    for name, a, b in zip(names, scores, expected):
        top, ref = np.argsort(-a)[:3], np.argsort(-b, kind="stable")[:3]
        same += set(top) == set(ref)
        print(f"  {name}: {', '.join(f'{labels[yamnet.audioset_index(i)]} {a[i]:.3f} ({b[i]:.3f})' for i in top)}")
    print(f"top-3 classes the same on {same} of {len(names)} clips")


if __name__ == "__main__":
    main()
