"""Every default lives here once, in frozen dataclasses.

The CLI reads its option defaults from these classes; library functions take
them as arguments. Nothing here imports anything heavy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

AUDIO_EXTENSIONS: tuple[str, ...] = (
    ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac",
    ".wav", ".aif", ".aiff", ".wma",
)
"""File name suffixes scan and the dataset loaders accept (lower case)."""


MAX_CARD_BYTES = 1 << 20
"""A model bundle's ``card.json`` is read only up to this size (1 MiB; the default model's is ~10 KiB)."""
MAX_GENRE_MAP_BYTES = 10 << 20
"""A genre map is read only up to this size (10 MiB)."""
MAX_CONFIG_BYTES = 1 << 20
"""A config file is read only up to this size (1 MiB)."""
MAX_REPORT_BYTES = 1 << 30
"""A report ``genretag apply`` reads is read only up to this size (1 GiB: about two million rows of
``scan --json``; its rows are held in memory, a few times the file's size)."""


FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "sample_rate": (1_000, 192_000), "n_fft": (16, 65_536), "n_mels": (1, 1_024), "n_frames": (2, 10_000),
    "window_seconds": (0.0, 60.0), "fmin": (0.0, 1e6), "top_db": (0.0, 1_000.0),
}
"""What a :class:`FeatureConfig` (and so a model card's ``features``) may hold; an integer bound means an
integer value. Beyond these a worker would try to allocate gigabytes per window (``n_fft`` 2^31: 8 GiB;
``window_seconds`` 60 at 192 kHz is 46 MB). ``audioset_rate`` is checked on its own: 0, or an integer from
``sample_rate`` to :data:`AUDIOSET_RATE`."""

SCALES: tuple[str, ...] = ("db", "logc")
NORMALIZATIONS: tuple[str, ...] = ("track", "level", "none")

AUDIOSET_RATE = 32_000
AUDIOSET_MELS = 128
AUDIOSET_HOP = 320  # 10 ms
"""EfficientAT's input (:func:`genretag.features.audioset_log_mel`): 128 mel bands of 32 kHz audio every 10 ms."""

