/* Streaming preprocessing: biquad cascade (band-pass), clip, quantization to int8 (C99, no
 * dynamic allocation).
 *
 * Part of the wearable firmware bridge (project-written, not generated). It replays what the
 * Python pipeline does to every model input (wearable.data.preprocess.signal_filter, then
 * ecg_scale, then wearable.runtime.quantize):
 *   - second-order sections in direct form II transposed, evaluated in the same order as
 *     scipy.signal.sosfilt, with the filter state carried across calls;
 *   - the state starts at the steady state of the first sample: zi * x0, where zi is
 *     scipy.signal.sosfilt_zi(sos) (precomputed into model_settings.h by the generator);
 *   - a non-finite input sample (NaN, +-inf: a sensor glitch, a failed read) is replaced by the
 *     last finite input of this preprocessor, 0 before any (init and reset start from 0), so
 *     the filter state stays finite and the stream recovers at the next finite sample; this is
 *     the Python runtime's rule (wearable.runtime.streaming holds the last finite value of each
 *     channel), so both give the same int8 samples for the same hostile stream;
 *   - clip to [clip_lo, clip_hi] (pass -HUGE_VAL/HUGE_VAL for none);
 *   - q = clamp(round(x / scale) + zero_point, -128, 127), rounding half away from zero as
 *     sign(v) * floor(|v| + 0.5), the same expression as wearable.runtime.quantize (TFLite's
 *     rounding convention), so that both sides agree bit for bit.
 *
 * Arithmetic is double by default, which reproduces the float64 Python reference exactly
 * (compile without -ffast-math and without FMA contraction: -std=c99 already implies
 * -ffp-contract=off in GCC). Define WEARABLE_PREPROCESS_FLOAT to use single precision on an
 * FPU without double support; the int8 output may then differ by one step near rounding ties.
 */
#ifndef WEARABLE_PREPROCESS_H_
#define WEARABLE_PREPROCESS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef WEARABLE_PREPROCESS_FLOAT
typedef float wearable_real_t;
#else
typedef double wearable_real_t;
#endif

typedef struct {
  const wearable_real_t (*sos)[6]; /* b0 b1 b2 a0 a1 a2 per section, a0 == 1 */
  const wearable_real_t (*zi)[2];  /* sosfilt_zi(sos): state for a unit step */
  wearable_real_t (*state)[2];     /* caller storage, one row per section */
  size_t n_sections;
  wearable_real_t scale;           /* int8 input scale */
  int32_t zero_point;              /* int8 input zero point */
  wearable_real_t clip_lo, clip_hi;
  int started;                     /* 0 until the first sample sets the steady state */
  wearable_real_t hold;            /* last finite input: stands in for a non-finite one */
} wearable_preprocess_t;

/* 0 on success, -1 on bad arguments (NULL pointers, no sections, scale <= 0, clip_lo > clip_hi). */
int wearable_pp_init(wearable_preprocess_t *pp, const wearable_real_t (*sos)[6], const wearable_real_t (*zi)[2],
                     wearable_real_t (*state)[2], size_t n_sections, wearable_real_t scale, int32_t zero_point,
                     wearable_real_t clip_lo, wearable_real_t clip_hi);
/* Forgets the filter state and the held sample: the next sample starts a new stream (steady state again). */
void wearable_pp_reset(wearable_preprocess_t *pp);
/* Filters one sample (state carried over; a non-finite x counts as the last finite one), without clip
 * or quantization. */
wearable_real_t wearable_pp_filter(wearable_preprocess_t *pp, wearable_real_t x);
/* Clip and quantize one filtered sample to int8. */
int8_t wearable_pp_quantize(const wearable_preprocess_t *pp, wearable_real_t x);
/* Filters, clips and quantizes n samples; out may not alias in. */
void wearable_pp_run(wearable_preprocess_t *pp, const float *in, int8_t *out, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* WEARABLE_PREPROCESS_H_ */
