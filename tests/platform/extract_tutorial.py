#!/usr/bin/env python3
"""Writes the code of a tutorial page into a folder.

Every fenced code block whose info string names a file (```cpp file=waves.cpp)
is appended, in page order, to that file under OUT_DIR; other blocks are
prose. Exits 1 when the page has no such block.

usage: extract_tutorial.py PAGE.md OUT_DIR
"""
import os
import re
import sys


def main():
    page, out = sys.argv[1], sys.argv[2]
    files = {}
    block = None
    for line in open(page, encoding="utf-8"):
        if block is None:
            m = re.match(r"^```\S*\s+file=(\S+)\s*$", line)
            if m:
                block = m.group(1)
                files.setdefault(block, [])
        elif line.startswith("```"):
            block = None
        else:
            files[block].append(line)
    if block is not None:
        sys.exit(f"{page}: a code block for {block} is not closed")
    if not files:
        sys.exit(f"{page}: no code block names a file (```cpp file=NAME)")
    os.makedirs(out, exist_ok=True)
    for name, lines in files.items():
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.writelines(lines)
        print(f"{os.path.join(out, name)}: {len(lines)} lines")


if __name__ == "__main__":
    main()
