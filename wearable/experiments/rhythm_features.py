"""Classical baselines for the Challenge 2017 rhythm task: RR/morphology/quality features per record.

``record_features(signal, sampling_rate)`` finds R peaks with neurokit2 (``ecg_clean`` +
``ecg_peaks``, method "neurokit") and returns ``FEATURE_NAMES``:

- rhythm (RR intervals, s): beat count, mean/median/std/cv, RMSSD, successive-difference
  statistics (median |dRR| / median RR, fractions above 50 ms and 10 %), Poincaré SD1/SD2,
  RR range ratio, Shannon entropy of the RR histogram, turning-point ratio, fraction of
  premature-then-compensated beats;
- morphology (median beat from -0.3 to +0.45 s around R): correlation of each beat with it
  (mean, sd, fraction below 0.8), R amplitude cv, energy before R (P wave region) and after the
  QRS (T region) relative to the QRS, QRS width at half the template's peak, sign of the peak;
- quality and spectrum: relative power in 0.5-5, 5-15, 15-40 and 40+ Hz, fraction of samples
  near the record's extremes, length in s.

Two baselines use them: ``rr_rule`` (one RR irregularity index, two thresholds chosen on the
training records: AF above the upper, other rhythm between, normal below; noisy with too few
beats) and a gradient-boosting classifier
(scikit-learn ``HistGradientBoostingClassifier``) over all features.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["FEATURE_NAMES", "record_features", "rr_rule_fit", "rr_rule_predict"]

_RR = ("beats", "rr_mean", "rr_median", "rr_std", "rr_cv", "rmssd", "drr_median_rel", "drr_gt50ms", "drr_gt10pct",
       "sd1", "sd2", "sd1_sd2", "rr_range_ratio", "rr_entropy", "turning_points", "premature", "lorenz_cells",
       "sampen", "cosen", "rr_iqr_rel", "rr_max_rel", "rr_min_rel")
_MORPH = ("corr_mean", "corr_sd", "corr_lt08", "r_amp_cv", "p_energy", "t_energy", "qrs_width", "peak_sign",
          "p_corr", "f_energy", "corr_lt05")
_QUALITY = ("pow_0_5", "pow_5_15", "pow_15_40", "pow_40", "near_extreme", "seconds")
FEATURE_NAMES = _RR + _MORPH + _QUALITY


def _rr_features(rr: np.ndarray) -> list[float]:
    if rr.size < 3:
        return [float(rr.size + 1)] + [np.nan] * (len(_RR) - 1)
    drr = np.diff(rr)
    med = float(np.median(rr))
    sd1 = float(np.std(drr) / np.sqrt(2))
    sd2 = float(np.sqrt(max(2 * np.var(rr) - sd1 ** 2, 0.0)))
    hist, _ = np.histogram(rr, bins=16, range=(0.2, 2.0))
    prob = hist[hist > 0] / max(hist.sum(), 1)
    turning = np.sum((rr[1:-1] - rr[:-2]) * (rr[1:-1] - rr[2:]) > 0) / max(rr.size - 2, 1)
    premature = np.sum((rr[:-1] < 0.85 * med) & (rr[1:] > 1.1 * med)) / max(rr.size - 1, 1)
    # Lorenz plot of successive differences at 40 ms resolution: AF scatters over many cells (Sarkar 2008)
    cells = len({(int(a // 0.04), int(b // 0.04)) for a, b in zip(drr[1:], drr[:-1])}) / max(drr.size - 1, 1)
    sampen = _sample_entropy(rr, m=1, r=0.2 * float(rr.std()) + 1e-9)
    cosen = sampen - np.log(2 * 0.2 * float(rr.std()) + 1e-9) - np.log(float(rr.mean()))
    q1, q3 = np.percentile(rr, [25, 75])
    return [float(rr.size + 1), float(rr.mean()), med, float(rr.std()), float(rr.std() / rr.mean()),
            float(np.sqrt(np.mean(drr ** 2))), float(np.median(np.abs(drr)) / med), float(np.mean(np.abs(drr) > 0.05)),
            float(np.mean(np.abs(drr) > 0.1 * med)), sd1, sd2, sd1 / sd2 if sd2 > 0 else np.nan,
            float(rr.max() / rr.min()), float(-(prob * np.log(prob)).sum()), float(turning), float(premature),
            float(cells), sampen, float(cosen), float((q3 - q1) / med), float(rr.max() / med), float(rr.min() / med)]


def _sample_entropy(x: np.ndarray, *, m: int, r: float) -> float:
    """SampEn(m, r) of a short series (O(n^2), n is a recording's beats); NaN without matches."""
    def matches(k: int) -> int:
        t = np.lib.stride_tricks.sliding_window_view(x, k)[: x.size - m]
        d = np.abs(t[:, None, :] - t[None, :, :]).max(axis=2)
        return int((d <= r).sum() - len(t))
    a, b = matches(m + 1), matches(m)
    return float(-np.log(a / b)) if a > 0 and b > 0 else np.nan


def _morph_features(x: np.ndarray, peaks: np.ndarray, fs: float) -> list[float]:
    pre, post = int(0.3 * fs), int(0.45 * fs)
    peaks = peaks[(peaks >= pre) & (peaks + post < x.size)]
    if peaks.size < 3:
        return [np.nan] * len(_MORPH)
    beats = np.stack([x[p - pre:p + post] for p in peaks])
    template = np.median(beats, axis=0)
    bc, tc = beats - beats.mean(axis=1, keepdims=True), template - template.mean()
    corr = (bc @ tc) / (np.linalg.norm(bc, axis=1) * np.linalg.norm(tc) + 1e-12)
    r_amp = x[peaks]
    qrs = slice(pre - int(0.06 * fs), pre + int(0.06 * fs))
    e_qrs = float(np.sum(template[qrs] ** 2)) + 1e-12
    p_region = slice(pre - int(0.25 * fs), pre - int(0.08 * fs))
    t_region = slice(pre + int(0.1 * fs), pre + int(0.4 * fs))
    peak = template[qrs]
    k = int(np.argmax(np.abs(peak)))
    above = np.abs(peak) >= 0.5 * abs(peak[k])
    # P waves: a consistent P region correlates with the template's; AF's f waves leave a residual
    bp, tp = beats[:, p_region], template[p_region]
    bp, tp = bp - bp.mean(axis=1, keepdims=True), tp - tp.mean()
    p_corr = (bp @ tp) / (np.linalg.norm(bp, axis=1) * np.linalg.norm(tp) + 1e-12)
    f_energy = float(np.mean((beats[:, p_region] - template[p_region]) ** 2) * (p_region.stop - p_region.start) / e_qrs)
    return [float(corr.mean()), float(corr.std()), float(np.mean(corr < 0.8)),
            float(np.std(r_amp) / (abs(np.mean(r_amp)) + 1e-6)), float(np.sum(template[p_region] ** 2) / e_qrs),
            float(np.sum(template[t_region] ** 2) / e_qrs), float(above.sum() / fs), float(np.sign(peak[k])),
            float(np.median(p_corr)), f_energy, float(np.mean(corr < 0.5))]


def _quality_features(raw: np.ndarray, fs: float) -> list[float]:
    x = raw - raw.mean()
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / fs)
    total = spec[f >= 0.5].sum() + 1e-12
    bands = [spec[(f >= a) & (f < b)].sum() / total for a, b in ((0.5, 5), (5, 15), (15, 40), (40, fs / 2 + 1))]
    lo, hi = np.percentile(x, [0.5, 99.5])
    near = np.mean((x <= lo + 0.02 * (hi - lo)) | (x >= hi - 0.02 * (hi - lo)))
    return [float(b) for b in bands] + [float(near), x.size / fs]


