"""Call chains that change in every way a frame-chain cache could get wrong
(integration test, run with HEAPWISE_STACK_CACHE=check): generators and
coroutines resumed from other callers, recursion up and down, exceptions
unwinding frames, frames reused at one address by other functions, code
objects that die and whose addresses come back, and threads."""
import asyncio
import threading

SINK = []


def gen(n):
    for i in range(n):
        SINK.append([i] * 3)  # allocates inside the generator's own frame
        yield bytes(10 + i)


def resume_from_a(g):
    return next(g, None)


def resume_from_b(g):
    return [next(g, None)]


def generators():
    g = gen(300)
    for i in range(300):
        # the same generator frame under two callers in turn
        (resume_from_a if i % 2 else resume_from_b)(g)
    sum(len(x) for x in gen(50))  # a generator expression frame


def down(d, limit):
    SINK.append({"d": d})
    if d < limit:
        down(d + 1, limit)
    SINK.append((d, str(d)))


def recursion():
    for limit in (1, 40, 3, 90, 2, 60, 0, 120):
        down(0, limit)


def fail(d):
    SINK.append([d] * 5)
    if d == 0:
        raise ValueError("x" * 50)
    fail(d - 1)


def exceptions():
    for d in range(30):
        try:
            fail(d % 7)
        except ValueError as e:
            SINK.append(str(e) + "y")


def f1():
    return [1.5] * 7


def f2():
    return {"a": [2] * 7}


def same_depth():
    # f1 and f2 run in turn at the same frame address
    for i in range(500):
        SINK.append(f1() if i % 3 else f2())


async def leaf(n):
    await asyncio.sleep(0)
    return bytearray(1000 + n)


async def mid(n):
    a = await leaf(n)
    await asyncio.sleep(0)
    return [a, bytearray(2000 + n)]


async def top():
    return await asyncio.gather(*(mid(i) for i in range(50)))


def coroutines():
    SINK.append(asyncio.run(top()))


def dying_code():
    for i in range(200):
        src = "def f%d(x):\n    return [x] * %d\nR = f%d(%d)\n" % (i, 10 + i, i, i)
        ns = {}
        exec(compile(src, "dyn%03d.py" % i, "exec"), ns)
        SINK.append(ns["R"])
        del ns


def worker(k):
    for _ in range(3):
        generators()
        recursion()
        same_depth()


def main():
    for _ in range(2):
        generators()
        recursion()
        exceptions()
        same_depth()
        coroutines()
        dying_code()
        SINK.clear()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("chains", len(SINK))


main()
