"""A ThreadPoolExecutor's one worker, started by the first submit, then
given library code to run (json.loads of a big document: a structure kept
for good) and a function of the user's (a bytearray kept). Under the default
--blame user the worker's work is charged within the worker's own frames:
json's own line, the user's function's line, never the first submit's line
merely for having started the worker. Prints the sizes kept as JSON."""
import json
import sys
from concurrent.futures import ThreadPoolExecutor

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


def small():
    return [0] * 10


def work():
    KEEP.append(bytearray(3_000_000))  # LINE-WORK


def main():
    doc = json.dumps([{"key-%d" % i: "v" * (i % 97)} for i in range(40_000)])
    with ThreadPoolExecutor(max_workers=1) as ex:
        ex.submit(small).result()  # LINE-START
        KEEP.append(ex.submit(json.loads, doc).result())  # LINE-JSON
        ex.submit(work).result()  # LINE-SUBMIT-WORK
    print(json.dumps({"json": deep_size(KEEP[0]), "work": sys.getsizeof(KEEP[1])}))


main()