def record_features(signal: np.ndarray, sampling_rate: float) -> np.ndarray:
    """``FEATURE_NAMES`` of one record (float64; NaN where a feature is undefined, e.g. < 3 beats)."""
    import neurokit2 as nk

    raw = np.asarray(signal, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = nk.ecg_clean(raw, sampling_rate=int(sampling_rate), method="neurokit")
        try:
            _, info = nk.ecg_peaks(clean, sampling_rate=int(sampling_rate), method="neurokit")
            peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
        except (ValueError, IndexError):  # neurokit2 gives up on a flat or very short record
            peaks = np.zeros(0, dtype=np.int64)
    rr = np.diff(peaks) / sampling_rate
    rr = rr[(rr > 0.2) & (rr < 3.0)]
    return np.array(_rr_features(rr) + _morph_features(clean, peaks, sampling_rate)
                    + _quality_features(raw, sampling_rate), dtype=np.float64)


def rr_rule_fit(features: np.ndarray, y: np.ndarray, labels: tuple[str, ...]) -> dict[str, float]:
    """The two thresholds of the RR rule on ``drr_median_rel`` (the median successive RR change
    relative to the median RR), by grid search for the best challenge score on the given (training)
    records."""
    from wearable.data import challenge_score

    irregular = features[:, FEATURE_NAMES.index("drr_median_rel")]
    truth = [labels[k] for k in y]
    grid = np.quantile(irregular[np.isfinite(irregular)], np.linspace(0.3, 0.99, 40))
    best = {"other": float(grid[0]), "af": float(grid[-1]), "score": -1.0}
    for i, t_other in enumerate(grid):
        for t_af in grid[i:]:
            rule = {"other": float(t_other), "af": float(t_af)}
            score = challenge_score(truth, rr_rule_predict(features, rule, labels))["score"]
            if score > best["score"]:
                best = {**rule, "score": float(score)}
    return best


def rr_rule_predict(features: np.ndarray, rule: dict[str, float], labels: tuple[str, ...]) -> list[str]:
    """AF above the upper irregularity threshold, other rhythm between the two, normal below;
    noisy with fewer than 4 beats."""
    irregular = features[:, FEATURE_NAMES.index("drr_median_rel")]
    beats = features[:, FEATURE_NAMES.index("beats")]
    out = []
    for a, n in zip(irregular, beats):
        if not n >= 4 or not np.isfinite(a):
            out.append("noisy" if "noisy" in labels else labels[0])
        else:
            out.append("af" if a > rule["af"] else "other" if a > rule["other"] else "normal")
    return out
