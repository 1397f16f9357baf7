"""A price list (the source behind tests/golden/attr.hwt): `heapwise lines`
prints it with what each line allocated, had live at the peak and leaked."""
import json

def load(text):
    """Reads the price list."""
    return json.loads(text)


def build(key):
    import numpy as np
    grid = np.ones((1000, 1000))
    return grid, ("value-%d" % key) * 8


TEXT = '{"apple": 1.25}'



prices = load(TEXT)
grid, label = build(7)
del label
import csv