YAMNET_RATE = 16_000
YAMNET_MELS = 64
YAMNET_WINDOW = 400  # 25 ms
YAMNET_HOP = 160  # 10 ms
YAMNET_N_FFT = 512
YAMNET_FMIN, YAMNET_FMAX = 125.0, 7_500.0
YAMNET_PATCH_FRAMES = 96  # 0.96 s
YAMNET_PATCH_HOP = 48  # 0.48 s
"""YAMNet's input (:func:`genretag.features.yamnet_log_mel`): 64 HTK mel bands (125-7500 Hz) of the magnitude
STFT of 16 kHz audio, ``log(mel + 0.001)``, cut into patches of 96 frames every 48."""
YAMNET_PATCH_CHOICES: tuple[int, ...] = (1, 3, 5)
"""How many of a window's YAMNet patches a fused model hears (:attr:`FeatureConfig.yamnet_patches`): 1, the
middle one (frames 96-191 of 296: a fifth of YAMNet's work); 3, every other one (patches 0, 2, 4: frames 0-95,
96-191, 192-287, side by side, each frame heard once); or 5, every patch of a 2.976-s window (each frame twice)."""
MAX_TRACK_WINDOWS = 64
"""The most windows of a track a track-level expert may hear (:attr:`FeatureConfig.yamnet_windows`,
:attr:`FeatureConfig.audioset_windows`)."""
YAMNET_GAIN = 4.1
"""Gain applied to the audio before YAMNet's front end: the reference pair shipped with the network
(``yamnet_test_audio.bin`` / ``yamnet_test_spectra.bin``) is matched at this gain (every band 1.41 =
ln 4.1 higher than at gain 1, i.e. int16 samples read as ``/ 8000`` instead of ``/ 32768``)."""


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes model input: log-mel windows.

    A window is ``window_seconds`` of mono audio at ``sample_rate``, turned into
    a ``[n_mels, n_frames]`` log-power mel spectrogram. The model bundle
    records these values; inference reads them from the bundle.
    """

    sample_rate: int = 22_050
    n_fft: int = 2_048
    n_mels: int = 128
    n_frames: int = 128
    window_seconds: float = 3.0
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float = 80.0
    """Floor at the track's maximum minus this many dB (0: no floor; ``scale="db"`` only)."""
    scale: str = "db"
    """``db``: ``10 * log10(power)``. ``logc``: ``log10(1 + 10000 * power)``, the
    compression musicnn was trained on."""
    normalize: str = "track"
    """``track``: subtract the mean and divide by the std of the whole track's
    log-mel values (one scalar each), so loudness and mastering gain don't
    decide the genre. ``level`` (``logc`` only): one gain per track, so that its mean
    compressed value is musicnn's training mean; the spectrum's shape and the
    compression stay as the pretrained network knows them. ``none``: as computed."""
    audioset_rate: int = 0
    """0: the window is this config's log-mel alone. Otherwise each window also carries the input of
    the AudioSet network (EfficientAT's own log-mel, :func:`~genretag.features.audioset_log_mel`) of
    the same audio decoded at this rate (32,000: all of it; lower: band-limited to half the rate),
    stacked beneath it: the model input is then :attr:`patch_shape`."""
    yamnet_rate: int = 0
    """0, or :data:`YAMNET_RATE` (16,000; ``sample_rate`` must be the same): each window also carries YAMNet's
    log-mel (:func:`~genretag.features.yamnet_log_mel`, bands first: ``[64, yamnet_frames]``) of the very
    audio this config's log-mel is made from, as decoded (not levelled), stacked beneath the rest."""
    yamnet_patches: int = 5
    """How many 0.96-s patches of the window YAMNet scores (:data:`YAMNET_PATCH_CHOICES`): 5, all of a
    2.976-s window's, their scores averaged; 3, every other one (0, 2, 4: not overlapping), averaged; 1, the
    middle one (:attr:`yamnet_heard`). The window carries the same log-mel either way;
    the fused network cuts the patches (:func:`genretag.models.fusion.yamnet_scores`)."""
    yamnet_windows: int = 0
    """0: YAMNet (with :attr:`yamnet_rate`) is an expert in every window, inside the per-window network. ``k``
    (1 to :data:`MAX_TRACK_WINDOWS`): a track-level expert instead: only ``k`` of a track's windows carry its
    log-mel (:func:`genretag.features.track_picks`: the centre window of each of ``k`` equal parts), its own
    network scores them, and their mean is fused once per track where windows are pooled, with weight
    :attr:`yamnet_weight` (:func:`genretag.models.runtime.track_mean`)."""
    yamnet_weight: float = 0.0
    """With :attr:`yamnet_windows`, YAMNet's weight in the track's score: ``log(mean_w p_w) + yamnet_weight *
    log q_y`` (``q_y``: each label's largest class score of YAMNet's mean over the ``k`` windows); 0 otherwise
    (YAMNet's weight in each window lives in the network then)."""
    audioset_windows: int = 0
    """0: EfficientAT (with :attr:`audioset_rate`) is an expert in every window, inside the per-window network.
    ``k`` (1 to :data:`MAX_TRACK_WINDOWS`): a track-level expert instead, as :attr:`yamnet_windows` does for
    YAMNet: only the ``k`` windows :func:`genretag.features.track_picks` names carry its log-mel, its own network
    scores them (:mod:`genretag.models.track_experts`), and the per-window network is the genre head alone."""
    audioset_weight: float = 0.0
    """With :attr:`audioset_windows`, EfficientAT's weight in the track's score (``+ audioset_weight * log q_e``,
    ``q_e`` each label's largest class probability of its mean over the ``k`` windows); 0 otherwise."""

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r} (expected {', '.join(SCALES)})")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"unknown normalisation {self.normalize!r} (expected {', '.join(NORMALIZATIONS)})")
        if self.normalize == "level" and self.scale != "logc":
            raise ValueError('normalize="level" needs scale="logc"')
        for name, (low, high) in FEATURE_RANGES.items():
            value = getattr(self, name)
            integer = isinstance(low, int)
            if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
                raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
            if not low <= value <= high:  # also refuses NaN
                raise ValueError(f"{name} {value!r} is out of range ({low} to {high})")
        if self.window_seconds <= 0 or self.hop_length < 1:
            raise ValueError(f"window_seconds {self.window_seconds!r} is too short for {self.n_frames} frames")
        if self.fmax is not None and not (isinstance(self.fmax, (int, float)) and self.fmin < self.fmax <= 1e6):
            raise ValueError(f"fmax {self.fmax!r} must be above fmin and at most 1e6")
        if isinstance(self.audioset_rate, bool) or not isinstance(self.audioset_rate, int):
            raise ValueError(f"audioset_rate must be an integer, got {self.audioset_rate!r}")
        if self.audioset_rate and not self.sample_rate <= self.audioset_rate <= AUDIOSET_RATE:
            raise ValueError(f"audioset_rate must be 0 or between sample_rate and {AUDIOSET_RATE}")
        if self.yamnet_rate not in (0, YAMNET_RATE) or isinstance(self.yamnet_rate, bool):
            raise ValueError(f"yamnet_rate must be 0 or {YAMNET_RATE}, got {self.yamnet_rate!r}")
        if self.yamnet_rate and self.sample_rate != YAMNET_RATE:
            raise ValueError(f"yamnet_rate needs sample_rate {YAMNET_RATE} (YAMNet hears the same audio)")
        if self.yamnet_rate and self.yamnet_frames < YAMNET_PATCH_FRAMES:
            raise ValueError("yamnet_rate needs windows of at least 0.975 s (one YAMNet patch)")
        if type(self.yamnet_patches) is not int or self.yamnet_patches not in YAMNET_PATCH_CHOICES:
            raise ValueError(f"yamnet_patches must be 1, 3 or 5, got {self.yamnet_patches!r}")
        if self.yamnet_rate and len(self.yamnet_heard) < self.yamnet_patches:
            raise ValueError(f"yamnet_patches {self.yamnet_patches} needs windows of at least 2.895 s "
                             f"(this window holds {self.yamnet_patch_count})")
        if type(self.yamnet_windows) is not int or not 0 <= self.yamnet_windows <= MAX_TRACK_WINDOWS:
            raise ValueError(f"yamnet_windows must be an integer from 0 to {MAX_TRACK_WINDOWS}, "
                             f"got {self.yamnet_windows!r}")
        if self.yamnet_windows and not self.yamnet_rate:
            raise ValueError("yamnet_windows needs yamnet_rate (YAMNet's log-mel in the picked windows)")
        weight = self.yamnet_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight < 1.0:
            raise ValueError(f"yamnet_weight must be a number from 0 to below 1, got {weight!r}")
        if bool(self.yamnet_windows) != bool(weight):
            raise ValueError("yamnet_weight goes with yamnet_windows: both set (a track-level YAMNet) or neither")
        if type(self.audioset_windows) is not int or not 0 <= self.audioset_windows <= MAX_TRACK_WINDOWS:
            raise ValueError(f"audioset_windows must be an integer from 0 to {MAX_TRACK_WINDOWS}, "
                             f"got {self.audioset_windows!r}")
        if self.audioset_windows and not self.audioset_rate:
            raise ValueError("audioset_windows needs audioset_rate (EfficientAT's log-mel in the picked windows)")
        weight = self.audioset_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight < 1.0:
            raise ValueError(f"audioset_weight must be a number from 0 to below 1, got {weight!r}")
        if bool(self.audioset_windows) != bool(weight):
            raise ValueError("audioset_weight goes with audioset_windows: both set (a track-level EfficientAT) "
                             "or neither")

    @property
    def window_samples(self) -> int:
        """Samples in one window: 66,150 at 22,050 Hz and 3 s."""
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def hop_length(self) -> int:
        """Hop so that a centred STFT of one window has ``n_frames`` frames.

        With ``center=True`` librosa gives ``1 + n // hop`` frames, so
        ``hop = window_samples // (n_frames - 1)``: 66,150 // 127 = 520.
        """
        return self.window_samples // (self.n_frames - 1)

    @property
    def audioset_frames(self) -> int:
        """EfficientAT frames in one window: ``1 + (n - 1) // 320`` of its ``n`` samples at 32 kHz
        (298 for 2.976 s)."""
        return 1 + (int(round(self.window_seconds * AUDIOSET_RATE)) - 1) // AUDIOSET_HOP

    @property
    def yamnet_frames(self) -> int:
        """YAMNet frames in one window: ``1 + (n - 400) // 160`` of its ``n`` samples at 16 kHz (296 for
        2.976 s: 5 patches)."""
        return 1 + (int(round(self.window_seconds * YAMNET_RATE)) - YAMNET_WINDOW) // YAMNET_HOP

    @property
    def yamnet_patch_count(self) -> int:
        """YAMNet patches of 0.96 s every 0.48 s that fit in one window: ``1 + (yamnet_frames - 96) // 48``
        (5 for 2.976 s); :attr:`yamnet_patches` says how many of them a model hears."""
        return 1 + (self.yamnet_frames - YAMNET_PATCH_FRAMES) // YAMNET_PATCH_HOP

    @property
    def yamnet_heard(self) -> tuple[int, ...]:
        """The patches YAMNet scores, by index (patch ``j`` is frames ``48 j`` to ``48 j + 95``): every one for
        :attr:`yamnet_patches` 5 (0-4 of a 2.976-s window), every other one for 3 (0, 2, 4: side by side, no
        frame twice), the middle one for 1 (2)."""
        count = self.yamnet_patch_count
        if self.yamnet_patches == 1:
            return (count // 2,)
        return tuple(range(0, count, 2 if self.yamnet_patches == 3 else 1))

    @property
    def yamnet_row(self) -> int:
        """The first row of YAMNet's log-mel in a patch (:attr:`patch_shape`)."""
        return self.n_mels + (AUDIOSET_MELS if self.audioset_rate else 0)

    @property
    def patch_shape(self) -> tuple[int, int]:
        """The shape of one window as a model takes it: ``(n_mels, n_frames)``, or with
        :attr:`audioset_rate` ``(n_mels + 128, max(n_frames, audioset_frames))``: this config's
        log-mel in the top-left corner (zeros right of it), EfficientAT's beneath; with :attr:`yamnet_rate`
        YAMNet's ``[64, yamnet_frames]`` beneath those (from row :attr:`yamnet_row`)."""
        if not self.audioset_rate and not self.yamnet_rate:
            return (self.n_mels, self.n_frames)
        frames = max(self.n_frames, self.audioset_frames if self.audioset_rate else 0,
                     self.yamnet_frames if self.yamnet_rate else 0)
        return (self.yamnet_row + (YAMNET_MELS if self.yamnet_rate else 0), frames)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("audioset_rate", "yamnet_rate"):
            if not data[key]:  # a card without it reads the same in an older genretag
                del data[key]
        if data["yamnet_patches"] == YAMNET_PATCH_CHOICES[-1]:  # the default: older cards read the same
            del data["yamnet_patches"]
        if not data["yamnet_windows"]:  # YAMNet in every window (or none): older cards read the same
            del data["yamnet_windows"], data["yamnet_weight"]
        if not data["audioset_windows"]:  # EfficientAT in every window (or none): older cards read the same
            del data["audioset_windows"], data["audioset_weight"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class WindowPolicy:
    """Where windows are cut in a track at inference time."""

    windows: int = 8
    """At most this many windows per track, spread evenly over it."""
    min_spacing: float = 0.5
    """Windows start at least this fraction of a window apart (short tracks get fewer)."""
    edge_margin: float = 0.05
    """Skip this fraction of the track at each end (intros, fade-outs) when it
    is long enough to still fit the windows without overlap."""
    min_seconds: float = 0.5
    """Tracks shorter than this are an error ("too short"); shorter than one
    window, the audio is looped to fill it."""
    silence_dbfs: float = -60.0
    """A track whose decoded windows are all quieter than this RMS level is
    reported as ``silent`` and gets no genre."""


def user_folder(kind: str) -> Path:
    """genretag's own folder of ``kind``, as the XDG base directories say: ``cache``,
    ``$XDG_CACHE_HOME/genretag`` (``~/.cache/genretag``: the prediction store, the feature cache), or
    ``config``, ``$XDG_CONFIG_HOME/genretag`` (``~/.config/genretag``: the config file)."""
    variable, fallback = {"cache": ("XDG_CACHE_HOME", ".cache"), "config": ("XDG_CONFIG_HOME", ".config")}[kind]
    return Path(os.environ.get(variable) or str(Path.home() / fallback)) / "genretag"


def default_jobs() -> int:
    """Decode workers by default: every core the process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


GROUPS = ("track", "album", "artist")
"""What ``--group`` decides a genre for."""
WRITE_TO = ("genre", "genretag")
"""Where ``--write-to`` writes: the genre field, or genretag's own ``GENRETAG_GENRE``."""
ENGINES = ("local", "ray")
"""What ``scan --engine`` (or ``engine`` in the config file) runs on: this machine's pool (the default), or
Ray Data, which writes no tags (as ``--dry-run``)."""

MAX_BATCH_SIZE = 256
"""Largest ``--batch-size``: memory grows with it (the default model: ~1.2 GB at 64), and
batches above 64 were no faster on a 2-core CPU."""


DEFAULT_MODEL = "default"
"""The model a command or a library call uses when none is named: the bundled one of that name."""


def _check(checks: tuple[tuple[bool, str], ...]) -> None:
    """Raise :class:`~genretag.errors.UsageError` with the message of the first check that fails."""
    from genretag.errors import UsageError

    for ok, message in checks:
        if not ok:
            raise UsageError(message)


@dataclass(frozen=True)
class DecisionOptions:
    """What a file's prediction becomes (:func:`genretag.scan.decide`): which genres (``top_k``, the two
    confidence floors, ``genre_map``, ``styles``), and whether the file keeps the genre it has instead
    (``overwrite``, ``merge``, ``write_to``). The deciding code reads these and nothing else; a scan's
    are :attr:`ScanOptions.decision`. Invalid values raise :class:`~genretag.errors.UsageError`.
    """

    top_k: int = 1
    """Up to this many genres per file (styles not counted)."""
    min_confidence: float | None = None
    """The top genre is written only at this (calibrated) probability or more. None: the floor the model's
    card recommends (``calibration.min_confidence``; 0 when it has none), chosen on its validation split; the
    card's confidence table (``genretag models default``) says how often a track is then right and tagged."""
    next_min_confidence: float | None = None
    """Genres after the first (``top_k`` above 1) need this much each. None: the card's
    (``calibration.next_min_confidence``; 0 when it has none)."""
    genre_map: Mapping[str, str] = field(default_factory=dict)
    """Model label -> the value to write; ``""``: never write that label."""
    styles: bool = False
    """After each chosen genre, also write its best style (a finer genre the model card lists beneath it,
    e.g. ``Rock`` then ``Metal``) when that style's score reaches the card's floor for it; renamed or left
    out by ``genre_map`` like a genre, and not counted by ``top_k``. A model without styles writes genres only."""
    overwrite: bool = False
    """Replace a genre the file has that genretag did not write (a reviewed one only in a file named itself)."""
    merge: bool = False
    """Add the predicted genres to the ones the field has, instead of keeping or replacing them."""
    write_to: str = "genre"
    """``genre``: the container's genre field; ``genretag``: genretag's own ``GENRETAG_GENRE``
    field, so a curated genre field is never touched."""

    def __post_init__(self) -> None:
        _check((
            (1 <= self.top_k, "top-k must be at least 1"),
            (self.min_confidence is None or 0.0 <= self.min_confidence <= 1.0,
             "min-confidence must be between 0 and 1"),
            (self.next_min_confidence is None or 0.0 <= self.next_min_confidence <= 1.0,
             "next-min-confidence must be between 0 and 1"),
            (self.write_to in WRITE_TO, f"write-to must be one of {', '.join(WRITE_TO)}"),
            (isinstance(self.styles, bool), "styles must be true or false"),
        ))

    def for_model(self, calibration: Mapping[str, Any]) -> DecisionOptions:
        """These options with the confidence floors left at None taken from a model card's ``calibration``
        (0 where it has none)."""
        from dataclasses import replace

        return replace(
            self,
            min_confidence=self.min_confidence if self.min_confidence is not None
            else float(calibration.get("min_confidence", 0.0)),
            next_min_confidence=self.next_min_confidence if self.next_min_confidence is not None
            else float(calibration.get("next_min_confidence", 0.0)),
        )


@dataclass(frozen=True)
class WriteOptions:
    """How a decided file is written (:func:`genretag.scan.write`): at all or not (``dry_run``), and the tag
    format's choices. Which field, and whether the file keeps its genre, are the :class:`DecisionOptions`'."""

    dry_run: bool = False
    """Write nothing; say what would be written."""
    id3v23: bool = False
    """Write ID3v2.3 instead of v2.4 (for old players)."""
    id3v23_sep: str = "/"
    """Joins several genres in ID3v2.3, which has one string per frame (the specification's ``/``)."""
    keep_mtime: bool = False
    """Give each written file back its modification time."""

    def __post_init__(self) -> None:
        _check(((bool(self.id3v23_sep) and "\x00" not in self.id3v23_sep,
                 "the ID3v2.3 separator must be a visible text"),))


@dataclass(frozen=True)
class ScanOptions:
    """Defaults of ``genretag scan`` (and of the library's :func:`genretag.predict`), one keyword per
    option as the command line and the config file's ``[scan]`` table name them.

    What deciding reads of them is :attr:`decision`, what writing reads :attr:`writing`; the rest is the
    pipeline's (decoding, batching, the store). Invalid values raise :class:`~genretag.errors.UsageError`
    on construction. The model is no option: it is what runs them
    (``genretag.load_model(...).tag(paths, options=...)``, or ``model=`` of the functions).
    """

    windows: int = WindowPolicy.windows
    batch_size: int = 64
    """Windows per model batch, 1 to :data:`MAX_BATCH_SIZE`; a last, partial batch is padded
    only to the next power of two."""
    jobs: int = field(default_factory=default_jobs)
    top_k: int = DecisionOptions.top_k
    min_confidence: float | None = DecisionOptions.min_confidence
    """See :attr:`DecisionOptions.min_confidence` (None: the model card's floor)."""
    next_min_confidence: float | None = DecisionOptions.next_min_confidence
    overwrite: bool = DecisionOptions.overwrite
    force: bool = False
    """Predict (and write) files this model already tagged, too."""
    dry_run: bool = WriteOptions.dry_run
    id3v23: bool = WriteOptions.id3v23
    keep_mtime: bool = WriteOptions.keep_mtime
    timeout: float = 120.0
    """Seconds one file may take to decode before its worker is killed."""
    queue_size: int = 0
    """Tracks decoded ahead of inference; 0 means ``4 * jobs + 8``."""
    genre_map: Mapping[str, str] = field(default_factory=dict)
    """See :attr:`DecisionOptions.genre_map`."""
    group: str = "track"
    """``track``: each file decided on its own; ``album``: a file's genre is its album's, decided
    from the windows of all its tracks (album artist + album tags, else its folder; compilations
    per track); ``artist``: the same per (album) artist. The run groups the predictions; each file is then
    decided (:attr:`decision`) on its group's."""
    write_to: str = DecisionOptions.write_to
    merge: bool = DecisionOptions.merge
    id3v23_sep: str = WriteOptions.id3v23_sep
    styles: bool = DecisionOptions.styles
    predict_kept_files: bool = True
    """Predict files that keep their genre whatever the model says (they have one genretag did not write, and
    neither ``overwrite`` nor ``merge`` is on), so that every result has a prediction (reports, the store).
    False: such a file is read for its tags only and comes back ``kept`` with no prediction, decoding nothing
    (``genretag scan`` without a report). Applies only with ``group="track"`` and ``write_to="genre"``: an
    album's decision needs all its tracks."""

    def __post_init__(self) -> None:
        _check((
            (1 <= self.windows, "windows must be at least 1"),
            (1 <= self.batch_size <= MAX_BATCH_SIZE, f"batch size must be 1 to {MAX_BATCH_SIZE}"),
            (0 <= self.jobs, "jobs must be 0 or more"),
            (0 < self.timeout, "timeout must be positive"),
            (self.group in GROUPS, f"group must be one of {', '.join(GROUPS)}"),
        ))
        _ = self.decision, self.writing  # built now, once; each checks its own values (top-k, the floors...)

    @cached_property
    def decision(self) -> DecisionOptions:
        """What deciding reads of these options (the floors as given: None is the model card's, see
        :meth:`DecisionOptions.for_model`)."""
        return DecisionOptions(
            top_k=self.top_k, min_confidence=self.min_confidence, next_min_confidence=self.next_min_confidence,
            genre_map=self.genre_map, styles=self.styles, overwrite=self.overwrite, merge=self.merge,
            write_to=self.write_to)

    @cached_property
    def writing(self) -> WriteOptions:
        """What writing reads of these options."""
        return WriteOptions(dry_run=self.dry_run, id3v23=self.id3v23, id3v23_sep=self.id3v23_sep,
                            keep_mtime=self.keep_mtime)

    @property
    def keeps_foreign_genres(self) -> bool:
        """Whether a file with a genre genretag did not write keeps it whatever the model says."""
        return not (self.overwrite or self.merge) and self.write_to == "genre" and self.group == "track"

    @property
    def leaves_kept_undecoded(self) -> bool:
        """Whether such a file is left undecoded (see :attr:`predict_kept_files`)."""
        return self.keeps_foreign_genres and not self.predict_kept_files

    def for_model(self, calibration: Mapping[str, Any]) -> ScanOptions:
        """These options with the confidence floors left at None taken from a model card's ``calibration``
        (:meth:`DecisionOptions.for_model`)."""
        from dataclasses import replace

        floors = self.decision.for_model(calibration)
        return replace(self, min_confidence=floors.min_confidence, next_min_confidence=floors.next_min_confidence)


MODEL_CHOICES: tuple[str, ...] = ("musicnn", "cnn1d", "cnn", "crnn", "cnn-rnn", "knn", "svm")
"""What ``genretag train --model`` accepts: a head on the pretrained musicnn, the Keras
architectures trained from scratch, then the classic baselines."""

CLASSIC_MODELS: tuple[str, ...] = ("knn", "svm")
"""The PCA + k-NN / SVM baselines (NumPy arrays, no Keras)."""

PRETRAINED_MODELS: tuple[str, ...] = ("musicnn",)
"""Models built on a shipped pretrained network, whose feature parameters it fixes."""

HEADS: tuple[str, ...] = ("window", "track")
"""``genretag train --head``: what the musicnn genre layer is trained on (:attr:`TrainConfig.head`)."""

AUGMENTATIONS: tuple[str, ...] = ("crops", "stretch", "pitch", "specaugment", "tilt", "mixup", "balance", "gain")
"""What ``genretag train --augment`` accepts (:mod:`genretag.train.augment`); ``gain`` applies to
``--model musicnn`` only (the other models normalise each recording's level away)."""

FMA_SUBSETS: tuple[str, ...] = ("small", "medium", "large")
"""FMA's nested subsets, smallest first (``medium`` includes ``small``); the first is the default."""

SPLIT_MODES: tuple[str, ...] = ("official", "random")
"""``--split-mode`` for FMA: its own artist-filtered split, or stratified by label ignoring
artists (``val_fraction``/``test_fraction``); the first is the default."""

EVAL_PARTS: tuple[str, ...] = ("test", "val", "train", "all")
"""What ``genretag eval --part`` scores: one part of the dataset's split, or all of it (default: the first where the
dataset brings its own split or trained the model, else ``all``: see ``genretag.cli.eval.default_part``)."""

HIDE_TF_STARTUP = "GENRETAG_HIDE_TF_STARTUP"
"""Environment variable: ``1`` hides TensorFlow's start-up lines by pointing fd 2 at /dev/null
while Keras imports. Only a program that owns the whole process's stderr should set it (the
``genretag`` command does, and writes its own messages through a copy of fd 2): while the
import runs, in a background thread too, anything else written to fd 2 is lost."""

PROVENANCE_KEY = "GENRETAG_MODEL"
"""Name of the one extra tag genretag writes: which model chose the genre."""


@dataclass(frozen=True)
class TrainConfig:
    """Defaults of ``genretag train``."""

    model: str = "musicnn"
    """One of :data:`MODEL_CHOICES`."""
    epochs: int = 40
    """At most this many epochs; early stopping usually ends sooner."""
    batch_size: int = 64
    lr: float = 1e-3
    """AdamW's peak learning rate, decayed along a cosine to 5 % over ``epochs``."""
    weight_decay: float = 1e-3
    """AdamW decoupled weight decay."""
    label_smoothing: float = 0.05
    dropout: float = 0.3
    """Dropout before the classifier layer."""
    ensemble: int = 1
    """Members trained with seeds seed, seed+1, ...; the bundle averages their probabilities."""
    patience: int = 8
    """Stop after this many epochs without a better track-level validation accuracy."""
    seed: int = 0
    """Seeds the split, the sampling and the initial weights."""
    crops_per_track: int = 8
    """Random 3-s training windows drawn from each training track per epoch."""
    eval_windows: int = WindowPolicy.windows
    min_per_class: int = 1
    max_seconds: float = 30.0
    """Training/eval features cover at most this much of each track (its middle)."""
    augment: tuple[str, ...] = ("crops", "specaugment", "tilt", "mixup", "balance")
    """Augmentations: crops, pitch, stretch, specaugment, tilt, gain, mixup, balance."""
    mixup_alpha: float = 0.4
    """``mixup``: pairs mixed with a weight from Beta(alpha, alpha) (the shipped default's recipe)."""
    gain_db: float = 12.0
    """``gain`` (musicnn): training windows played up to this many dB louder or quieter."""
    l2: float = 0.0
    """``--model musicnn``: L2 penalty on the genre layer's weights (on standardised features), added to the loss."""
    head: str = "window"
    """``--model musicnn``: ``window`` trains the genre layer on single windows (their probabilities are
    averaged at scan time); ``track`` trains it on each track's mean features, and scan averages the
    windows' log-probabilities (``pooling: geometric`` in the card), which is that same decision."""
    partial_labels: str | None = None
    """``--model musicnn``: a CSV of tracks with partial labels (``path``, ``genres`` = the set a track may
    belong to, ``;``-separated, ``artist``), trained with a loss on the summed probability of the set."""
    partial_weight: float = 1.0
    """The sample weight of a partially labelled track (a single-label one weighs its class's balanced weight)."""
    partial_val_fraction: float = 0.2
    partial_test_fraction: float = 0.3
    """Shares of the partial-label artists held out: validation, and the cross-source check of the card."""
    val_fraction: float = 0.1
    test_fraction: float = 0.1


LEARN_FEATURE_SETS: tuple[str, ...] = ("musicnn", "embedding", "audioset")
"""What a learned genre layer may read of each window (:mod:`genretag.learn.network`): musicnn's pooled
features, EfficientAT's embedding, its 527 AudioSet logits."""


@dataclass(frozen=True)
class LearnConfig:
    """``genretag learn``: the owner's genres, learned from the files they already tagged."""

    field: str = "genre"
    """The genre field the labels are read from: ``genre`` or genretag's own ``genretag``."""
    min_tracks: int = 15
    """Genres on fewer files are left out (listed)."""
    min_precision: float = 0.5
    """Genres whose cross-validated precision is below this are left out (listed), and the rest fitted again."""
    folds: int = 5
    """Cross-validation folds, grouped by album (a track's album never on both sides)."""
    features: tuple[str, ...] = ("musicnn", "embedding")
    """What the layer reads (:data:`LEARN_FEATURE_SETS`); chosen by grouped cross-validation on the
    Emotify files' own genres (README "Your own genres")."""
    windows: int = 8
    """Scan windows a track is heard by (as ``genretag scan --windows``)."""
    min_confidence: float = 0.5
    """The calibrated probability the card asks of a genre before scan writes it."""
    next_min_confidence: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (
            (self.field in ("genre", "genretag"), f"field must be genre or genretag, got {self.field!r}"),
            (self.min_tracks >= 2, "min-tracks must be at least 2"),
            (0.0 <= self.min_precision <= 1.0, "min-precision must be between 0 and 1"),
            (self.folds >= 2, "folds must be at least 2"),
            (bool(self.features) and set(self.features) <= set(LEARN_FEATURE_SETS),
             f"features must be among {', '.join(LEARN_FEATURE_SETS)}"),
            (self.windows >= 1, "windows must be at least 1"),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
