"""Four threads allocating at once (integration test): each makes 2,000
bytes objects of about 1,000 bytes on one line. In a free-threaded build they
run in parallel, and 3.14t runs a per-thread copy of the bytecode. The
objects stay live until the interpreter finalizes (leaked: what the line
keeps, whichever thread ends first)."""
import threading

START = threading.Barrier(4)
SIZES = [1000 + i % 7 for i in range(2_000)]  # made here: no int object on LINE-T


def work(out):
    START.wait()
    for n in SIZES:
        out.append(bytes(n))  # LINE-T


def main():
    outs = [[] for _ in range(4)]
    threads = [threading.Thread(target=work, args=(o,)) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("threads4", sum(len(o) for o in outs))
    return outs


KEPT = main()
