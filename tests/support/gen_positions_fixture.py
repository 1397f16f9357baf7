"""Records co_positions() (line, end line, column, end column of every
instruction) of many code objects, with the raw location tables, for
tests/unit/test_pycode.c. Run with the interpreter whose table format is
tested:
    python3.11 tests/support/gen_positions_fixture.py > tests/unit/data/positions-3.11.txt
Format: "C first_line hex_linetable" then one "P instruction_index line
end_line column end_column" line per code unit (None written as -1)."""
import sys
import types

EDGE = '''
import os
def f(key):
    return ("value-%d" % key) * 8, [1, 2, 3], {"a": [key] * 3}
def long_line():
    return (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, len("x"))
def spread(a,
           b):
    x = [a
         for a in range(b)
         if a]
    y = {k: v for k, v in zip(x,
                                   x)}
    return x, y
def wide():
    return "é" * 3 + ''' + '"' + "x" * 300 + '"' + ''' + str(1)
async def coro(n):
    try:
        await n
    except Exception as e:
        raise ValueError(str(e)) from e
lam = lambda q: (q
    + 1)
''' + "\n" * 300 + '''
def far_away():
    return 1
'''


def walk(code):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from walk(c)


def main():
    sources = [("<edge>", EDGE)]
    for mod in ("json.decoder", "difflib"):
        m = __import__(mod, fromlist=["x"])
        with open(m.__file__) as f:
            sources.append((m.__file__, f.read()))
    out = sys.stdout
    for name, src in sources:
        for code in walk(compile(src, name, "exec")):
            out.write(f"C {code.co_firstlineno} {code.co_linetable.hex()}\n")
            for i, pos in enumerate(code.co_positions()):
                vals = " ".join("-1" if v is None else str(v) for v in pos)
                out.write(f"P {i} {vals}\n")


main()
