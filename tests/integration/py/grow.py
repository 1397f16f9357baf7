"""Two allocations on one line (integration test for diff): two stacks whose
frames print the same. Usage: grow.py FIRST SECOND (sizes in bytes)."""
import sys

first, second = int(sys.argv[1]), int(sys.argv[2])
a, b = bytearray(first), bytearray(second)  # LINE-TWO
