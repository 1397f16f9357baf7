"""Records PyCode_Addr2Line for every instruction of many code objects, with
the raw line tables, for tests/unit/test_pycode.c. Run with the interpreter
whose table format is tested:
    python3.11 tests/support/gen_linetable_fixture.py > tests/unit/data/linetable-3.11.txt
Format: "C first_line hex_linetable" then "L instruction_index line" lines."""
import ctypes
import sys
import types

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
addr2line.restype = ctypes.c_int

EDGE = '''
import os
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
    for mod in ("json.decoder", "difflib", "asyncio.base_events"):
        m = __import__(mod, fromlist=["x"])
        with open(m.__file__) as f:
            sources.append((m.__file__, f.read()))
    out = sys.stdout
    for name, src in sources:
        for code in walk(compile(src, name, "exec")):
            out.write(f"C {code.co_firstlineno} {code.co_linetable.hex()}\n")
            units = len(code.co_code) // 2
            for i in range(-1, units + 1):
                out.write(f"L {i} {addr2line(code, i * 2)}\n")


main()
