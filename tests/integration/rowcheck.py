"""The identical-rows checker: no report may show two rows that read the same
(the same frames, in the same memory class), whatever grouping. It knows the
shapes heapwise prints: top/leaks tables (several per output with process
trees), diff tables, the summary's peak lines, check's offending lines,
`lines` tables, timeline legends (CSV header) and every JSON document's
callsite lists and series. duplicates() returns a description of each
duplicate found (empty when there is none)."""
import csv
import io
import json
import re

ROW = re.compile(r"^ +\d+  \S")
TABLE = re.compile(r"^ +# +PEAK +LEAKED +ALLOCATED")


def _tables(lines):
    """top/leaks/diff tables: (kind, [row text]) per table."""
    out, rows, diff = [], None, False
    for line in lines:
        if TABLE.match(line):
            rows, diff = [], line.rstrip().endswith("callsite")
            out.append(rows)
            continue
        if rows is None:
            continue
        if ROW.match(line):
            if diff:  # "  %3zu  %-12s %-12s %-12s callsite"
                rows.append(line[46:])
            else:  # the frames below the figures, in the row's memory class
                kind = line.split()[-1]
                rows.append((kind if kind in ("mmap", "mmap-file") else "heap") + "|")
            continue
        if line.startswith("         ") and rows and not diff:
            rows[-1] += line.strip() + "\n"
            continue
        if line.strip() and not line.startswith(" "):
            rows = None  # the table ended
    return out


def _blocks(lines, heading, indent, strip):
    """Indented lines under a heading (summary peaks, check offenders)."""
    out, rows = [], None
    for line in lines:
        if heading.search(line):
            rows = []
            out.append(rows)
            continue
        if rows is not None and line.startswith(" " * indent) and line.strip():
            rows.append(strip.sub("", line, count=1))
        else:
            rows = None
    return out


PEAK_HEADING = re.compile(r"at the peak \(heap live|largest lines at the processes' peaks")
PEAK_STRIP = re.compile(r"^ +\S+ \S+ +")
CHECK_HEADING = re.compile(r"^    top (leaking|peak) lines:")
CHECK_STRIP = re.compile(r"^ +\S+ \S+ +(in \d+ blocks? +)?")


def _json_rows(doc, where="", out=None):
    """Every list of callsites (or timeline series) in a JSON document."""
    if out is None:
        out = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("callsites", "series") and isinstance(value, list):
                rows = []
                for c in value:
                    site = c.get("callsite", c)
                    cls = site.get("class") or {"mmap": "mmap", "mmap-file": "mmap-file"}.get(
                        site.get("kind"), "heap")
                    rows.append(cls + json.dumps(site.get("frames"), sort_keys=True)
                                + str(site.get("other", "")))
                out.append((where + "." + key, rows))
            else:
                _json_rows(value, where + "." + key, out)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            _json_rows(value, f"{where}[{i}]", out)
    return out


def _dups(name, rows):
    seen, found = set(), []
    for r in rows:
        if r in seen:
            found.append(f"{name}: {r!r}")
        seen.add(r)
    return found


LINES_HEADING = re.compile(r"^ +LINE +ALLOCATED +PEAK +LEAKED +COUNT +SOURCE")
LINES_ROW = re.compile(r"^ +(\d+|\?)  ")


def _lines_tables(lines):
    """`heapwise lines`: the line numbers of each file's table, and the
    files' headings (a file's table once)."""
    out, rows, files = [], None, []
    for i, line in enumerate(lines):
        if LINES_HEADING.match(line):
            rows = []
            out.append(rows)
            head = i - 1 if not lines[i - 1].startswith("  (") else i - 2
            files.append(lines[head])
            continue
        if rows is None:
            continue
        m = LINES_ROW.match(line)
        if m:
            rows.append(m.group(1))
        elif not line.startswith("     ..."):
            rows = None
    return out + [files]


def duplicates(output, fmt="text"):
    """fmt: text (any text report), json, csv (a timeline)."""
    found = []
    if fmt == "json":
        for where, rows in _json_rows(json.loads(output)):
            found += _dups(where, rows)
        return found
    if fmt == "csv":
        header = next(csv.reader(io.StringIO(output)))
        return _dups("timeline legend", header[2:])
    lines = output.splitlines()
    for rows in _tables(lines):
        found += _dups("table", rows)
    for rows in _blocks(lines, PEAK_HEADING, 4, PEAK_STRIP):
        found += _dups("peak lines", rows)
    for rows in _blocks(lines, CHECK_HEADING, 6, CHECK_STRIP):
        found += _dups("check lines", rows)
    for rows in _lines_tables(lines):
        found += _dups("lines", [r for r in rows if r != "?"])
    return found
