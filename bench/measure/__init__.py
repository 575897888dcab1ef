"""Measurements: compare, memory, throughput, scaling, calibrate, overhead."""
