# A module that starts a worker thread while it is imported (libraries do:
# a background flusher, a cache warmer); the worker keeps 10 MB for good.
# Run as a script, it imports itself as that module and waits for the worker.
import importlib
import os
import threading

CACHE = []


def work():
    for i in range(100):
        CACHE.append(bytearray(100_000))  # LINE-KEEP


if __name__ != "__main__":
    worker = threading.Thread(target=work)
    worker.start()
else:
    mod = importlib.import_module(os.path.splitext(os.path.basename(__file__))[0])
    mod.worker.join()
    print(len(mod.CACHE))
