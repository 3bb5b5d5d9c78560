"""Measure what tells music from non-music in the AudioSet network's outputs, and choose the floor.

    python tools/check_music.py [--bundle default] [--json OUT] [--floor F]

Every file is cut into the 8 windows a scan cuts (``extract_track``, the bundle's own features) and the
AudioSet half of the fused model (EfficientAT mn04) is run on each window; its 527 class probabilities
are kept (a bundle whose EfficientAT hears only a few windows, ``audioset_windows``, is scored on those) (cached in ``$XDG_CACHE_HOME/genretag/music-logits-*.npz``). Each candidate score is then
computed per window and pooled per track, and for each floor the table says how many music files it
would withhold (``not-music``) and how many non-music files it catches.

Music (none of it may be withheld): every clip of ``../shared/corpus`` (labels.csv and labels-multi.csv,
1,053), the songs of Debian's ``wesnoth-1.16-music`` (orchestral; ``silence.ogg`` left out),
``fretsonfire-songs-muldjord`` and ``fretsonfire-songs-sectoid`` (``song.ogg``), and
``asterisk-moh-opsound-wav`` (music on hold, 8 kHz telephone audio).

Non-music (each should be caught): signals generated under the cache folder (white, pink and brown
noise; sine tones; beeps; chirps; hum; clicks; silence with hiss at -50 dBFS), speech from ``espeak-ng``
(several voices), and real recorded speech: Debian's ``alsa-utils`` voices
(``/usr/share/sounds/alsa``: "Front centre"...) and the longest 60 prompts of ``asterisk-core-sounds-en-wav`` (its ``silence/`` files left out)
(a woman's recorded voice). Missing packages are skipped with a note
(``apt-get install wesnoth-1.16-music fretsonfire-songs-muldjord fretsonfire-songs-sectoid alsa-utils
asterisk-core-sounds-en-wav asterisk-moh-opsound-wav espeak-ng``). Nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
CORPUS = ROOT.parent / "shared" / "corpus"
RATE = 44_100
SPEECH = (
    "The committee met on Tuesday to discuss the budget for the coming year. After a long debate, the members "
    "agreed to postpone the decision until the next meeting, when the final figures will be available. "
    "In other news, the weather will remain cloudy with occasional showers in the north, and temperatures "
    "will rise slowly towards the weekend. Please remember to return your library books before Friday."
)
VOICES = ("en", "en-us", "en+f3", "de", "fr", "es")


def generated(folder: Path, *, seconds: float = 20.0, seed: int = 0) -> list[Path]:
    """Non-music signals as 44.1 kHz WAVs in ``folder``."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE

    def level(x: np.ndarray, dbfs: float) -> np.ndarray:
        return (x / np.sqrt(np.mean(x**2)) * 10 ** (dbfs / 20)).astype(np.float32)

    def coloured(exponent: float) -> np.ndarray:
        spectrum = np.fft.rfft(rng.standard_normal(n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 1.0)
        return np.fft.irfft(spectrum / f ** (exponent / 2), n)

    gate = lambda period, on: ((t % period) < on).astype(np.float64)
    sweep = lambda period, f0, f1: np.sin(2 * np.pi * (f0 * (t % period) + (f1 - f0) * (t % period) ** 2 / (2 * period)))
    clicks = np.zeros(n)
    clicks[:: RATE // 2] = 1.0
    signals = {
        "white-noise": level(rng.standard_normal(n), -20), "pink-noise": level(coloured(1.0), -20),
        "brown-noise": level(coloured(2.0), -20),
        "tone-440": level(np.sin(2 * np.pi * 440 * t), -12), "tone-1k": level(np.sin(2 * np.pi * 1000 * t), -12),
        "tone-100": level(np.sin(2 * np.pi * 100 * t), -12), "tone-3k": level(np.sin(2 * np.pi * 3000 * t), -18),
        "beeps-1k": level(np.sin(2 * np.pi * 1000 * t) * gate(1.0, 0.2), -15),
        "beeps-two-tone": level(np.sin(2 * np.pi * np.where((t % 1.0) < 0.5, 800, 1200) * t) * gate(0.5, 0.3), -15),
        "chirps-linear": level(sweep(2.0, 100, 8000), -15), "chirps-fast": level(sweep(0.25, 500, 4000), -15),
        "hum-50": level(sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 6)), -20),
        "clicks-120bpm": level(np.convolve(clicks, np.exp(-np.arange(200) / 20.0))[:n], -20),
        "hiss-50dbfs": level(rng.standard_normal(n), -50),
    }
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, x in signals.items():
        sf.write(folder / f"{name}.wav", x, RATE, subtype="PCM_16")
        out.append(folder / f"{name}.wav")
    return out


