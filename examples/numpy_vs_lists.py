"""A million floats: as a Python list, each is a 24-byte float object
plus an 8-byte pointer in the list; as a NumPy array, 8 bytes each in one
buffer. `heapwise lines` puts about 32 MB on the list's line and 8 MB on
the array's (NumPy's own frames are charged to your line)."""
import numpy as np

N = 1_000_000

as_list = [float(i) for i in range(N)]
as_array = np.arange(N, dtype=np.float64)
print(len(as_list), as_array.nbytes)
