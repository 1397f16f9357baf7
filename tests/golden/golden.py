"""Golden tests: committed traces through every report, compared with the
committed expected output (diff -u). `golden.py --update` rewrites the expected
files after a deliberate change; review the diff before committing it."""
import difflib
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
HEAPWISE = os.environ.get("HEAPWISE", "heapwise")

FAMILY = ["family-parent.hwt", "family-child.hwt", "family-exec.hwt"]

CASES = [
    ("basic.summary.txt", ["summary", "basic.hwt"]),
    ("basic.summary.json", ["summary", "basic.hwt", "--json"]),
    ("basic.top.txt", ["top", "basic.hwt"]),
    ("basic.top.json", ["top", "basic.hwt", "--json"]),
    ("basic.top-allocated-function.txt", ["top", "basic.hwt", "--by", "allocated",
                                          "--group-by", "function"]),
    ("basic.top-count-n1.txt", ["top", "basic.hwt", "--by", "count", "-n", "1"]),
    ("basic.top-temporary.json", ["top", "basic.hwt", "--by", "temporary", "--json"]),
    ("basic.leaks.txt", ["leaks", "basic.hwt"]),
    ("basic.leaks.json", ["leaks", "basic.hwt", "--json"]),
    ("basic.dump.txt", ["dump", "basic.hwt"]),
    ("basic.check-pass.txt", ["check", "basic.hwt", "--max-peak", "2M", "--max-leaked", "20K",
                              "--max-allocations", "10"]),
    ("basic.check-fail.txt", ["check", "basic.hwt", "--max-peak", "1MiB", "--max-leaked", "10K"]),
    ("basic.check-suppressed.txt", ["check", "basic.hwt", "--max-leaked", "10K",
                                    "--suppressions", "suppressions.txt"]),
    ("basic.check-junit.xml", ["check", "basic.hwt", "--max-leaked", "10K", "--max-peak", "2M",
                               "--junit", "/dev/stdout"]),
    ("basic.check-usage.txt", ["check", "basic.hwt"]),
    ("marked.summary.txt", ["summary", "marked.hwt", "--between", "request-start",
                            "request-end"]),
    ("marked.leaks.json", ["leaks", "marked.hwt", "--json", "--between", "request-start",
                           "request-end"]),
    ("marked.check.txt", ["check", "marked.hwt", "--max-leaked", "512", "--between",
                          "request-start", "request-end"]),
    # the same run's duration with and without a window
    ("marked.summary-whole.txt", ["summary", "marked.hwt"]),
    ("marked.missing.txt", ["summary", "marked.hwt", "--between", "nope", "request-end"]),
    ("basic.flame-peak.folded", ["flamegraph", "basic.hwt", "-o", "-"]),
    ("basic.flame-allocated.svg", ["flamegraph", "basic.hwt", "--metric", "allocated",
                                   "-o", "{out}.svg"]),
    ("basic.flame-leaked.html", ["flamegraph", "basic.hwt", "--metric", "leaked",
                                 "-o", "{out}.html"]),
    ("basic.export.json", ["export", "basic.hwt", "--format", "json", "-o", "-"]),
    ("basic.export-usage.txt", ["export", "basic.hwt", "--format", "xml", "-o", "-"]),
    ("hostile.top.txt", ["top", "hostile.hwt"]),
    ("hostile.top.json", ["top", "hostile.hwt", "--json"]),
    ("hostile.flame.svg", ["flamegraph", "hostile.hwt", "-o", "{out}.svg"]),
    ("hostile.flame.html", ["flamegraph", "hostile.hwt", "-o", "{out}.html"]),
    ("diff.cut-basic.txt", ["diff", "cut.hwt", "basic.hwt"]),
    ("diff.cut-basic.json", ["diff", "cut.hwt", "basic.hwt", "--json", "--max-peak-growth", "5"]),
    ("diff.gate-pass.txt", ["diff", "basic.hwt", "basic.hwt", "--max-peak-growth", "0"]),
    ("diff.gate-fail.txt", ["diff", "cut.hwt", "basic.hwt", "--max-peak-growth", "0.1",
                            "--group-by", "function"]),
    ("diff.usage.txt", ["diff", "basic.hwt"]),
    # a process that exec'd: nothing leaked, the heap live at exec said
    ("execd.summary.txt", ["summary", "execd.hwt"]),
    ("execd.summary.json", ["summary", "execd.hwt", "--json"]),
    ("execd.check.txt", ["check", "execd.hwt", "--max-leaked", "1K"]),
    ("execd.leaks.txt", ["leaks", "execd.hwt"]),
    ("execd.dump.txt", ["dump", "execd.hwt"]),
    ("exec-exit.summary.txt", ["summary", "exec-exit.hwt"]),
    ("exec-exit.check.txt", ["check", "exec-exit.hwt", "--max-leaked", "100K"]),
    # a sampled trace: every estimate with its 95% interval (text) and
    # standard error (JSON); check holds the estimate to the limit
    ("sampled.summary.txt", ["summary", "sampled.hwt"]),
    ("sampled.summary.json", ["summary", "sampled.hwt", "--json"]),
    ("sampled.top.txt", ["top", "sampled.hwt"]),
    ("sampled.top.json", ["top", "sampled.hwt", "--json"]),
    ("sampled.leaks.json", ["leaks", "sampled.hwt", "--json"]),
    ("sampled.check.txt", ["check", "sampled.hwt", "--allow-sampled", "--max-peak", "400K",
                           "--max-leaked", "350K", "--max-allocations", "200"]),
    # flame graphs: the interval in the title, each frame's in its tooltip
    # (SVG title, HTML data); the folded stacks stay flamegraph.pl's
    ("sampled.flame.svg", ["flamegraph", "sampled.hwt", "-o", "{out}.svg"]),
    ("sampled.flame.html", ["flamegraph", "sampled.hwt", "-o", "{out}.html"]),
    ("sampled.flame.folded", ["flamegraph", "sampled.hwt", "-o", "-"]),
    # a timeline's series with their standard errors (CSV: after the values)
    ("sampled.timeline.csv", ["timeline", "sampled.hwt", "-n", "2", "-o", "{out}.csv"]),
    ("diff.basic-sampled.txt", ["diff", "basic.hwt", "sampled.hwt", "--max-peak-growth", "10"]),
    ("diff.basic-sampled.json", ["diff", "basic.hwt", "sampled.hwt", "--json"]),
    # two stacks whose frames print the same are one row: rows add up
    ("diff.grow.txt", ["diff", "grow-base.hwt", "grow-new.hwt"]),
    ("diff.grow.json", ["diff", "grow-base.hwt", "grow-new.hwt", "--json"]),
    ("diff.grow-n1.txt", ["diff", "grow-base.hwt", "grow-new.hwt", "-n", "1"]),
    ("basic.timeline.csv", ["timeline", "basic.hwt", "-n", "2", "-o", "{out}.csv"]),
    ("basic.timeline.svg", ["timeline", "basic.hwt", "-n", "2", "-o", "{out}.svg"]),
    ("hostile.timeline.svg", ["timeline", "hostile.hwt", "-o", "{out}.svg"]),
    ("hostile.timeline.html", ["timeline", "hostile.hwt", "-o", "{out}.html"]),
    # names with control bytes, bidi controls, bytes that are not UTF-8 and
    # formula prefixes: every output escapes them (and stays well-formed)
    ("names.summary.txt", ["summary", "names.hwt"]),
    ("names.summary.json", ["summary", "names.hwt", "--json"]),
    ("names.top.txt", ["top", "names.hwt"]),
    ("names.top-file.txt", ["top", "names.hwt", "--group-by", "file"]),
    ("names.top.json", ["top", "names.hwt", "--json"]),
    ("names.dump.txt", ["dump", "names.hwt"]),
    ("names.check-junit.xml", ["check", "names.hwt", "--max-leaked", "1K", "--junit",
                               "/dev/stdout"]),
    ("names.flame.folded", ["flamegraph", "names.hwt", "-o", "-"]),
    ("names.flame.svg", ["flamegraph", "names.hwt", "-o", "{out}.svg"]),
    ("names.flame.html", ["flamegraph", "names.hwt", "-o", "{out}.html"]),
    ("names.timeline.csv", ["timeline", "names.hwt", "-o", "{out}.csv"]),
    ("names.timeline.svg", ["timeline", "names.hwt", "-o", "{out}.svg"]),
    ("names.timeline.html", ["timeline", "names.hwt", "-o", "{out}.html"]),
    ("names.export.json", ["export", "names.hwt", "--format", "json", "-o", "-"]),
    ("names.diff.txt", ["diff", "names.hwt", "names.hwt"]),
    # a row's bytes of several allocator kinds; each kind's share of the peak
    ("kinds.summary.txt", ["summary", "kinds.hwt"]),
    ("kinds.summary.json", ["summary", "kinds.hwt", "--json"]),
    ("kinds.top.txt", ["top", "kinds.hwt"]),
    ("kinds.top-allocated.txt", ["top", "kinds.hwt", "--by", "allocated"]),
    ("kinds.top.json", ["top", "kinds.hwt", "--json"]),
    ("kinds.flame.svg", ["flamegraph", "kinds.hwt", "-o", "{out}.svg"]),
    # hints speak only of frames a report shows; labels of grouped rows
    ("hidden.top.txt", ["top", "hidden.hwt"], "stderr"),
    ("hidden.top-line.txt", ["top", "hidden.hwt", "--group-by", "line"], "stderr"),
    ("hidden.top-function.txt", ["top", "hidden.hwt", "--group-by", "function"], "stderr"),
    ("hidden.top-file.txt", ["top", "hidden.hwt", "--group-by", "file"], "stderr"),
    ("hidden.summary.txt", ["summary", "hidden.hwt"], "stderr"),
    ("basic.top-file.txt", ["top", "basic.hwt", "--group-by", "file"], "stderr"),
    # the user's line (shop.py) is charged with what libraries allocated
    # under it; two expressions of one line show their columns, two
    # instructions of one expression are one row
    ("attr.top.txt", ["top", "attr.hwt"]),
    ("attr.top.json", ["top", "attr.hwt", "--json"]),
    ("attr.top-line.txt", ["top", "attr.hwt", "--group-by", "line"]),
    ("attr.top-line-innermost.txt", ["top", "attr.hwt", "--group-by", "line", "--blame",
                                     "innermost"]),
    ("attr.top-function.txt", ["top", "attr.hwt", "--group-by", "function", "--by",
                               "allocated"]),
    ("attr.leaks.txt", ["leaks", "attr.hwt"]),
    ("attr.leaks-file.json", ["leaks", "attr.hwt", "--group-by", "file", "--json"]),
    ("attr.summary.txt", ["summary", "attr.hwt"]),
    ("attr.check.txt", ["check", "attr.hwt", "--max-leaked", "1K", "--max-peak", "1M"]),
    ("attr.timeline.csv", ["timeline", "attr.hwt", "-o", "{out}.csv"]),
    ("attr.diff.txt", ["diff", "grow-base.hwt", "attr.hwt", "--group-by", "line"]),
    # heapwise lines: shop.py with its figures; a pseudo-file's lines
    # without source; the hostile names escaped in text and HTML
    ("attr.lines.txt", ["lines", "attr.hwt"]),
    ("attr.lines-file.json", ["lines", "attr.hwt", "shop.py", "--json"]),
    ("attr.lines.html", ["lines", "attr.hwt", "-o", "{out}.html"]),
    ("attr.lines-frozen.txt", ["lines", "attr.hwt", "<frozen importlib._bootstrap>"]),
    ("attr.lines-missing.txt", ["lines", "attr.hwt", "nothere.py"], "stderr"),
    ("names.lines.txt", ["lines", "names.hwt"], "stderr"),
    ("names.lines.html", ["lines", "names.hwt", "-o", "{out}.html"]),
    ("attr.blame-usage.txt", ["top", "attr.hwt", "--blame", "outer"], "stderr"),
    ("cut.summary.txt", ["summary", "cut.hwt"]),
    ("cut.summary.json", ["summary", "cut.hwt", "--json"]),
    # several traces of one tree: each process and the tree combined
    ("tree.summary.txt", ["summary", *FAMILY]),
    ("tree.summary.json", ["summary", *FAMILY, "--json"]),
    ("tree.top.txt", ["top", *FAMILY, "--group-by", "function", "-n", "3"]),
    ("tree.leaks.json", ["leaks", *FAMILY, "--json", "-n", "3"]),
    ("tree.flame.folded", ["flamegraph", *FAMILY, "-o", "-"]),
    ("tree.export.json", ["export", *FAMILY, "--format", "json", "-o", "-"]),
    # traces that are not one tree: each tree apart, with a warning; refused
    # where one output would mix them
    ("unrelated.summary.txt", ["summary", "basic.hwt", "family-child.hwt", "marked.hwt",
                               "family-parent.hwt"], "stderr"),
    ("unrelated.leaks.json", ["leaks", "family-parent.hwt", "basic.hwt", "family-exec.hwt",
                              "--json", "-n", "1"], "stderr"),
    ("unrelated.flame.txt", ["flamegraph", "basic.hwt", "marked.hwt", "-o", "-"], "stderr"),
]


