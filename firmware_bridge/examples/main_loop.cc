// Minimal TFLite Micro main loop for the generated firmware sources of dscnn_tiny (README:
// "Firmware integration"). Compiled by tests/test_firmware_generate.py against stub TFLM headers.
#include <cstdint>
#include <cstring>

#include "model_data.h"
#include "model_settings.h"
#include "op_resolver.h"
#include "test_vectors.h"
#include "wearable_preprocess.h"
#include "wearable_ring_buffer.h"
#include "tensorflow/lite/micro/micro_interpreter.h"

// Arena: static (never stack or heap), 16-byte aligned, in the fastest RAM the model fits in.
alignas(16) static uint8_t tensor_arena[DSCNN_TINY_TENSOR_ARENA_BYTES];

// Preprocessing and the int8 history of the model input (one of each per input channel).
static const wearable_real_t sos[DSCNN_TINY_FILTER_0_SECTIONS][6] = DSCNN_TINY_FILTER_0_SOS;
static const wearable_real_t zi[DSCNN_TINY_FILTER_0_SECTIONS][2] = DSCNN_TINY_FILTER_0_ZI;
static wearable_real_t filter_state[DSCNN_TINY_FILTER_0_SECTIONS][2];
static wearable_preprocess_t pre;
static int8_t history_storage[DSCNN_TINY_WINDOW_SAMPLES];
static wearable_ring_buffer_t history;

// Filled by the ISR at every hop, consumed by the main loop.
static int8_t ready_window[DSCNN_TINY_WINDOW_SAMPLES];
static volatile int window_ready = 0;
static volatile uint32_t windows_missed = 0;

extern "C" float adc_read_mv(void);  // your driver: one ECG sample in mV at DSCNN_TINY_SAMPLING_RATE_HZ
extern "C" void fail(int code);      // your error handler

// Sample-rate interrupt: filter + quantize one sample, append it, hand over a window every hop.
extern "C" void ADC_IRQHandler(void) {
  float mv = adc_read_mv();
  int8_t q;
  wearable_pp_run(&pre, &mv, &q, 1);
  wearable_rb_push(&history, &q, 1);
  uint64_t n = wearable_rb_total_pushed(&history);
  if (n >= DSCNN_TINY_WINDOW_SAMPLES && (n - DSCNN_TINY_WINDOW_SAMPLES) % DSCNN_TINY_HOP_SAMPLES == 0) {
    if (window_ready) windows_missed = windows_missed + 1;  // inference slower than the hop
    wearable_rb_copy_latest(&history, ready_window, DSCNN_TINY_WINDOW_SAMPLES);
    window_ready = 1;
  }
}

// On-target self-test: golden int8 inputs must give the golden int8 outputs, within the
// tolerance measured at export (0 for this model: bit for bit).
static int self_test(tflite::MicroInterpreter &interpreter) {
  for (int i = 0; i < DSCNN_TINY_TEST_VECTOR_COUNT; ++i) {
    std::memcpy(interpreter.input(0)->data.int8, dscnn_tiny_test_input_0[i], DSCNN_TINY_INPUT_0_SIZE);
    if (interpreter.Invoke() != kTfLiteOk) return -1;
    const int8_t *got = interpreter.output(0)->data.int8;
    for (int k = 0; k < DSCNN_TINY_OUTPUT_0_SIZE; ++k) {
      const int diff = got[k] - dscnn_tiny_test_output_0[i][k];
      if (diff > DSCNN_TINY_TEST_TOLERANCE || -diff > DSCNN_TINY_TEST_TOLERANCE)
        return i + 1;  // vector i differs: wrong model array, kernel mismatch or memory corruption
    }
  }
  return 0;
}

int main(void) {
  static const char *const labels[DSCNN_TINY_LABEL_COUNT] = DSCNN_TINY_LABELS;
  static dscnn_tiny_op_resolver_t resolver;
  if (dscnn_tiny_register_ops(resolver) != kTfLiteOk) fail(1);
  static tflite::MicroInterpreter interpreter(tflite::GetModel(dscnn_tiny_model_data), resolver, tensor_arena,
                                              sizeof tensor_arena);
  if (interpreter.AllocateTensors() != kTfLiteOk) fail(2);  // arena too small: raise the margin
  if (self_test(interpreter) != 0) fail(3);

  wearable_pp_init(&pre, sos, zi, filter_state, DSCNN_TINY_FILTER_0_SECTIONS, DSCNN_TINY_INPUT_0_SCALE,
                   DSCNN_TINY_INPUT_0_ZERO_POINT, DSCNN_TINY_FILTER_0_CLIP_LO, DSCNN_TINY_FILTER_0_CLIP_HI);
  wearable_rb_init(&history, history_storage, DSCNN_TINY_WINDOW_SAMPLES, sizeof(int8_t),
                   WEARABLE_RB_OVERWRITE_OLDEST);
  // ... start the ADC timer and enable ADC_IRQHandler here ...

  for (;;) {
    if (!window_ready) continue;  // or sleep until the next interrupt (__WFI())
    std::memcpy(interpreter.input(0)->data.int8, ready_window, DSCNN_TINY_INPUT_0_SIZE);
    window_ready = 0;
    if (interpreter.Invoke() != kTfLiteOk) fail(4);
    const int8_t *out = interpreter.output(0)->data.int8;
    int best = 0;
    for (int k = 1; k < DSCNN_TINY_OUTPUT_0_SIZE; ++k)
      if (out[k] > out[best]) best = k;
    float logit = DSCNN_TINY_OUTPUT_0_SCALE * (out[best] - DSCNN_TINY_OUTPUT_0_ZERO_POINT);
    (void)labels[best];  // report labels[best] and logit
    (void)logit;
  }
}
