"""Data layer: synthetic and PhysioNet ECG/PPG, preprocessing, and model-ready windows.

The entry point for training is :func:`load_windows`; :func:`list_tasks` and
:func:`task_labels` describe what it can load. Everything else is public for notebooks,
tests and the streaming runtime (which replays :func:`filter_sos` causally).

Sources: "synthetic" (physiokit-based ECG + aligned PPG with ground truth, no files
needed), "mitdb" (MIT-BIH Arrhythmia), "bidmc" (BIDMC PPG and Respiration),
"challenge2017" (PhysioNet/CinC Challenge 2017 handheld single-lead ECG). Real data is
read from the ``data_dir`` argument (or ``$WEARABLE_DATA_DIR``); nothing is cached on disk.
"""

from ._errors import DataError
from .augment import NoiseBank, ecg_windows_augment
from .artifacts import ARTIFACT_KINDS, ARTIFACT_LABELS, artifacts_add
from .challenge2017 import (CHALLENGE2017_FOLDS, CHALLENGE2017_LABELS, Challenge2017Record, challenge2017_read,
                            challenge2017_reference, challenge2017_split, challenge_score)
from ._tasks_challenge2017 import Challenge2017Signals, challenge2017_signals, covering_starts
from .bidmc import BIDMC_SPLITS, BidmcRecord, bidmc_read, bidmc_records
from .mitdb import (
    AAMI_CLASSES,
    AAMI_SYMBOLS,
    DS1,
    DS2,
    MITDB_PACED,
    MITDB_RHYTHM_LABELS,
    MITDB_VAL,
    MitdbRecord,
    RhythmEpisode,
    beats_aami,
    mitdb_read,
    mitdb_records,
    rhythm_episodes,
    rhythm_label,
)
from .nstdb import NSTDB_MASK_IDS, NSTDB_NOISES, ecg_snr, nstdb_noise_add, nstdb_read
from ._tasks_ppg import PPG_MASK_LABELS, PPG_RHYTHMS
from .ppg_artifacts import PPG_ARTIFACT_KINDS, PPG_ARTIFACT_LABELS, ppg_artifacts_add
from .preprocess import (
    ECG_CLIP_MV,
    FILTER_BANDS_HZ,
    FILTER_MAX_EDGE_FRACTION,
    FILTER_ORDER,
    PPG_CLIP,
    ecg_clean,
    ecg_model_input,
    ecg_scale,
    filter_sos,
    labels_resample,
    ppg_clean,
    ppg_scale,
    samples_resample,
    signal_filter,
    signal_resample,
)
from .synthetic import BEAT_TYPES, HEART_RATE_RANGES_BPM, RHYTHMS, WAVE_LABELS, SyntheticRecord, ecg_ppg_simulate
from .tasks import (SOURCES, SPLITS, TASK_KINDS, TASK_LABELS, TaskSpec, list_tasks, load_windows, task_filters, task_kind,
                    task_labels, task_mask_labels)
from .windows import WindowSet, window_starts, windows_take

__all__ = [
    # windows and tasks
    "load_windows", "list_tasks", "task_labels", "task_kind", "task_filters", "task_mask_labels", "TaskSpec",
    "WindowSet", "TASK_LABELS",
    "TASK_KINDS",
    "SOURCES", "SPLITS", "window_starts", "windows_take", "DataError",
    # synthetic
    "ecg_ppg_simulate", "SyntheticRecord", "RHYTHMS", "HEART_RATE_RANGES_BPM", "WAVE_LABELS", "BEAT_TYPES",
    "artifacts_add", "ARTIFACT_LABELS", "ARTIFACT_KINDS",
    # wrist PPG with artifact masks
    "ppg_artifacts_add", "PPG_ARTIFACT_LABELS", "PPG_ARTIFACT_KINDS", "PPG_RHYTHMS", "PPG_MASK_LABELS",
    # PhysioNet
    "mitdb_read", "mitdb_records", "MitdbRecord", "RhythmEpisode", "beats_aami", "rhythm_episodes", "rhythm_label",
    "AAMI_CLASSES", "AAMI_SYMBOLS", "DS1", "DS2", "MITDB_PACED", "MITDB_VAL", "MITDB_RHYTHM_LABELS",
    "nstdb_read", "nstdb_noise_add", "ecg_snr", "NSTDB_NOISES", "NSTDB_MASK_IDS",
    "bidmc_read", "bidmc_records", "BidmcRecord", "BIDMC_SPLITS",
    "challenge2017_reference", "challenge2017_read", "challenge2017_split", "challenge2017_signals",
    "challenge_score", "covering_starts", "Challenge2017Record", "Challenge2017Signals", "CHALLENGE2017_LABELS",
    "CHALLENGE2017_FOLDS",
    # augmentation
    "NoiseBank", "ecg_windows_augment",
    # preprocessing
    "signal_resample", "labels_resample", "samples_resample", "filter_sos", "signal_filter", "ecg_clean",
    "ecg_model_input",
    "ppg_clean", "ecg_scale", "ppg_scale", "FILTER_BANDS_HZ", "FILTER_ORDER", "FILTER_MAX_EDGE_FRACTION",
    "ECG_CLIP_MV", "PPG_CLIP",
]
