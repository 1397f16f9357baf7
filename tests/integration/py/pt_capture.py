"""A pytest session for the plugin's capture test: a test over its limit
that prints and logs, then one that fails on its own."""
import logging

import pytest

log = logging.getLogger("pt_capture")


@pytest.mark.limit_memory("1 MB")
def test_big():
    print("stdout of test_big")
    log.warning("warning from test_big")
    x = [bytes(1000) for _ in range(5000)]
    del x


def test_next():
    print("stdout of test_next")
    assert False
