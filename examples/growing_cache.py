"""Caches that grow without bound: functools.lru_cache(maxsize=None) and a
module-level dict keep every result for ever, so what they hold is still
live at exit (`heapwise leaks`) and grows over the run (`heapwise
timeline`); the same function behind lru_cache(maxsize=256) holds 256."""
import functools

_ROWS = {}   # a module-level cache that never evicts


@functools.lru_cache(maxsize=None)
def render(n):
    return ("row %d " % n) * 20              # kept by the unbounded cache


@functools.lru_cache(maxsize=256)
def render_bounded(n):
    return ("row %d " % n) * 20              # the same, at most 256 kept


def lookup(n):
    if n not in _ROWS:
        _ROWS[n] = [n] * 40                  # kept by the module's dict
    return _ROWS[n]


for i in range(20_000):
    render(i)
    render_bounded(i)
    lookup(i)
