"""A reference leak, the way a C extension leaks: 3 MiB whose reference count
never drops to zero, so it outlives the interpreter's finalization
(integration test of the leak gate)."""
import ctypes


def handle():
    buf = bytearray(3 << 20)  # LINE-REFLEAK
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(buf))


handle()
print("served")
