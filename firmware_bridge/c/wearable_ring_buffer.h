/* Fixed-capacity sample ring buffer for streaming inference (C99, no dynamic allocation).
 *
 * Part of the wearable firmware bridge (project-written, not generated). Same contract as the
 * Python runtime's ring buffer:
 *   - capacity is fixed at init; the caller provides the storage (capacity * elem_size bytes);
 *   - push(samples, n) returns how many samples this call dropped:
 *       WEARABLE_RB_OVERWRITE_OLDEST: the oldest samples that no longer fit (held ones first,
 *         then the oldest of the incoming ones when n > capacity);
 *       WEARABLE_RB_REJECT_NEW: the incoming samples that do not fit (the tail of this call);
 *   - total_pushed counts every sample offered to push (dropped ones included: it is the stream
 *     position of the next sample), total_dropped every sample dropped; until the first clear,
 *     size == total_pushed - total_dropped (there is no pop: windows are copied, not consumed);
 *   - copy_latest(out, n) copies the latest n samples, oldest first;
 *   - clear() forgets the held samples; the counters keep counting (init zeroes them).
 *
 * Not thread-safe: if an ISR pushes while the main loop copies, wrap the copy (or the push) in
 * a critical section, or let the ISR fill a second buffer that the main loop drains.
 */
#ifndef WEARABLE_RING_BUFFER_H_
#define WEARABLE_RING_BUFFER_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  WEARABLE_RB_OVERWRITE_OLDEST = 0,
  WEARABLE_RB_REJECT_NEW = 1
} wearable_rb_policy_t;

typedef struct {
  uint8_t *storage;      /* capacity * elem_size bytes, owned by the caller */
  size_t capacity;       /* in samples */
  size_t elem_size;      /* bytes per sample (1 for int8, sizeof(float) for raw samples) */
  size_t head;           /* index of the oldest held sample */
  size_t size;           /* samples held */
  uint64_t total_pushed;
  uint64_t total_dropped;
  wearable_rb_policy_t policy;
} wearable_ring_buffer_t;

/* 0 on success, -1 on bad arguments (NULL pointers, zero capacity or element size, capacity * elem_size
 * beyond SIZE_MAX, unknown policy). */
int wearable_rb_init(wearable_ring_buffer_t *rb, void *storage, size_t capacity, size_t elem_size,
                     wearable_rb_policy_t policy);
/* Forgets the held samples (size = 0); total_pushed and total_dropped keep counting. */
void wearable_rb_clear(wearable_ring_buffer_t *rb);
/* Appends n samples (n * elem_size bytes); returns how many samples this call dropped. With n == 0 it does
 * nothing and samples may be NULL. */
size_t wearable_rb_push(wearable_ring_buffer_t *rb, const void *samples, size_t n);
/* Copies the latest n samples, oldest first, into out; 0 on success, -1 (nothing copied) if n > size.
 * With n == 0 it copies nothing and out may be NULL. */
int wearable_rb_copy_latest(const wearable_ring_buffer_t *rb, void *out, size_t n);

size_t wearable_rb_size(const wearable_ring_buffer_t *rb);
size_t wearable_rb_capacity(const wearable_ring_buffer_t *rb);
uint64_t wearable_rb_total_pushed(const wearable_ring_buffer_t *rb);
uint64_t wearable_rb_total_dropped(const wearable_ring_buffer_t *rb);

#ifdef __cplusplus
}
#endif

#endif /* WEARABLE_RING_BUFFER_H_ */
