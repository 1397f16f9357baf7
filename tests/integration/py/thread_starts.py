# Threads started by the hundred, each allocating: Python 3.14+ asks
# pthread_getattr_np for the new thread's stack first thing
# (_Py_InitializeRecursionLimits), inside which glibc allocates while it
# holds the thread's lock.
import threading

done = []


def work(i):
    done.append([i] * 1000)  # LINE-WORK


for batch in range(10):
    ts = [threading.Thread(target=work, args=(batch * 40 + k,)) for k in range(40)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
print(len(done))
