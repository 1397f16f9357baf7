"""Python names go tool pprof must keep (integration test): code at module
level (<module>) and a module-level list comprehension (<listcomp>)."""
data = [bytearray(100_000) for _ in range(30)]
big = bytearray(2_000_000)
