"""(p) pygmentize-like: Pygments highlights N KiB of Python source to HTML,
as `pygmentize -f html` does. The source is Pygments' own lexer modules
(sorted, repeated up to the size), so interpreters with the same Pygments
version highlight the same text. Needs Pygments (python3-pygments, or
PYTHONPATH naming a directory that has it)."""
import os
import sys

import pygments
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer


def source(kib):
    d = os.path.join(os.path.dirname(pygments.__file__), "lexers")
    parts = []
    for name in sorted(os.listdir(d)):
        if name.endswith(".py"):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                parts.append(f.read())
    text = "".join(parts)
    want = kib * 1024
    return (text * (want // len(text) + 1))[:want]


def main(kib):
    out = highlight(source(kib), PythonLexer(), HtmlFormatter())
    print("p", kib, pygments.__version__, len(out))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 512)
