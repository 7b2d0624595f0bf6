"""Synthetic single-lead ECG with time-aligned PPG and full ground truth.

Why not ``physiokit.ecg.synthesize`` as is: it uses the global random state, keeps RR
fixed in sinus rhythm, has no ectopic beats, and its PPG is unrelated to the ECG. So the
waves come from physiokit's WaSP-ECG generators (see ``_morphology``) and this module adds:

- a beat scheduler at 1 kHz: sinus RR with respiratory (RSA) and low-frequency modulation
  plus jitter; AF with log-normal i.i.d. RR, no P waves and 4–9 Hz fibrillatory waves;
  PVCs (premature, wide, no P, full compensatory pause) and PACs (premature, own P wave,
  sinus reset);
- QT following the preceding RR (Bazett), so T waves shorten at high rates;
- a PPG pulse for every beat, arriving a fixed pulse-arrival time after the R peak (plus
  jitter), with an amplitude set by the filling time before the beat (Frank–Starling): weak
  after a premature beat, missing after an early PVC, potentiated after a compensatory pause;
- resampling to any rate: signals with ``resample_poly``, masks by nearest neighbour, beat
  indices scaled and rounded.

All randomness comes from ``np.random.default_rng(seed)``; same arguments give byte-identical
arrays, and the global ``random`` / ``np.random`` state is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._errors import DataError
from ._morphology import RATE_HZ, Morphology, morphology_sample, wave_stretch
from .artifacts import artifacts_add
from .preprocess import labels_resample, resample_ratio, signal_resample

__all__ = [
    "RHYTHMS",
    "HEART_RATE_RANGES_BPM",
    "WAVE_LABELS",
    "BEAT_TYPES",
    "SyntheticRecord",
    "ecg_ppg_simulate",
]

RHYTHMS = ("normal", "af", "ectopic", "brady", "tachy")
# Mean heart rate is drawn uniformly from these ranges; the gaps between sinus ranges keep
# brady / normal / tachy separable after heart-rate variability.
HEART_RATE_RANGES_BPM: dict[str, tuple[float, float]] = {
    "normal": (60.0, 95.0),
    "af": (60.0, 130.0),
    "ectopic": (60.0, 95.0),
    "brady": (40.0, 55.0),
    "tachy": (105.0, 150.0),
}
WAVE_LABELS = ("background", "p", "qrs", "t")
BEAT_TYPES = ("N", "S", "V")  # AAMI symbols: normal/sinus, supraventricular (PAC), ventricular (PVC)

_P, _QRS, _T = 1, 2, 3
_MARGIN_AFTER_MS = 1000  # beats run on past the end so the last samples are not truncated beats


@dataclass(frozen=True, eq=False)
class SyntheticRecord:
    """One simulated record. Signals have ``n = round(duration_s * sampling_rate)`` samples.

    ``beat_samples`` are R peaks (the largest QRS deflection), ``beat_types`` their symbols
    from ``BEAT_TYPES``. ``pulse_samples`` (aligned with the beats) are PPG systolic peaks, -1
    where the pulse is missing or falls past the end; ``pulse_amplitudes`` are relative to a
    normal beat (0 when missing).
    """

    ecg: np.ndarray  # mV
    ppg: np.ndarray  # arbitrary units, a normal pulse peaks near 1
    sampling_rate: float
    rhythm: str
    heart_rate: float  # mean rate the scheduler aimed for, bpm
    seed: int
    beat_samples: np.ndarray  # int64
    beat_types: np.ndarray  # '<U1'
    wave_mask: np.ndarray  # int8, index into WAVE_LABELS
    artifact_mask: np.ndarray  # int8, index into artifacts.ARTIFACT_LABELS
    pulse_samples: np.ndarray  # int64
    pulse_amplitudes: np.ndarray  # float64

    def __len__(self) -> int:
        return self.ecg.shape[-1]


def ecg_ppg_simulate(
    duration_s: float,
    *,
    sampling_rate: float,
    rhythm: str = "normal",
    seed: int = 0,
    heart_rate: float | None = None,
    artifacts: Sequence[str] = (),
    noise_mv: float = 0.0,
) -> SyntheticRecord:
    """Simulate ``duration_s`` seconds of ECG (mV) and PPG at ``sampling_rate`` Hz.

    ``rhythm`` is one of ``RHYTHMS``; ``heart_rate`` (bpm) defaults to a draw from
    ``HEART_RATE_RANGES_BPM[rhythm]``. An "ectopic" record of 3 s or more holds at least
    one PAC or PVC. ``artifacts`` lists kinds for :func:`artifacts_add` (one segment each,
    ECG only); ``noise_mv`` is the standard deviation of white sensor noise on the ECG.

    >>> rec = ecg_ppg_simulate(10.0, sampling_rate=100.0, rhythm="ectopic", seed=3)
    >>> rec.ecg.shape, bool((rec.beat_types != "N").any())
    ((1000,), True)
    """
    if rhythm not in RHYTHMS:
        raise DataError(f"unknown rhythm {rhythm!r}; accepted: {', '.join(RHYTHMS)}")
    if not (duration_s > 0 and np.isfinite(duration_s)):
        raise DataError(f"duration_s must be positive, got {duration_s!r}")
    up, down = resample_ratio(RATE_HZ, sampling_rate)  # validates sampling_rate
    rng = np.random.default_rng(seed)
    if heart_rate is None:
        heart_rate = float(rng.uniform(*HEART_RATE_RANGES_BPM[rhythm]))
    if not 20.0 <= heart_rate <= 250.0:
        raise DataError(f"heart_rate must be within 20-250 bpm, got {heart_rate!r}")
    morph = morphology_sample(int(rng.integers(2**32)), heart_rate=heart_rate)

    # The 1 kHz buffer starts before t = 0 so the first samples show a beat in progress; its
    # lead-in is a multiple of `down` so that t = 0 falls exactly on an output sample.
    lead_in_ms = down * -(-2000 // down)
    n_out = int(round(duration_s * sampling_rate))
    n_buf = lead_in_ms + int(np.ceil(duration_s * RATE_HZ)) + _MARGIN_AFTER_MS
    times, types = _beats_schedule(rhythm, heart_rate=heart_rate, t_lo=-lead_in_ms / RATE_HZ + 0.3,
                                   t_hi=(n_buf - lead_in_ms) / RATE_HZ, duration_s=duration_s, rng=rng)
    buf, mask = _ecg_render(times, types, morph, lead_in_ms=lead_in_ms, n_buf=n_buf, p_waves=rhythm != "af")

    offset = lead_in_ms * up // down
    ecg = signal_resample(buf, sampling_rate=RATE_HZ, target_rate=sampling_rate)[offset : offset + n_out]
    wave_mask = labels_resample(mask, sampling_rate=RATE_HZ, target_rate=sampling_rate)[offset : offset + n_out]
    t = np.arange(n_out) / sampling_rate
    if rhythm == "af":
        ecg = ecg + _fibrillatory_waves(t, rng)

    beat_samples = np.rint(times * sampling_rate).astype(np.int64)
    inside = (beat_samples >= 0) & (beat_samples < n_out)
    ppg, pulse_samples, pulse_amplitudes = _ppg_render(times, types, t, heart_rate=heart_rate, rng=rng)

    artifact_mask = np.zeros(n_out, dtype=np.int8)
    if artifacts:
        ecg, artifact_mask = artifacts_add(ecg, sampling_rate=sampling_rate, kinds=artifacts,
                                           seed=int(rng.integers(2**32)))
    if noise_mv > 0:
        ecg = ecg + rng.normal(0.0, noise_mv, n_out)
    return SyntheticRecord(
        ecg=ecg, ppg=ppg, sampling_rate=float(sampling_rate), rhythm=rhythm, heart_rate=float(heart_rate),
        seed=int(seed), beat_samples=beat_samples[inside], beat_types=types[inside],
        wave_mask=wave_mask.astype(np.int8), artifact_mask=artifact_mask, pulse_samples=pulse_samples[inside],
        pulse_amplitudes=pulse_amplitudes[inside],
    )


def _beats_schedule(rhythm: str, *, heart_rate: float, t_lo: float, t_hi: float, duration_s: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """R-peak times in seconds (t = 0 is the first output sample) and beat symbols."""
    rr0 = 60.0 / heart_rate
    if rhythm == "af":
        # Irregularly irregular: i.i.d. log-normal RR with a coefficient of variation of 18-35 %.
        cv = rng.uniform(0.18, 0.35)
        n = int((t_hi - t_lo) / (0.5 * rr0)) + 4
        rr = np.clip(rr0 * np.exp(rng.normal(-cv**2 / 2, cv, n)), 0.28, 2.5)
        times = t_lo + rng.uniform(0, rr0) + np.concatenate([[0.0], np.cumsum(rr[1:])])
        times = times[times < t_hi]
        return times, np.full(times.size, "N")

    rsa = (rng.uniform(0.01, 0.05), rng.uniform(0.15, 0.4), rng.uniform(0, 2 * np.pi))
    lf = (rng.uniform(0.0, 0.03), rng.uniform(0.04, 0.12), rng.uniform(0, 2 * np.pi))
    jitter = rng.uniform(0.005, 0.015) * rr0
    ectopic = rhythm == "ectopic"
    p_ectopic = rng.uniform(0.08, 0.25)
    kinds = [("S",), ("V",), ("S", "V")][int(rng.integers(3))]
    force_at = rng.uniform(0.3, 0.6) * duration_s  # the first sinus beat due after this is replaced

    times: list[float] = []
    types: list[str] = []
    t = t_lo + rng.uniform(0, rr0)
    last_ectopic, forced = True, False  # no ectopic as the very first beat
    while t < t_hi:
        times.append(t)
        types.append("N")
        modulation = rsa[0] * np.sin(2 * np.pi * rsa[1] * t + rsa[2]) + lf[0] * np.sin(2 * np.pi * lf[1] * t + lf[2])
        rr = rr0 * (1 + modulation) + rng.normal(0.0, jitter)
        force = not forced and t + rr >= force_at
        if ectopic and not last_ectopic and (force or rng.random() < p_ectopic):
            kind = kinds[int(rng.integers(len(kinds)))]
            coupling = rng.uniform(0.5, 0.7) if kind == "V" else rng.uniform(0.6, 0.8)
            times.append(t + coupling * rr)
            types.append(kind)
            forced = forced or force
            # A PVC leaves the sinus node alone (full compensatory pause); a PAC resets it.
            t = t + 2 * rr if kind == "V" else t + coupling * rr + rr * rng.uniform(1.0, 1.1)
            last_ectopic = True
        else:
            t += rr
            last_ectopic = False
    times_arr = np.asarray(times)
    keep = times_arr < t_hi
    return times_arr[keep], np.asarray(types)[keep]


def _ecg_render(times: np.ndarray, types: np.ndarray, m: Morphology, *, lead_in_ms: int, n_buf: int,
                p_waves: bool) -> tuple[np.ndarray, np.ndarray]:
    """Draw every beat into a 1 kHz buffer; later waves win the mask where waves overlap.

    ``p_waves`` is False in AF: the atria fibrillate, so conducted beats have no P wave.
    """
    buf = np.zeros(n_buf)
    mask = np.zeros(n_buf, dtype=np.int8)

    def place(start: int, wave: np.ndarray, label: int) -> None:
        a, b = max(start, 0), min(start + wave.size, n_buf)
        if a < b:
            buf[a:b] += wave[a - start : b - start]
            mask[a:b] = label

    r_ms = np.rint(times * RATE_HZ).astype(np.int64) + lead_in_ms
    rr_prev = np.diff(times, prepend=times[0] - 60.0 / 70.0) if times.size else times
    for r, kind, rr in zip(r_ms, types, rr_prev):
        # QT follows the preceding RR (Bazett); ST and T share the change.
        qt_scale = np.sqrt(np.clip(rr, 0.3, 2.0))
        if kind == "V":
            onset = r - m.qrs_pvc_r
            place(onset, m.qrs_pvc, _QRS)
            t_start = onset + m.qrs_pvc.size + int(m.st_pvc_ms * qt_scale)
            place(t_start, wave_stretch(m.t_pvc, m.t_pvc.size * qt_scale), _T)
            continue
        onset = r - m.qrs_r
        if kind == "S":
            place(onset - m.pr_pac_ms, m.p_pac, _P)
        elif p_waves:
            place(onset - m.pr_ms, m.p, _P)
        place(onset, m.qrs, _QRS)
        st = int(m.st_ms * qt_scale)
        t_len = max(80, int(m.qtc_ms * qt_scale) - m.qrs.size - st)
        place(onset + m.qrs.size + st, wave_stretch(m.t, t_len), _T)
    return buf, mask


def _fibrillatory_waves(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """AF f-waves: 4-9 Hz, 0.02-0.08 mV, with wandering frequency and amplitude."""
    f0 = rng.uniform(4.0, 9.0)
    freq = f0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 2 * np.pi))
    dt = t[1] - t[0] if t.size > 1 else 0.0
    phase = 2 * np.pi * np.cumsum(freq) * dt + rng.uniform(0, 2 * np.pi)
    amp = rng.uniform(0.02, 0.08) * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))
    return amp * (np.sin(phase) + 0.3 * np.sin(2 * phase + rng.uniform(0, 2 * np.pi)))


def _ppg_render(times: np.ndarray, types: np.ndarray, t: np.ndarray, *, heart_rate: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PPG with one pulse per beat; returns (ppg, systolic-peak samples, relative amplitudes)."""
    fs = 1.0 / (t[1] - t[0]) if t.size > 1 else 1.0
    rr0 = 60.0 / heart_rate
    arrival_s = rng.uniform(0.15, 0.30)  # R peak to pulse foot
    rise_s = rng.uniform(0.10, 0.15)  # foot to systolic peak
    sigma_rise, sigma_fall = rise_s / 2.5, rng.uniform(0.10, 0.16)  # the foot sits ~2.5 sigma before the peak
    dia_delay_s, dia_amp, dia_width_s = rng.uniform(0.25, 0.35), rng.uniform(0.15, 0.35), rng.uniform(0.05, 0.07)

    def pulse(dt: np.ndarray) -> np.ndarray:
        systolic = np.exp(-0.5 * (dt / np.where(dt < 0, sigma_rise, sigma_fall)) ** 2)
        return systolic + dia_amp * np.exp(-0.5 * ((dt - dia_delay_s) / dia_width_s) ** 2)

    # The diastolic wave can pull the maximum a little past the systolic centre; report the real peak.
    fine = np.arange(-0.05, 0.2, 0.001)
    peak_shift_s = fine[np.argmax(pulse(fine))]

    # Stroke volume grows with the filling time before the beat: a premature beat gives a
    # weak pulse, an early PVC none at all (its contraction is also dyssynchronous, hence
    # the extra halving), the beat after a compensatory pause a strong one.
    rr_prev = np.diff(times, prepend=times[0] - rr0) if times.size else times
    amps = np.clip((rr_prev / rr0 - 0.4) / 0.6, 0.0, 1.25) * np.where(types == "V", 0.5, 1.0)
    amps[amps < 0.1] = 0.0
    centres_s = times + arrival_s + rise_s + rng.normal(0.0, 0.005, times.size)

    ppg = np.zeros(t.size)
    for centre, amp in zip(centres_s, amps):
        if amp == 0.0:
            continue
        a = max(int(np.floor((centre - 0.5) * fs)), 0)
        b = min(int(np.ceil((centre + 1.0) * fs)), t.size)
        if a < b:
            ppg[a:b] += amp * pulse(t[a:b] - centre)
    ppg += 0.05 * np.sin(2 * np.pi * rng.uniform(0.15, 0.4) * t + rng.uniform(0, 2 * np.pi))
    ppg += rng.normal(0.0, 0.01, t.size)
    pulse_samples = np.rint((centres_s + peak_shift_s) * fs).astype(np.int64)
    pulse_samples[(amps == 0.0) | (pulse_samples < 0) | (pulse_samples >= t.size)] = -1
    return ppg, pulse_samples, amps