def espeak(folder: Path) -> list[Path]:
    """``SPEECH`` read by espeak-ng in each of :data:`VOICES` (none when espeak-ng is missing)."""
    if shutil.which("espeak-ng") is None:
        print("note: espeak-ng is not installed; no synthetic speech", file=sys.stderr)
        return []
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for voice in VOICES:
        path = folder / f"espeak-{voice.replace('+', '-')}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), SPEECH], check=True, capture_output=True)
        out.append(path)
    return out


def package_files(package: str, suffix: str) -> list[Path]:
    listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False)
    files = sorted(Path(line) for line in listing.stdout.split() if line.endswith(suffix) and Path(line).is_file())
    if not files:
        print(f"note: {package} is not installed; skipped", file=sys.stderr)
    return files


def file_sets(tmp: Path) -> dict[str, tuple[bool, list[Path]]]:
    """Name -> (is music, files)."""
    import csv

    corpus = []
    for name in ("labels.csv", "labels-multi.csv"):
        with open(CORPUS / name, newline="") as fh:
            corpus += [CORPUS / row["path"] for row in csv.DictReader(fh)]
    prompts = package_files("asterisk-core-sounds-en-wav", ".wav")
    return {
        "corpus": (True, sorted(set(corpus))),
        "wesnoth": (True, [p for p in package_files("wesnoth-1.16-music", ".ogg") if p.name != "silence.ogg"]),
        "muldjord": (True, package_files("fretsonfire-songs-muldjord", "/song.ogg")),
        "sectoid": (True, package_files("fretsonfire-songs-sectoid", "/song.ogg")),
        "moh": (True, package_files("asterisk-moh-opsound-wav", ".wav")),
        "generated": (False, generated(tmp / "generated")),
        "espeak": (False, espeak(tmp / "espeak")),
        "alsa-voices": (False, [p for p in package_files("alsa-utils", ".wav") if "Noise" not in p.name]),
        "asterisk-prompts": (False, sorted((p for p in prompts if p.parent.name != "silence"),
                                           key=lambda p: -p.stat().st_size)[:60]),
    }


def audioset_probabilities(paths: list[Path], features, *, jobs: int = 2) -> dict[Path, np.ndarray]:
    """Each file's windows' 527 AudioSet class probabilities ``float32 [k, 527]`` (files scan cannot cut
    into windows, e.g. silent ones, are left out)."""
    from genretag.config import AUDIOSET_MELS, WindowPolicy
    from genretag.models import efficientat
    from genretag.models.runtime import import_keras
    from genretag.scan.extract import extract_track
    from genretag.scan.pool import run_pool

    keras = import_keras()
    network = efficientat.build_network(n_frames=features.audioset_frames)
    rows = features.n_mels
    out: dict[Path, np.ndarray] = {}
    kwargs = {"config": features, "policy": WindowPolicy(windows=8)}
    for done, outcome in enumerate(run_pool(extract_track, paths, jobs=jobs, timeout=300, kwargs=kwargs), 1):
        track = outcome.value
        if not outcome.ok or track is None or track.status != "ok":
            print(f"  {outcome.item}: {track.status if track is not None else outcome.error}", file=sys.stderr)
            continue
        wide = track.windows[:, rows : rows + AUDIOSET_MELS, : features.audioset_frames]
        logits, _ = network.predict_on_batch(wide.astype(np.float32))
        out[Path(outcome.item)] = np.asarray(keras.ops.sigmoid(logits), np.float32)
        if done % 100 == 0:
            print(f"  {done}/{len(paths)}", file=sys.stderr)
    return out


def cached_probabilities(paths: list[Path], features, *, key: str) -> dict[Path, np.ndarray]:
    from genretag.train.featurecache import cache_dir_default

    digest = hashlib.sha256(("\n".join(map(str, paths)) + key).encode()).hexdigest()[:20]
    cache = cache_dir_default() / f"music-probs-{digest}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return {Path(p): data[str(i)] for i, p in enumerate(data["paths"].tolist()) if str(i) in data}
    probs = audioset_probabilities(paths, features)
    cache.parent.mkdir(parents=True, exist_ok=True)
    arrays = {str(i): probs[p] for i, p in enumerate(paths) if p in probs}
    np.savez(cache, paths=np.array([str(p) for p in paths]), **arrays)
    return probs


