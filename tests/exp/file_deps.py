#!/usr/bin/env python3
"""File-level call graph of a source directory: which .c file calls functions defined in which other
.c file (functions found by ctags; calls = identifiers followed by '(' outside comments and strings).
Prints one line per file and any circle; exit status 1 when there is a circle.
Usage: python3 tests/exp/file_deps.py [DIR ...]   (default: src/exp)"""
import re
import subprocess
import sys


def strip(code):
    code = re.sub(r"/\*.*?\*/", " ", code, flags=re.S)
    code = re.sub(r"//[^\n]*", " ", code)
    return re.sub(r'"(\\.|[^"\\])*"', '""', code)


def main(dirs):
    files = []
    for d in dirs:
        files += sorted(subprocess.run(["sh", "-c", f"ls {d}/*.c"], capture_output=True, text=True).stdout.split())
    tags = subprocess.run(["ctags", "--c-kinds=f", "-o", "-"] + files, capture_output=True, text=True).stdout
    owner = {}
    for line in tags.splitlines():
        name, path = line.split("\t")[:2]
        owner.setdefault(name, set()).add(path)
    graph = {}
    for f in files:
        calls = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", strip(open(f).read())))
        graph[f] = sorted({o for c in calls for o in owner.get(c, ()) if o != f and len(owner[c]) == 1})
    for f in files:
        print(f"{f} -> {' '.join(g.rsplit('/', 1)[-1] for g in graph[f]) or '(none)'}")
    # circles: depth-first search for back edges
    state, stack, circles = {}, [], []

    def visit(f):
        state[f] = 1
        stack.append(f)
        for g in graph[f]:
            if state.get(g) == 1:
                circles.append(stack[stack.index(g):] + [g])
            elif not state.get(g):
                visit(g)
        stack.pop()
        state[f] = 2

    for f in files:
        if not state.get(f):
            visit(f)
    for c in circles:
        print("CIRCLE: " + " -> ".join(x.rsplit("/", 1)[-1] for x in c))
    print(f"{len(files)} files, {sum(len(v) for v in graph.values())} file-level edges, {len(circles)} circle(s)")
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["src/exp"]))
