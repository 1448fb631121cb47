#!/usr/bin/env python3
"""Prints the import cycles between the files of one crate's `src` directory.

Usage: scripts/import-cycles.py crates/exogate/src

An edge runs from a file to the file that defines the module a `crate::`, `super::` or `self::`
path names, whether in a `use` item or written inline. A `mod x;` declaration is not an edge, and
neither is a path from a file into itself (inline `mod tests { use super::*; }` included).
Exits 1 if any cycle exists. Standard library only.
"""

import re
import sys
from pathlib import Path


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def strip(text: str) -> str:
    """Removes comments, strings and char literals, keeping the code's shape."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'", text[i:]):
            i += len(re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'", text[i:]).group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand(tree: str) -> list:
    """Expands a use tree (`a::{b, c::{d}}`) into its paths."""
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for k, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = k
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner = tree[:start], tree[start + 1 : k]
                parts, d, last = [], 0, 0
                for m, ch2 in enumerate(inner):
                    if ch2 in "{":
                        d += 1
                    elif ch2 == "}":
                        d -= 1
                    elif ch2 == "," and d == 0:
                        parts.append(inner[last:m])
                        last = m + 1
                parts.append(inner[last:])
                return [p for part in parts if part for p in expand(prefix + part)]
    return [tree.split(" as ")[0]]


TOKEN = re.compile(r"\bmod\s+(\w+)\s*\{|\buse\s+([^;]*);|\b((?:crate|super|self)(?:\s*::\s*\w+)+)|[{}]")


def paths_in(code: str, here: tuple):
    """Yields (module path of the current scope, path) for every crate-relative path."""
    scopes = [(here, 0)]  # (module, brace depth at which it closes)
    depth = 0
    for m in TOKEN.finditer(code):
        text = m.group(0)
        if m.group(1):
            depth += 1
            scopes.append((scopes[-1][0] + (m.group(1),), depth))
        elif m.group(2) is not None:
            for p in expand(m.group(2)):
                if p.split("::")[0] in ("crate", "super", "self"):
                    yield scopes[-1][0], p
        elif m.group(3):
            yield scopes[-1][0], re.sub(r"\s+", "", m.group(3))
        elif text == "{":
            depth += 1
        else:
            if scopes[-1][1] == depth and len(scopes) > 1:
                scopes.pop()
            depth -= 1


def resolve(path: str, scope: tuple) -> list:
    segs = path.split("::")
    if segs[0] == "crate":
        mod, segs = [], segs[1:]
    else:
        mod = list(scope)
        while segs and segs[0] in ("super", "self"):
            if segs.pop(0) == "super" and mod:
                mod.pop()
    return mod + [s for s in segs if s != "*"]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src = Path(sys.argv[1])
    files = {module_of(src, f): f for f in sorted(src.rglob("*.rs")) if f.name != "main.rs"}
    edges = {mod: set() for mod in files}
    for mod, file in files.items():
        for scope, path in paths_in(strip(file.read_text()), mod):
            target = resolve(path, scope)
            while tuple(target) not in files:
                target.pop()
            if tuple(target) != mod:
                edges[mod].add(tuple(target))

    # Tarjan's strongly connected components; a component of more than one file is a cycle.
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)

    name = lambda m: str(files[m].relative_to(src))
    for comp in found:
        members = set(comp)
        print("cycle: " + ", ".join(name(m) for m in comp))
        for m in comp:
            for w in sorted(edges[m] & members):
                print(f"  {name(m)} -> {name(w)}")
    if not found:
        print(f"no import cycles in {src}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
