/* Streaming preprocessing: see wearable_preprocess.h for the semantics. */
#include "wearable_preprocess.h"

#include <math.h>

#ifdef WEARABLE_PREPROCESS_FLOAT
#define WP_FLOOR floorf
#define WP_FABS fabsf
#else
#define WP_FLOOR floor
#define WP_FABS fabs
#endif

int wearable_pp_init(wearable_preprocess_t *pp, const wearable_real_t (*sos)[6], const wearable_real_t (*zi)[2],
                     wearable_real_t (*state)[2], size_t n_sections, wearable_real_t scale, int32_t zero_point,
                     wearable_real_t clip_lo, wearable_real_t clip_hi) {
  if (pp == NULL || sos == NULL || zi == NULL || state == NULL || n_sections == 0) return -1;
  if (!(scale > 0) || !(clip_lo <= clip_hi)) return -1;
  pp->sos = sos;
  pp->zi = zi;
  pp->state = state;
  pp->n_sections = n_sections;
  pp->scale = scale;
  pp->zero_point = zero_point;
  pp->clip_lo = clip_lo;
  pp->clip_hi = clip_hi;
  pp->started = 0;
  pp->hold = 0;
  return 0;
}

void wearable_pp_reset(wearable_preprocess_t *pp) {
  pp->started = 0;
  pp->hold = 0;
}

wearable_real_t wearable_pp_filter(wearable_preprocess_t *pp, wearable_real_t x) {
  size_t s;
  /* One NaN or inf in the state would pin every later output: hold the last finite input instead. */
  if (isfinite(x)) {
    pp->hold = x;
  } else {
    x = pp->hold;
  }
  if (!pp->started) {
    for (s = 0; s < pp->n_sections; ++s) {
      pp->state[s][0] = pp->zi[s][0] * x;
      pp->state[s][1] = pp->zi[s][1] * x;
    }
    pp->started = 1;
  }
  /* Same operations in the same order as scipy's sosfilt (direct form II transposed). */
  for (s = 0; s < pp->n_sections; ++s) {
    const wearable_real_t *c = pp->sos[s];
    wearable_real_t *z = pp->state[s];
    wearable_real_t y = c[0] * x + z[0];
    z[0] = c[1] * x - c[4] * y + z[1];
    z[1] = c[2] * x - c[5] * y;
    x = y;
  }
  return x;
}

int8_t wearable_pp_quantize(const wearable_preprocess_t *pp, wearable_real_t x) {
  wearable_real_t v, q;
  if (x != x) return (int8_t)(pp->zero_point < -128 ? -128 : pp->zero_point > 127 ? 127 : pp->zero_point);
  /* np.clip(x, lo, hi) */
  if (x < pp->clip_lo) x = pp->clip_lo;
  if (x > pp->clip_hi) x = pp->clip_hi;
  v = x / pp->scale;
  q = WP_FLOOR(WP_FABS(v) + (wearable_real_t)0.5);
  if (v < 0) q = -q;
  q += (wearable_real_t)pp->zero_point;
  /* Clamp before the conversion: out-of-range float-to-int conversion is undefined in C. */
  if (q < -128) q = -128;
  if (q > 127) q = 127;
  return (int8_t)q;
}

void wearable_pp_run(wearable_preprocess_t *pp, const float *in, int8_t *out, size_t n) {
  size_t i;
  for (i = 0; i < n; ++i) out[i] = wearable_pp_quantize(pp, wearable_pp_filter(pp, (wearable_real_t)in[i]));
}
