"""A pytest session for the plugin test: one leaking, one clean, one
memory-hungry test, one that fills a cache once, and one that leaks what a
library (json) allocated on its line."""
import json

import pytest

LEAK = []
CACHE = {}
DOC = json.dumps([{"n": i, "text": "x" * 40} for i in range(5_000)])


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


@pytest.mark.limit_leaks("100 KB")
def test_json_leak():
    LEAK.append(json.loads(DOC))  # LINE-PT-JSON
