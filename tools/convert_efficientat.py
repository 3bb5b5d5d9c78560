"""Convert EfficientAT's mn04_as state dict into genretag/pretrained/efficientat_mn04_as.npz, and check it.

    pip install torch --index-url https://download.pytorch.org/whl/cpu   # for this step only
    python tools/convert_efficientat.py ../shared/pretrained/mn04_as_mAP_432.pt genretag/pretrained/efficientat_mn04_as.npz --clips ../shared/corpus

Reads the PyTorch state dict (``torch.load(weights_only=True)``: tensors only, nothing unpickled
beyond them), keeps every tensor but the batch-norm counters as float32 under its own key, and prints
the sha256 to put into ``genretag/models/efficientat.py``. Then it checks the Keras network
(``genretag.models.efficientat.build_network``, batch norm folded, padding as PyTorch pads) against a
reference forward pass written here with ``torch.nn.functional`` straight from the state dict (batch
norm unfolded), on EfficientAT's front end (``genretag.features.audioset_log_mel``) of real clips: every logit and embedding value, and
the top AudioSet classes of each clip. PyTorch is needed only here, never by genretag.
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

from genretag.models import efficientat as eat  # noqa: E402


def read_state_dict(path: Path) -> dict[str, np.ndarray]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.numpy().astype(np.float32) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def reference(w: dict[str, np.ndarray], logmel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network in PyTorch from the state dict: ``float32 [b, 128, t]`` -> (logits [b, 527], embedding [b, 384])."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(v) for k, v in w.items()}

    def conv_bn(x, p, *, stride=1, groups=1, act=None):
        weight = t[f"{p}.0.weight"]
        x = F.conv2d(x, weight, stride=stride, padding=(weight.shape[-1] - 1) // 2, groups=groups)
        x = F.batch_norm(x, t[f"{p}.1.running_mean"], t[f"{p}.1.running_var"], t[f"{p}.1.weight"],
                         t[f"{p}.1.bias"], False, 0.0, eat.BN_EPSILON)
        return act(x) if act else x

    with torch.no_grad():
        x = torch.from_numpy(logmel).unsqueeze(1)
        x = conv_bn(x, "features.0", stride=2, act=F.hardswish)
        for i in range(1, eat.N_BLOCKS + 1):
            p, act = f"features.{i}.block", (F.hardswish if i >= eat.HARD_SWISH_FROM else F.relu)
            y, part = x, 0
            if t[f"{p}.0.0.weight"].shape[-1] == 1:
                y, part = conv_bn(y, f"{p}.0", act=act), 1
            y = conv_bn(y, f"{p}.{part}", stride=2 if i in eat.STRIDE_2 else 1, groups=y.shape[1], act=act)
            part += 1
            se = f"{p}.{part}.conc_se_layers.0"
            if f"{se}.fc1.weight" in t:
                s = y.mean(dim=(2, 3))
                s = torch.sigmoid(F.linear(F.relu(F.linear(s, t[f"{se}.fc1.weight"], t[f"{se}.fc1.bias"])),
                                           t[f"{se}.fc2.weight"], t[f"{se}.fc2.bias"]))
                y = y * s[:, :, None, None]
                part += 1
            y = conv_bn(y, f"{p}.{part}")
            x = y + x if (i not in eat.STRIDE_2 and y.shape == x.shape) else y
        x = conv_bn(x, f"features.{eat.N_BLOCKS + 1}", act=F.hardswish)
        embedding = x.mean(dim=(2, 3))
        hidden = F.hardswish(F.linear(embedding, t["classifier.2.weight"], t["classifier.2.bias"]))
        logits = F.linear(hidden, t["classifier.5.weight"], t["classifier.5.bias"])
    return logits.numpy(), embedding.numpy()


def clips_logmel(clips: Path, limit: int, seconds: float = 2.976) -> tuple[np.ndarray, list[str]]:
    """EfficientAT's exact front end of the middle ``seconds`` of ``limit`` clips spread over ``clips``."""
    from genretag.audio import load_segments, probe
    from genretag.discover import discover
    from genretag.features import AUDIOSET_RATE, audioset_log_mel

    found = sorted(discover([clips]).files)
    files = found[:: max(1, len(found) // limit)][:limit]
    out = []
    for f in files:
        info = probe(f)
        start = max(0.0, info.duration / 2 - seconds / 2)
        audio = load_segments(f, np.array([start]), seconds=seconds, sample_rate=AUDIOSET_RATE, info=info)[0]
        out.append(audioset_log_mel(audio, AUDIOSET_RATE))
    return np.stack(out), [str(f.relative_to(clips)) for f in files]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state_dict", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--limit", type=int, default=16)
    args = parser.parse_args()

    source = hashlib.sha256(args.state_dict.read_bytes()).hexdigest()
    if source != eat.SOURCE_SHA256:
        sys.exit(f"{args.state_dict}: sha256 {source} is not mn04_as_mAP_432.pt's ({eat.SOURCE_SHA256})")
    weights = read_state_dict(args.state_dict)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as fh:
        np.savez(fh, **weights)
    print(f"wrote {args.out}: {len(weights)} arrays, "
          f"{sum(v.size for k, v in weights.items() if 'running' not in k):,} parameters")
    print(f"sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")

    logmel, names = clips_logmel(args.clips, args.limit)
    expected_logits, expected_embedding = reference(weights, logmel)
    model = eat.build_network(weights, n_frames=logmel.shape[-1])
    logits, embedding = (np.asarray(a) for a in model.predict_on_batch(logmel))
    print(f"{len(names)} clips: max |logit diff| {np.abs(logits - expected_logits).max():.2e}, "
          f"max |embedding diff| {np.abs(embedding - expected_embedding).max():.2e}")
    labels = [line.split(",", 2)[2].strip().strip('"') for line in
              (ROOT.parent / "shared" / "pretrained" / "audioset_class_labels_indices.csv").read_text().splitlines()[1:]]
    same = 0
    for name, a, b in zip(names, logits, expected_logits):
        top, ref = np.argsort(-a)[:3], np.argsort(-b)[:3]
        same += list(top) == list(ref)
        print(f"  {name}: {', '.join(labels[i] for i in top)}")
    print(f"top-3 classes identical on {same} of {len(names)} clips")


if __name__ == "__main__":
    main()
