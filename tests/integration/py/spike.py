"""A 5 MB temporary that lives for microseconds between two slow phases
(integration test: the timeline keeps the spike and shows its fall)."""
import time


def slow_phase():
    keep = []
    end = time.monotonic() + 0.15
    while time.monotonic() < end:
        keep.append(bytes(1000))
        if len(keep) > 100:
            keep.clear()


def spike():
    return len(bytearray(5_000_000))  # LINE-SPIKE


slow_phase()
spike()
slow_phase()