def efficientat_windows(features):
    """The windows to run EfficientAT on: the bundle's, EfficientAT's log-mel in every one and no YAMNet rows (its
    probabilities depend on neither, so bundles that differ only there share the cache)."""
    from dataclasses import replace

    return replace(features, yamnet_rate=0, yamnet_windows=0, yamnet_weight=0.0, audioset_windows=0,
                   audioset_weight=0.0)


MUSIC_SUBTREE = range(137, 283)
"""AudioSet's Music and everything beneath it in the ontology (instruments, genres, Song, Soundtrack, moods)."""
SPEECH_CLASSES = (0, 1, 2, 3)
"""Speech; Male, Female, Child speech."""


def window_scores(p: np.ndarray) -> dict[str, np.ndarray]:
    """Candidate per-window music scores from ``float32 [k, 527]`` class probabilities (``music-or-singing``
    is the one shipped: :data:`genretag.models.fusion.MUSIC_CLASSES`)."""
    from genretag.models.fusion import MUSIC_CLASSES

    return {
        "music-or-singing": p[:, [index for index, _ in MUSIC_CLASSES]].max(axis=1),
        "music": p[:, 137],
        "music-subtree-max": p[:, list(MUSIC_SUBTREE)].max(axis=1),
        "music-minus-speech": p[:, 137] - p[:, list(SPEECH_CLASSES)].max(axis=1),
    }


POOLINGS = {"mean": lambda s: float(np.mean(s)), "max": lambda s: float(np.max(s)),
            "median": lambda s: float(np.median(s))}
FLOORS = (0.02, 0.05, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def main() -> None:
    import genretag

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="default", help="a fused bundle (its features cut the windows)")
    parser.add_argument("--json", type=Path, help="write every file's track scores here")
    parser.add_argument("--floor", type=float, default=None, help="list the files on the wrong side of this floor")
    parser.add_argument("--score", default="music-or-singing", help="the candidate --floor lists for")
    parser.add_argument("--pooling", default="mean", choices=tuple(POOLINGS))
    args = parser.parse_args()
    bundle = genretag.load_model(args.bundle).bundle
    features = bundle.card.features
    if not features.audioset_rate:
        sys.exit(f"{args.bundle}: not a fused (musicnn + AudioSet) bundle")
    from genretag.train.featurecache import cache_dir_default

    sets = file_sets(cache_dir_default() / "non-music")  # generated anew each run, the same bytes
    paths = sorted({p for _, files in sets.values() for p in files})
    from genretag.models.efficientat import WEIGHTS_SHA256

    heard = efficientat_windows(features)
    probs = cached_probabilities(paths, heard, key=json.dumps(heard.to_dict()) + WEIGHTS_SHA256)
    from genretag.features import track_picks

    if features.audioset_windows:  # the bundle hears EfficientAT on a few windows a track: its score, theirs
        probs = {p: v[track_picks(len(v), features.audioset_windows)] for p, v in probs.items()}
    tracks: dict[str, dict[str, dict[str, dict[Path, float]]]] = {}
    for name, (_, files) in sets.items():
        for path in files:
            if path not in probs:
                continue
            for score, values in window_scores(probs[path]).items():
                for pooling, pool in POOLINGS.items():
                    tracks.setdefault(score, {}).setdefault(pooling, {}).setdefault(name, {})[path] = pool(values)
    report = {}
    for score, by_pooling in tracks.items():
        for pooling, by_set in by_pooling.items():
            print(f"\n{score}, {pooling} over windows: music files withheld / non-music files caught")
            print(f"{'set':>18} {'files':>6} {'min':>6} {'max':>6}  " + " ".join(f"{f:>6}" for f in FLOORS))
            for name, values in by_set.items():
                v = np.array(list(values.values()))
                music = sets[name][0]
                counts = [int((v < f).sum()) for f in FLOORS]
                print(f"{name + (' (music)' if music else ''):>18} {len(v):>6} {v.min():6.3f} {v.max():6.3f}  "
                      + " ".join(f"{c:>6}" for c in counts))
                report.setdefault(score, {}).setdefault(pooling, {})[name] = {
                    "music": music, "files": len(v), "min": float(v.min()), "max": float(v.max()),
                    "below": {str(f): c for f, c in zip(FLOORS, counts)},
                    "tracks": {str(p): round(s, 4) for p, s in values.items()}}
    if args.floor is not None:
        print(f"\nfiles on the wrong side of {args.score} ({args.pooling}) {args.floor}:")
        for name, values in tracks[args.score][args.pooling].items():
            for path, s in sorted(values.items(), key=lambda item: item[1]):
                if (s < args.floor) == sets[name][0]:
                    print(f"  {name}: {path.name} {s:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
