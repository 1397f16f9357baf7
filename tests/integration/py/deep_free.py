"""Deeply nested lists, dicts and tuples freed at once: CPython's trashcan
bounds the C stack their deallocation takes only while each type's
tp_dealloc is its own (the shim wraps list's and dict's on 3.11 and 3.12)."""
x = None
for i in range(300_000):
    x = [x]
del x
x = None
for i in range(300_000):
    x = {"k": x}
del x
x = None
for i in range(300_000):
    x = (x, [x])
del x
print("ok")
