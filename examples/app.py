"""A small program for the heapwise quick start: it builds an index that it
keeps, makes a large temporary buffer, and leaks into a cache that never
evicts. `heapwise top` should name each of these lines."""
import sys

_CACHE = {}


def load_words(n):
    return ["word-%d" % i for i in range(n)]          # a list that stays alive


def build_index(words):
    index = {}
    for w in words:
        index.setdefault(w[:6], []).append(w)         # dict and list growth
    return index


def render_report(index):
    buf = bytearray(8 * 1024 * 1024)                 # a large temporary
    return len(buf) + len(index)


def lookup(key):
    if key not in _CACHE:
        _CACHE[key] = ("value-%d" % key) * 16        # a cache that only grows
    return _CACHE[key]


def main(n):
    words = load_words(n)
    index = build_index(words)
    size = render_report(index)
    total = sum(len(lookup(i % 5000)) for i in range(n))
    print("words", len(words), "buckets", len(index), "report", size, "cache", total)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
