"""Allocations of known sizes on known lines (integration test). Exits 3."""
import sys
import threading


def make_str():
    return "x" * 5_000_000  # LINE-STR


def make_bytearrays():
    return [bytearray(1_000_000) for _ in range(4)]  # LINE-BA


def make_list(out):
    out.append([None] * 250_000)  # LINE-LIST


def produce():
    for _ in range(3):
        yield bytes(300_000)  # LINE-GEN


def main():
    keep = [make_str(), make_bytearrays()]
    out = []
    t = threading.Thread(target=make_list, args=(out,))
    t.start()
    t.join()
    keep.append(out)
    keep.append(list(produce()))
    print("sizes", len(keep))
    sys.exit(3)


main()
