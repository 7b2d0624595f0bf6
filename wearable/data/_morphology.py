"""Beat waveforms at 1 kHz from physiokit's WaSP-ECG wave generators.

physiokit (``physiokit.ecg.synthetic``) draws every morphology parameter from the global
``random`` / ``np.random`` state, so each call here runs inside :func:`global_random_seeded`,
which seeds both from our seed and puts the caller's state back afterwards. Sinus P, QRS and
T shapes come from ``presets.generate_preset_parameters`` (lead II of the "SR" preset). The
ectopic shapes physiokit lacks are built from the same wave generators with our parameters:
a PVC is a wide (120–180 ms) QRS, often inverted, with a large discordant T; a PAC has its own
P wave (smaller, sometimes inverted or biphasic) in front of a normal QRS.
"""

from __future__ import annotations

import random
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np

__all__ = ["RATE_HZ", "Morphology", "global_random_seeded", "morphology_sample", "wave_stretch"]

RATE_HZ = 1000.0  # the wave generators work in milliseconds
_LEAD_II = 1  # index of lead II in physiokit's 12-lead parameter lists


@contextmanager
def global_random_seeded(seed: int) -> Iterator[None]:
    """Seed ``random`` and ``np.random`` for the duration of the block, then restore both states."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@lru_cache(maxsize=1)
def _physiokit():
    # physiokit's helper module calls warnings.filterwarnings("ignore") at import time, which
    # would silence every warning in the process; catch_warnings restores the filter list.
    with warnings.catch_warnings():
        from physiokit.ecg.synthetic import presets
        from physiokit.ecg.synthetic import wave_generator
        from physiokit.ecg.synthetic.defines import EcgPreset
    return wave_generator, presets, EcgPreset


@dataclass(frozen=True, eq=False)
class Morphology:
    """One record's beat shapes in mV at 1 kHz; ``*_r`` is the R-peak offset within the QRS."""

    p: np.ndarray
    pr_ms: int  # P onset to QRS onset
    qrs: np.ndarray
    qrs_r: int
    st_ms: int  # at RR = 1 s
    t: np.ndarray  # at RR = 1 s
    qtc_ms: float
    p_pac: np.ndarray
    pr_pac_ms: int
    qrs_pvc: np.ndarray
    qrs_pvc_r: int
    st_pvc_ms: int
    t_pvc: np.ndarray


def _on_grid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The generators return (possibly skewed) sample positions; put them on a 1 ms grid, in mV."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    grid = np.arange(int(np.floor(x[-1])) + 1)
    return np.interp(grid, x, y) * 1000.0  # the generators output volts


def wave_stretch(wave: np.ndarray, length: int) -> np.ndarray:
    """Linearly time-stretch ``wave`` to ``length`` samples (T waves follow the QT interval)."""
    length = max(int(length), 2)
    return np.interp(np.linspace(0.0, wave.size - 1, length), np.arange(wave.size), wave)


def morphology_sample(seed: int, *, heart_rate: float) -> Morphology:
    """Draw one record's beat shapes; deterministic in ``seed``, global RNG state untouched."""
    wg, presets, EcgPreset = _physiokit()
    h = _LEAD_II
    with global_random_seeded(seed):
        par = presets.generate_preset_parameters(EcgPreset.SR, heart_rate)
    rng = np.random.default_rng(seed)
    gain = rng.uniform(0.5, 1.0)  # preset R heights (1-3 mV) are tall for a wearable lead

    # Presets allow P amplitudes of 0.02 mV and P waves that run into the QRS at high rates;
    # both would make the P mask meaningless, so floor them.
    p_voltage = max(par.p_voltages[h] * 2.0, 0.1)
    p = _on_grid(*wg.syn_p_wave(p_length=int(par.p_length), p_voltage=p_voltage, p_biphasic=par.p_biphasics[h],
                                p_lean=par.p_leans[h], flipper=1))
    pr_ms = max(int(par.pr_interval), p.size + 20)

    x, y, _ = wg.syn_qrs_complex(qrs_duration=int(par.qrs_duration), q_depth=par.q_depths[h],
                                 r_height=par.r_heights[h], r_prime_present=False, r_prime_height=0,
                                 s_prime_height=0, s_present=bool(par.s_presents[h]), s_depth=par.s_depths[h],
                                 s_to_qrs_duration_ratio=par.s_to_qrs_duration_ratio[h], flipper=1, j_point=0)
    qrs = _on_grid(x, y) * gain
    t_height = max(par.t_heights[h] * 0.1, 0.12)
    t = _on_grid(*wg.syn_t_wave(st_end=0, t_height=t_height, t_length=220, flipper=1, t_lean=par.t_leans[h])) * gain
    qtc_ms = float(np.clip(par.qtc, 380.0, 450.0))

    p_pac = _on_grid(*wg.syn_p_wave(p_length=int(rng.integers(60, 100)), p_voltage=rng.uniform(0.08, 0.2),
                                    p_biphasic=bool(rng.random() < 0.3), p_lean=rng.uniform(0.5, 1.5),
                                    flipper=float(rng.choice([1, -1]))))
    pr_pac_ms = p_pac.size + int(rng.integers(20, 60))

    polarity = float(rng.choice([1, -1]))
    r_pvc = rng.uniform(1.2, 2.5)
    x, y, _ = wg.syn_qrs_complex(qrs_duration=int(rng.integers(120, 181)), q_depth=0, r_height=r_pvc,
                                 r_prime_present=False, r_prime_height=0, s_prime_height=0, s_present=True,
                                 s_depth=r_pvc * rng.uniform(0.1, 0.5), s_to_qrs_duration_ratio=1,
                                 flipper=polarity, j_point=0)
    qrs_pvc = _on_grid(x, y) * gain
    t_pvc = _on_grid(*wg.syn_t_wave(st_end=0, t_height=rng.uniform(0.3, 0.6), t_length=int(rng.integers(200, 280)),
                                    flipper=-polarity, t_lean=rng.uniform(-1.0, -0.5))) * gain
    return Morphology(
        p=p, pr_ms=pr_ms, qrs=qrs, qrs_r=int(np.argmax(np.abs(qrs))), st_ms=int(par.st_length), t=t,
        qtc_ms=qtc_ms, p_pac=p_pac, pr_pac_ms=pr_pac_ms, qrs_pvc=qrs_pvc,
        qrs_pvc_r=int(np.argmax(np.abs(qrs_pvc))), st_pvc_ms=int(rng.integers(30, 80)), t_pvc=t_pvc,
    )
