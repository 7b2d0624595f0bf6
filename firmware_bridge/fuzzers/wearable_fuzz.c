/* Fuzz target for the project-written C sources (ring buffer, preprocessing).
 *
 * Built by firmware_bridge.fuzz with AddressSanitizer and UndefinedBehaviorSanitizer, either as a
 * libFuzzer target (clang -fsanitize=fuzzer: coverage-guided) or, with -DWEARABLE_FUZZ_DRIVER, as
 * a program that feeds it pseudo-random inputs from a seed (any compiler with the sanitizers).
 * One input is read as a program: its first byte picks the ring buffer or the preprocessing, the
 * rest gives the parameters and a sequence of operations. Besides what the sanitizers catch, every
 * result is checked:
 *   - ring buffer: against a plain reference model (drop counts, counters, the latest samples,
 *     init refusing bad arguments, zero-length push and copy with NULL pointers doing nothing);
 *   - preprocessing: init refusing a scale that is not > 0 or clip_lo > clip_hi, the filter state
 *     finite after every sample whatever the input (NaN, inf, FLT_MAX, subnormals), the int8
 *     output independent of how the stream is chunked.
 * A failed check prints what failed and aborts.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wearable_preprocess.h"
#include "wearable_ring_buffer.h"

#define RB_MAX_CAPACITY 64
#define RB_MAX_ELEM 8
#define PP_MAX_SAMPLES 1024
#define PP_SECTIONS 2

typedef struct {
  const uint8_t *p;
  size_t n;
} reader_t;

/* abort(): libFuzzer, or the driver's SIGABRT handler, saves the failing input. */
#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "wearable_fuzz: check failed at line %d: %s\n", __LINE__, #cond); \
      abort();                                                                           \
    }                                                                                    \
  } while (0)

static uint8_t take_u8(reader_t *r) {
  if (r->n == 0) return 0;
  r->n--;
  return *r->p++;
}

static uint32_t take_u32(reader_t *r) {
  uint32_t v = 0;
  int i;
  for (i = 0; i < 4; ++i) v = (v << 8) | take_u8(r);
  return v;
}

/* Half the time a sensor-like value, often a value that breaks naive code, else any bit pattern. */
static float take_float(reader_t *r) {
  static const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 5.0f, -5.0f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX,
                                  FLT_MIN, 1e-45f, HUGE_VALF, -HUGE_VALF};
  uint8_t kind = take_u8(r);
  uint32_t bits;
  float x;
  if (kind < 128) return ((float)take_u8(r) - 128.0f) / 16.0f;
  if (kind < 176) return special[kind % (sizeof special / sizeof special[0])];
  if (kind < 192) return nanf("");
  bits = take_u32(r);
  memcpy(&x, &bits, sizeof x);
  return x;
}

/* ------------------------------------------------------------------ ring buffer */

typedef struct {
  uint8_t held[RB_MAX_CAPACITY * RB_MAX_ELEM];
  size_t size, capacity, elem;
  uint64_t pushed, dropped;
  int policy;
} model_t;

static size_t model_push(model_t *m, const uint8_t *src, size_t n) {
  uint8_t all[(RB_MAX_CAPACITY + 3 * RB_MAX_CAPACITY) * RB_MAX_ELEM];
  size_t total = m->size + n, keep, dropped;
  m->pushed += n;
  if (m->policy == WEARABLE_RB_REJECT_NEW) {
    keep = n < m->capacity - m->size ? n : m->capacity - m->size;
    if (keep) memcpy(m->held + m->size * m->elem, src, keep * m->elem);
    m->size += keep;
    dropped = n - keep;
  } else {
    memcpy(all, m->held, m->size * m->elem);
    if (n) memcpy(all + m->size * m->elem, src, n * m->elem);
    dropped = total > m->capacity ? total - m->capacity : 0;
    m->size = total - dropped;
    memcpy(m->held, all + dropped * m->elem, m->size * m->elem);
  }
  m->dropped += dropped;
  return dropped;
}

