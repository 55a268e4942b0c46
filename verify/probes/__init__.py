"""Probes: the only code that touches NVML, /proc, /sys and subprocesses. They record, never judge."""
