"""A pytest session for the plugin test: one leaking, one clean, one
memory-hungry test, and one that fills a cache once."""
import pytest

LEAK = []
CACHE = {}


@pytest.mark.limit_leaks("100 KB")
def test_leaking():
    LEAK.append(bytearray(1_000_000))  # LINE-PT-LEAK


@pytest.mark.limit_leaks("100 KB")
def test_clean():
    x = bytearray(1_000_000)
    del x


@pytest.mark.limit_memory("1 MB")
def test_hungry():
    x = bytearray(5_000_000)  # LINE-PT-HUNGRY
    del x


@pytest.mark.limit_leaks("100 KB")
def test_cache_once():
    if "k" not in CACHE:
        CACHE["k"] = bytearray(1_000_000)  # LINE-PT-CACHE