static void check_init_refusals(void) {
  wearable_ring_buffer_t rb;
  uint8_t storage[4];
  CHECK(wearable_rb_init(NULL, storage, 4, 1, WEARABLE_RB_OVERWRITE_OLDEST) == -1);
  CHECK(wearable_rb_init(&rb, NULL, 4, 1, WEARABLE_RB_OVERWRITE_OLDEST) == -1);
  CHECK(wearable_rb_init(&rb, storage, 0, 1, WEARABLE_RB_OVERWRITE_OLDEST) == -1);
  CHECK(wearable_rb_init(&rb, storage, 4, 0, WEARABLE_RB_OVERWRITE_OLDEST) == -1);
  CHECK(wearable_rb_init(&rb, storage, SIZE_MAX / 2 + 1, 2, WEARABLE_RB_OVERWRITE_OLDEST) == -1);
  CHECK(wearable_rb_init(&rb, storage, 4, 1, (wearable_rb_policy_t)2) == -1);
}

static void fuzz_ring_buffer(reader_t *r) {
  wearable_ring_buffer_t rb;
  model_t m;
  uint8_t *storage;
  memset(&m, 0, sizeof m);
  m.capacity = 1 + take_u8(r) % RB_MAX_CAPACITY;
  m.elem = 1 + take_u8(r) % RB_MAX_ELEM;
  m.policy = take_u8(r) & 1;
  check_init_refusals();
  storage = (uint8_t *)malloc(m.capacity * m.elem); /* exact size: ASan sees any write past it */
  CHECK(storage != NULL);
  CHECK(wearable_rb_init(&rb, storage, m.capacity, m.elem, (wearable_rb_policy_t)m.policy) == 0);
  while (r->n) {
    uint8_t op = take_u8(r) % 4;
    if (op == 0) {
      size_t n = take_u8(r) % (3 * m.capacity + 1), i;
      uint8_t *src = (n == 0 && (take_u8(r) & 1)) ? NULL : (uint8_t *)malloc(n * m.elem + (n == 0));
      size_t want;
      for (i = 0; src != NULL && i < n * m.elem; ++i) src[i] = take_u8(r);
      want = model_push(&m, src, n);
      CHECK(wearable_rb_push(&rb, src, n) == want);
      free(src);
    } else if (op == 1) {
      size_t n = take_u8(r) % (m.capacity + 2);
      uint8_t *out = (n == 0 && (take_u8(r) & 1)) ? NULL : (uint8_t *)malloc(n * m.elem + (n == 0));
      int rc = wearable_rb_copy_latest(&rb, out, n);
      CHECK(rc == (n > m.size ? -1 : 0));
      if (rc == 0 && n) CHECK(memcmp(out, m.held + (m.size - n) * m.elem, n * m.elem) == 0);
      free(out);
    } else if (op == 2) {
      wearable_rb_clear(&rb);
      m.size = 0;
    }
    CHECK(wearable_rb_size(&rb) == m.size && wearable_rb_capacity(&rb) == m.capacity);
    CHECK(wearable_rb_total_pushed(&rb) == m.pushed && wearable_rb_total_dropped(&rb) == m.dropped);
  }
  free(storage);
}

/* ------------------------------------------------------------------ preprocessing */

/* The shipped band-pass filters at 100 Hz (manifest values) and sosfilt_zi of each. */
static const wearable_real_t kSos[2][PP_SECTIONS][6] = {
    {{0.624447671549, 1.248895343097, 0.624447671549, 1.0, 1.140853407676, 0.413249359615},
     {1.0, -2.0, 1.0, 1.0, -1.955572980257, 0.956548270115}},
    {{0.041253537242, 0.082507074483, 0.041253537242, 1.0, -1.365873343956, 0.536926046075},
     {1.0, -2.0, 1.0, 1.0, -1.956187134363, 0.957267575259}}};
static const wearable_real_t kZi[2][PP_SECTIONS][2] = {
    {{0.35350463255670866, 0.22030950814330225}, {-0.97795230410561129, 0.97795230410561551}},
    {{0.92344416658147388, -0.47671778652956931}, {-0.96469770382352349, 0.96469770382352127}}};

static int state_finite(wearable_real_t (*state)[2]) {
  int s;
  for (s = 0; s < PP_SECTIONS; ++s)
    if (!isfinite(state[s][0]) || !isfinite(state[s][1])) return 0;
  return 1;
}

