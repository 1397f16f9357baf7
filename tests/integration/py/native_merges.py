"""Mixed stacks whose outer part stays while the inner part changes in every
way --native's merge could get wrong (integration test, run with
HEAPWISE_NATIVE=1 HEAPWISE_STACK_CACHE=check): Python called back from C
at growing and shrinking native depths (sorted's key, map, a __repr__
under nested lists, a generator resumed by next()), the same Python
frames under other native frames, exceptions through C, code objects that
die, threads."""
import threading

SINK = []


class Leaf:
    def __init__(self, k):
        self.k = k

    def __repr__(self):
        SINK.append([self.k] * 4)  # allocates under a repr nested k lists deep
        return "L%d" % self.k


def nest(depth, k):
    x = Leaf(k)
    for _ in range(depth):
        x = [x]
    return x


def reprs():
    for depth in (0, 5, 1, 30, 2, 12, 0, 60, 3):
        for k in range(20):
            SINK.append(repr(nest(depth, k)))


def key(v):
    SINK.append(str(v))  # allocates under sorted, itself under Python frames
    return -v


def callbacks():
    for n in (3, 50, 7, 200):
        SINK.append(sorted(range(n), key=key))
        SINK.append(list(map(key, range(n))))


def gen(n):
    for i in range(n):
        yield [i] * (i % 7 + 1)


def resumed():
    g = gen(400)
    for i in range(400):
        # the generator's frame under next() and under a for loop, in turn
        if i % 2:
            SINK.append(next(g, None))
        else:
            for v in g:
                SINK.append(v)
                break


def raising(v):
    if v % 3 == 0:
        raise KeyError("k" * 40)
    return [v] * 3


def exceptions():
    for i in range(300):
        try:
            SINK.append(list(map(raising, range(i % 5, i % 5 + 4))))
        except KeyError as e:
            SINK.append(str(e))


def dying_code():
    for i in range(100):
        src = "def g%d(x):\n    return sorted([x] * %d, key=str)\nR = g%d(%d)\n" % (i, 5 + i, i, i)
        ns = {}
        exec(compile(src, "ndyn%03d.py" % i, "exec"), ns)
        SINK.append(ns["R"])
        del ns


def worker(k):
    for _ in range(2):
        reprs()
        callbacks()
        resumed()


def main():
    for _ in range(3):
        reprs()
        callbacks()
        resumed()
        exceptions()
        dying_code()
        SINK.clear()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("merges", len(SINK))


main()
