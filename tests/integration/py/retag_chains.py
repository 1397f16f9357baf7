"""Free lists' objects made again at one frame address under other callers
(integration test, run with HEAPWISE_STACK_CACHE=check): a tuple freed at
once goes back to its free list, and the next one, made by the same line of
make() but called from elsewhere, gets the same block. Only the callers
differ, one, two or three frames out; a decision that looked at the
innermost frames alone would leave the block on the first caller's stack.
The tuples made through via_b (and kept) must be on via_b's line."""
import threading

KEPT = []


def make(i):
    return (i, None)  # LINE-MAKE


def mid(i):
    return make(i)


def via_a(i):
    return mid(i)  # LINE-VIA-A


def via_b(i):
    return mid(i)  # LINE-VIA-B


def outer(f, i):
    return f(i)


def turns(n):
    for i in range(n):
        t = outer(via_a, i)  # the same frames two calls out
        del t
        t = outer(via_b, i)
        if i % 10 == 0:
            KEPT.append(t)  # 1 in 10 of via_b's tuples live on
        del t
        x = [float(i), float(-i)]  # floats and a list from their free lists
        del x
        t = make(i)  # make's frame straight under turns
        t = make(i)
        del t


def gen(n):
    for i in range(n):
        yield make(i)  # resumed from two callers in turn


def generators(n):
    g = gen(n)
    for i in range(n):
        (next if i % 2 else lambda g: [next(g)])(g)


def recursion(d):
    if d:
        return recursion(d - 1)
    return make(d)


def dying_code(n):
    for i in range(n):
        ns = {}
        exec(compile("def f(i):\n    return (i, i + 1)\nR = f(%d)\n" % i, "dyn.py", "exec"), ns)
        del ns


def main():
    turns(20_000)
    generators(2_000)
    for d in (1, 5, 2, 40, 3) * 200:
        recursion(d)
    dying_code(300)
    threads = [threading.Thread(target=turns, args=(2_000,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("kept", len(KEPT))


main()