static void fuzz_preprocess(reader_t *r) {
  static float in[PP_MAX_SAMPLES];
  static int8_t one[PP_MAX_SAMPLES], chunked[PP_MAX_SAMPLES];
  wearable_real_t state_a[PP_SECTIONS][2], state_b[PP_SECTIONS][2];
  wearable_preprocess_t a, b;
  int f = take_u8(r) & 1;
  wearable_real_t scale = take_float(r), clip = take_float(r);
  int32_t zero = (int32_t)take_u32(r);
  int ok = scale > 0 && -clip <= clip;
  size_t n = 0, i, done;
  CHECK(wearable_pp_init(&a, kSos[f], kZi[f], state_a, PP_SECTIONS, scale, zero, -clip, clip) == (ok ? 0 : -1));
  if (!ok) return;
  CHECK(wearable_pp_init(&b, kSos[f], kZi[f], state_b, PP_SECTIONS, scale, zero, -clip, clip) == 0);
  while (r->n && n < PP_MAX_SAMPLES) in[n++] = take_float(r);
  for (i = 0; i < n; ++i) { /* one sample per call, as an ADC interrupt would */
    wearable_pp_run(&a, &in[i], &one[i], 1);
    CHECK(state_finite(state_a));
  }
  for (done = 0; done < n;) { /* the same stream in chunks whose sizes come from the samples */
    size_t k = 1 + (size_t)(fabsf(in[done]) < 1e6f ? fabsf(in[done]) * 7.0f : 3.0f) % 97;
    if (k > n - done) k = n - done;
    wearable_pp_run(&b, in + done, chunked + done, k);
    done += k;
  }
  CHECK(n == 0 || memcmp(one, chunked, n) == 0);
  wearable_pp_reset(&a);
  CHECK(a.started == 0 && a.hold == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader_t r;
  r.p = data;
  r.n = size;
  if (take_u8(&r) & 1) {
    fuzz_ring_buffer(&r);
  } else {
    fuzz_preprocess(&r);
  }
  return 0;
}

#ifdef WEARABLE_FUZZ_DRIVER
/* Deterministic driver: xorshift64* inputs of 0-4095 bytes from a seed, until the time or input budget
 * is spent. argv: seconds, seed, max inputs (0: no limit), path to save a failing input to. A failed
 * check aborts, and so do the sanitizers with abort_on_error=1: the SIGABRT handler saves the input. */
#include <signal.h>
#include <time.h>

static uint8_t g_input[4096];
static size_t g_size;
static const char *g_crash_path;

static void save_input(int sig) {
  FILE *f = g_crash_path ? fopen(g_crash_path, "wb") : NULL;
  if (f != NULL) {
    fwrite(g_input, 1, g_size, f);
    fclose(f);
    fprintf(stderr, "wearable_fuzz: failing input saved to %s\n", g_crash_path);
  }
  signal(sig, SIG_DFL); /* abort() goes on and ends the process */
}

static uint64_t next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ULL;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 5.0;
  uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1, s;
  unsigned long long limit = argc > 3 ? strtoull(argv[3], NULL, 10) : 0, runs = 0;
  clock_t start = clock();
  size_t i;
  g_crash_path = argc > 4 ? argv[4] : NULL;
  signal(SIGABRT, save_input);
  s = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (;;) {
    if (limit && runs >= limit) break;
    if ((runs & 255) == 0 && (double)(clock() - start) / CLOCKS_PER_SEC >= seconds) break;
    g_size = (size_t)(next(&s) % sizeof g_input);
    if (runs % 4 == 0) g_size %= 64; /* short programs reach the edge cases more often */
    for (i = 0; i < g_size; ++i) g_input[i] = (uint8_t)(next(&s) >> 56);
    LLVMFuzzerTestOneInput(g_input, g_size);
    ++runs;
  }
  printf("stat::number_of_executed_units: %llu\nstat::seconds: %.1f\nstat::seed: %llu\n", runs,
         (double)(clock() - start) / CLOCKS_PER_SEC, (unsigned long long)seed);
  return 0;
}
#endif
