"""Checks a de-identified export (CSV) on its own, without the code that
made it: every combination of the quasi-identifier columns occurs at least
k times, the columns are exactly the expected ones, and none of the given
forbidden strings (patient ids, names, free text) appears anywhere.
Prints {"rows", "groups", "smallest_group", "pseudonyms"} as JSON; exit 1
with the reason otherwise.

usage: check_kanon.py FILE.csv K QI1,QI2,... COLUMN1,COLUMN2,... [FORBIDDEN...]
"""
import collections
import csv
import json
import sys


def main():
    path, k = sys.argv[1], int(sys.argv[2])
    qis = sys.argv[3].split(",")
    columns = sys.argv[4].split(",")
    forbidden = sys.argv[5:]
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read()
    for word in forbidden:
        if word in text:
            print(f"forbidden {word!r} is in the export", file=sys.stderr)
            return 1
    rows = list(csv.DictReader(text.splitlines()))
    header = next(csv.reader(text.splitlines()), [])
    if header != columns:
        print(f"columns {header} are not {columns}", file=sys.stderr)
        return 1
    groups = collections.Counter(tuple(r[q] for q in qis) for r in rows)
    small = {g: n for g, n in groups.items() if n < k}
    if small:
        print(f"combinations under k={k}: {small}", file=sys.stderr)
        return 1
    print(json.dumps({
        "rows": len(rows),
        "groups": len(groups),
        "smallest_group": min(groups.values()) if groups else None,
        "pseudonyms": sorted({r["pseudonym"] for r in rows}),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
