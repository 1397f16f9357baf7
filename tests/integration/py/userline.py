"""Allocations made inside libraries on the user's own lines (integration
test of the user's-line rule): np.ones and json.loads are charged to the
line that called them. Prints the known sizes as JSON."""
import json
import sys

import numpy as np

KEEP = []


def deep_size(obj):
    """What obj holds: its own size and its items', each object once."""
    seen, todo, total = set(), [obj], 0
    while todo:
        o = todo.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            todo.extend(o.keys())
            todo.extend(o.values())
        elif isinstance(o, list):
            todo.extend(o)
    return total


def main():
    doc = json.dumps([{"key-%d" % i: "v" * (i % 97)} for i in range(20_000)])
    KEEP.append(np.ones((1000, 1000)))  # LINE-NUMPY
    KEEP.append(json.loads(doc))  # LINE-JSON
    print(json.dumps({"numpy": sys.getsizeof(KEEP[0]), "json": deep_size(KEEP[1])}))


main()
