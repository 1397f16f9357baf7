"""Records what CPython itself says about the instructions of many code
objects, with their raw location tables, for tests/unit/test_pycode.c. Run
with the interpreter whose table format is tested:
    python3.11 tests/support/gen_pycode_fixture.py lines > tests/unit/data/linetable-3.11.txt
    python3.11 tests/support/gen_pycode_fixture.py positions > tests/unit/data/positions-3.11.txt
Each code object is a line "C first_line hex_linetable", followed by
  lines:     "L instruction_index line" from PyCode_Addr2Line, for every code
             unit and one past each end;
  positions: "P instruction_index line end_line column end_column" from
             co_positions(), one per code unit (None written as -1)."""
import ctypes
import sys
import types

# Sources written to reach the table's edge cases: long lines, expressions
# spread over lines, comprehensions, exception handlers, a gap of 300 lines,
# and (for positions) a line wider than a column byte holds.
EDGE_COMMON = '''
import os
def long_line():
    return (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, len("x"))
def spread(a,
           b):
    x = [a
         for a in range(b)
         if a]
'''
EDGE_TAIL = "\n" * 300 + '''
def far_away():
    return 1
'''
EDGE = {
    "lines": EDGE_COMMON + "\n\n\n" + '''    y = {k: v for k, v in zip(x,
                                   x)}
    return x, y
async def coro(n):
    try:
        await n
    except Exception as e:
        raise ValueError(str(e)) from e
    finally:
        pass
lam = lambda q: (q
    + 1)
class K:
    def method(self):
        with open(os.devnull) as f:
            return f.read()
''' + EDGE_TAIL,
    "positions": EDGE_COMMON.replace('''
import os
''', '''
import os
def f(key):
    return ("value-%d" % key) * 8, [1, 2, 3], {"a": [key] * 3}
''') + '''    y = {k: v for k, v in zip(x,
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
''' + EDGE_TAIL,
}
MODULES = {
    "lines": ("json.decoder", "difflib", "asyncio.base_events"),
    "positions": ("json.decoder", "difflib"),
}


def walk(code):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from walk(c)


def lines(code, out):
    addr2line = ctypes.pythonapi.PyCode_Addr2Line
    addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
    addr2line.restype = ctypes.c_int
    units = len(code.co_code) // 2
    for i in range(-1, units + 1):
        out.write(f"L {i} {addr2line(code, i * 2)}\n")


def positions(code, out):
    for i, pos in enumerate(code.co_positions()):
        vals = " ".join("-1" if v is None else str(v) for v in pos)
        out.write(f"P {i} {vals}\n")


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in EDGE:
        sys.exit("usage: gen_pycode_fixture.py lines|positions > FILE")
    mode = sys.argv[1]
    record = lines if mode == "lines" else positions
    sources = [("<edge>", EDGE[mode])]
    for mod in MODULES[mode]:
        m = __import__(mod, fromlist=["x"])
        with open(m.__file__) as f:
            sources.append((m.__file__, f.read()))
    out = sys.stdout
    for name, src in sources:
        for code in walk(compile(src, name, "exec")):
            out.write(f"C {code.co_firstlineno} {code.co_linetable.hex()}\n")
            record(code, out)


main()