def unclean(text):
    """The first character no output may hold: a control character other
    than newline, or a C1 control (a terminal acts on them)."""
    for ch in text:
        if (ord(ch) < 0x20 and ch != "\n") or 0x7f <= ord(ch) <= 0x9f:
            return repr(ch)
    return None


def main():
    update = "--update" in sys.argv
    failed = 0
    tmp = tempfile.mkdtemp(prefix="hw-golden-")
    for expected, args, *flags in CASES:
        out = os.path.join(tmp, "out")
        real = [a.replace("{out}", out) for a in args]
        p = subprocess.run([HEAPWISE, *real], cwd=HERE, capture_output=True)
        got, bad, stderr = f"$ heapwise {' '.join(args)}\n[exit {p.returncode}]\n", None, ""
        try:  # every output is UTF-8
            got += p.stdout.decode()
            for a in real:
                if a.startswith(out) and os.path.exists(a):
                    with open(a, "rb") as f:
                        got += f.read().decode()
            stderr = p.stderr.decode()
        except UnicodeDecodeError as e:
            bad = f"bytes that are not UTF-8 ({e})"
        for a in real:
            if a.startswith(out) and os.path.exists(a):
                os.unlink(a)
        bad = bad or unclean(got) or unclean(stderr)
        if "stderr" in flags:
            got += f"[stderr]\n{stderr}"
        if bad:
            failed += 1
            print(f"FAIL {expected}: the output holds {bad}")
            continue
        path = os.path.join(HERE, "expected", expected)
        if update:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(got)
            continue
        with open(path) as f:
            want = f.read()
        if got != want:
            failed += 1
            sys.stdout.writelines(difflib.unified_diff(
                want.splitlines(True), got.splitlines(True), path, "actual"))
        print(("ok   " if got == want else "FAIL ") + expected)
    print(f"{len(CASES) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
