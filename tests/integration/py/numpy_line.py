"""A NumPy array attributed to the line that made it (integration test)."""
import numpy as np


def build():
    return np.ones((1000, 1000), dtype=np.float64)  # LINE-NUMPY


a = build()
print("numpy", a.nbytes)
