"""Names no report may show raw (integration test): a function whose name
holds terminal escape sequences, a newline and a bidi override, code
compiled under a file name with an escape sequence and a formula prefix;
the test runs it from a directory whose name is not UTF-8."""


def build():
    return [bytearray(200_000) for _ in range(10)]


build.__code__ = build.__code__.replace(
    co_name="evil\x1b]0;pwned\x07",
    co_qualname="evil\x1b]0;pwned\x07\n    1  999 MiB  fake row\u202e")
keep = build()
ns = {}
exec(compile("def made():\n    return bytearray(3_000_000)\n\nheld = made()\n",
             "=cmd|' /C calc'!A0\x1b[2J.py", "exec"), ns)
