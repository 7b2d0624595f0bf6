"""Latency, RAM and flash benchmarks for wearable targets (see the benchmarks issue)."""
