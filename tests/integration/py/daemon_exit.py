"""A daemon thread still allocating and freeing when the interpreter exits
(integration test: the trace ends cleanly, nothing in it is damaged)."""
import threading
import time


def churn():
    while True:
        x = [object() for _ in range(100)]
        del x


for _ in range(2):
    threading.Thread(target=churn, daemon=True).start()
time.sleep(0.2)
keep = [bytearray(1000) for _ in range(100)]
