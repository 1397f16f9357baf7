"""A list comprehension holds every item at once; a generator expression
holds one. Both lines compute the same sum of a million floats, and both
allocate a million floats: `heapwise lines` shows the list's line with
about 31 MiB live at the heap's peak and the generator's with a few bytes
(`heapwise timeline --group-by line`: the generator's line never holds
more than a few bytes at any time)."""
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000

total_gen = sum(x * 0.5 for x in range(N))      # one float at a time
total_list = sum([x * 0.5 for x in range(N)])   # a list of N floats, then the sum
print(total_gen == total_list)
