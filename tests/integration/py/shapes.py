"""Python called back from C, coroutines under asyncio, and a native thread
without a Python thread state (integration test). argv[1]: the nthread library."""
import asyncio
import ctypes
import sys


def compare(a, b):
    junk = bytearray(70_000)  # LINE-CALLBACK
    return a[0] - b[0] + 0 * len(junk)


def sort_with_c_callback():
    libc = ctypes.CDLL(None)
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    arr = (ctypes.c_int * 3)(3, 1, 2)
    libc.qsort(arr, 3, ctypes.sizeof(ctypes.c_int), CMP(compare))  # LINE-QSORT
    return list(arr)


async def fetch(n):
    await asyncio.sleep(0)
    return bytes(90_000 + n)  # LINE-CORO


async def gather():
    return await asyncio.gather(fetch(1), fetch(2))


def main():
    assert sort_with_c_callback() == [1, 2, 3]
    kept = asyncio.run(gather())
    lib = ctypes.CDLL(sys.argv[1])
    lib.nthread_leak.argtypes = [ctypes.c_size_t]
    lib.nthread_leak(123_457)  # LINE-NTHREAD
    print("shapes", len(kept))


main()
