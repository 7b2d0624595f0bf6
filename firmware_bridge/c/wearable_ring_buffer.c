/* Fixed-capacity sample ring buffer: see wearable_ring_buffer.h for the contract. */
#include "wearable_ring_buffer.h"

#include <string.h>

int wearable_rb_init(wearable_ring_buffer_t *rb, void *storage, size_t capacity, size_t elem_size,
                     wearable_rb_policy_t policy) {
  if (rb == NULL || storage == NULL || capacity == 0 || elem_size == 0) return -1;
  if (capacity > SIZE_MAX / elem_size) return -1; /* byte offsets would wrap */
  if (policy != WEARABLE_RB_OVERWRITE_OLDEST && policy != WEARABLE_RB_REJECT_NEW) return -1;
  rb->storage = (uint8_t *)storage;
  rb->capacity = capacity;
  rb->elem_size = elem_size;
  rb->policy = policy;
  rb->head = 0;
  rb->size = 0;
  rb->total_pushed = 0;
  rb->total_dropped = 0;
  return 0;
}

void wearable_rb_clear(wearable_ring_buffer_t *rb) {
  rb->head = 0;
  rb->size = 0;
}

/* Writes n samples at logical position size (the tail), in at most two memcpy calls. */
static void write_tail(wearable_ring_buffer_t *rb, const uint8_t *src, size_t n) {
  size_t tail = (rb->head + rb->size) % rb->capacity;
  size_t first = rb->capacity - tail;
  if (first > n) first = n;
  memcpy(rb->storage + tail * rb->elem_size, src, first * rb->elem_size);
  memcpy(rb->storage, src + first * rb->elem_size, (n - first) * rb->elem_size);
  rb->size += n;
}

size_t wearable_rb_push(wearable_ring_buffer_t *rb, const void *samples, size_t n) {
  const uint8_t *src = (const uint8_t *)samples;
  size_t free_slots = rb->capacity - rb->size;
  size_t dropped = 0;
  if (n == 0) return 0; /* memcpy from NULL, even of 0 bytes, and NULL + 0 are undefined */
  rb->total_pushed += n;
  if (n <= free_slots) {
    write_tail(rb, src, n);
    return 0;
  }
  if (rb->policy == WEARABLE_RB_REJECT_NEW) {
    dropped = n - free_slots;
    write_tail(rb, src, free_slots);
  } else {
    dropped = rb->size + n - rb->capacity;
    if (n >= rb->capacity) {
      /* Everything held and the oldest incoming samples go: keep the last `capacity`. */
      rb->head = 0;
      rb->size = 0;
      write_tail(rb, src + (n - rb->capacity) * rb->elem_size, rb->capacity);
    } else {
      size_t evict = n - free_slots;
      rb->head = (rb->head + evict) % rb->capacity;
      rb->size -= evict;
      write_tail(rb, src, n);
    }
  }
  rb->total_dropped += dropped;
  return dropped;
}

int wearable_rb_copy_latest(const wearable_ring_buffer_t *rb, void *out, size_t n) {
  uint8_t *dst = (uint8_t *)out;
  size_t start, first;
  if (n > rb->size) return -1;
  if (n == 0) return 0;
  start = (rb->head + rb->size - n) % rb->capacity;
  first = rb->capacity - start;
  if (first > n) first = n;
  memcpy(dst, rb->storage + start * rb->elem_size, first * rb->elem_size);
  memcpy(dst + first * rb->elem_size, rb->storage, (n - first) * rb->elem_size);
  return 0;
}

size_t wearable_rb_size(const wearable_ring_buffer_t *rb) { return rb->size; }
size_t wearable_rb_capacity(const wearable_ring_buffer_t *rb) { return rb->capacity; }
uint64_t wearable_rb_total_pushed(const wearable_ring_buffer_t *rb) { return rb->total_pushed; }
uint64_t wearable_rb_total_dropped(const wearable_ring_buffer_t *rb) { return rb->total_dropped; }
