#!/usr/bin/env python3
"""Measures the architecture of the crate ("the house") and prints a Markdown report.

    python3 scripts/house.py              # Markdown report of the working tree
    python3 scripts/house.py --json       # the same numbers as JSON
    python3 scripts/house.py --self-test  # checks the import-circle finder on a fake crate

Three measurements:

* rooms: the `.rs` files under `src/` (recursive) and `systems/`, their lines, the largest one, the total
  lines of `src/` and the files over 500 lines;
* import circles: the file-level dependency graph built from every `crate::` / `$crate::` / `self::` /
  `super::` path written anywhere in a file (use lines, inline calls, doc links, attribute strings,
  macro bodies, `crate::{a, b::{c, d}}` groups), each path mapped to the file that defines the longest
  module prefix it names; the strongly connected components with more than one file (Tarjan) are the
  circles;
* duplicated blocks: the number of pairs listed by `duplicates --most 200` (run in the repository root).

Standard library only (Python 3.11). It reads files and runs `git` and `duplicates`; it writes nothing.
"""

from __future__ import annotations

import argparse
import bisect
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

BIG_FILE_LINES = 500
IDENT = r"(?:r#)?[A-Za-z_][A-Za-z0-9_]*"
IDENT_RE = re.compile(IDENT)
WS_RE = re.compile(r"\s*")

# --------------------------------------------------------------------------------------------------
# Lexing: which characters are code, string literal or comment.
# --------------------------------------------------------------------------------------------------

CODE, STRING, COMMENT, MARKER = "c", "s", "m", "k"


def lex(text: str) -> list[str]:
    """A class per character: code, string literal (quotes included), comment text, comment marker."""
    n = len(text)
    cls = [CODE] * n
    i = 0

    def ident_char(ch: str) -> bool:
        return ch.isalnum() or ch == "_"

    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            k = i + 2
            while k < j and k < i + 3 and text[k] in "/!":
                k += 1
            for p in range(i, k):
                cls[p] = MARKER
            for p in range(k, j):
                cls[p] = COMMENT
            i = j
            continue
        if ch == "/" and nxt == "*":
            depth = 0
            j = i
            while j < n:
                if text.startswith("/*", j):
                    depth += 1
                    cls[j] = cls[j + 1] = MARKER
                    j += 2
                    if j < n and text[j] in "*!" and not text.startswith("*/", j):
                        cls[j] = MARKER
                        j += 1
                elif text.startswith("*/", j):
                    depth -= 1
                    cls[j] = cls[j + 1] = MARKER
                    j += 2
                    if depth == 0:
                        break
                else:
                    cls[j] = COMMENT
                    j += 1
            i = j
            continue
        # raw strings r"..", r#".."#, br"..", cr".."
        m = re.match(r'(?:b|c)?r(#*)"', text[i:i + 260]) if ch in "bcr" and (i == 0 or not ident_char(text[i - 1])) else None
        if m:
            end_pat = '"' + m.group(1)
            j = text.find(end_pat, i + m.end())
            j = n if j < 0 else j + len(end_pat)
            for p in range(i, j):
                cls[p] = STRING
            i = j
            continue
        if ch == '"' or (ch in "bc" and nxt == '"' and (i == 0 or not ident_char(text[i - 1]))):
            j = i + (1 if ch == '"' else 2)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(n, j + 1)
            for p in range(i, j):
                cls[p] = STRING
            i = j
            continue
        if ch == "'" or (ch == "b" and nxt == "'" and (i == 0 or not ident_char(text[i - 1]))):
            q = i if ch == "'" else i + 1
            if q + 1 < n and text[q + 1] == "\\":
                j = text.find("'", q + 3)
                j = n if j < 0 else j + 1
            elif q + 2 < n and text[q + 2] == "'" and text[q + 1] != "'":
                j = q + 3
            else:  # a lifetime or label
                i = q + 1
                continue
            for p in range(i, j):
                cls[p] = STRING
            i = j
            continue
        i += 1
    return cls


def views(text: str, cls: list[str]) -> tuple[str, str]:
    """(code view: code and string literals, comments blanked; comment view: comment text only)."""
    code = [c if (k in (CODE, STRING) or c == "\n") else " " for c, k in zip(text, cls)]
    comm = [c if (k == COMMENT or c == "\n") else " " for c, k in zip(text, cls)]
    return "".join(code), "".join(comm)


# --------------------------------------------------------------------------------------------------
# Paths: crate::a::b, $crate::a, self::x, super::super::y, crate::{a, b::{c, d}}.
# --------------------------------------------------------------------------------------------------

AS_RE = re.compile(r"\s+as\s+" + IDENT)


def anchor_re(extra: tuple[str, ...] = ()) -> re.Pattern:
    """`crate::`, `$crate::`, `self::`, `super::` (and extra crate names, e.g. the library in main.rs)."""
    alt = "".join(rf"|(?<![\w$:])({re.escape(a)})" for a in extra)
    return re.compile(rf"(?:(?<![\w$])(crate|self|super)|(?<![\w$])\$(crate){alt})\s*::")


ANCHOR_RE = anchor_re()


def _ident_at(s: str, i: int) -> tuple[str, int] | None:
    m = IDENT_RE.match(s, i)
    if not m:
        return None
    name = m.group(0)
    return (name[2:] if name.startswith("r#") else name), m.end()


def _skip_ws(s: str, i: int) -> int:
    return WS_RE.match(s, i).end()


def _dcolon(s: str, i: int) -> int | None:
    """Index after `::` (spaces allowed around it) at i, or None."""
    j = _skip_ws(s, i)
    if s.startswith("::", j) and not s.startswith(":::", j):
        return _skip_ws(s, j + 2)
    return None


def parse_tree(s: str, i: int) -> tuple[list[list[str]], int]:
    """Parses a use-tree-like path at i (after an anchor's `::`): returns relative segment lists, end."""
    segs: list[str] = []
    while True:
        if i < len(s) and s[i] == "{":
            out: list[list[str]] = []
            j = i + 1
            while True:
                j = _skip_ws(s, j)
                if j >= len(s):
                    return [segs + o for o in out] or [segs], j
                if s[j] == "}":
                    j += 1
                    break
                if s[j] == ",":
                    j += 1
                    continue
                if s[j] == "{" or IDENT_RE.match(s, j) or s[j] == "*":
                    sub, k = parse_tree(s, j)
                    if k == j:
                        break
                    out.extend(sub)
                    j = k
                else:  # malformed group: keep what was read
                    break
            return [segs + o for o in out] or [segs], j
        if i < len(s) and s[i] == "*":
            return [segs], i + 1
        got = _ident_at(s, i)
        if not got:
            return [segs], i
        name, i = got
        if name == "as" and segs:
            return [segs], i
        segs.append(name)
        nxt = _dcolon(s, i)
        if nxt is None or (nxt < len(s) and s[nxt] == "<"):
            m = AS_RE.match(s, i)  # `x as y` rename inside a use tree
            return [segs], (m.end() if m else i)
        i = nxt


def find_paths(view: str, anchors_extra: tuple[str, ...] = ()) -> list[tuple[int, str, list[str]]]:
    """Every anchored path in a view: (offset, anchor, relative segments), groups expanded."""
    out = []
    pattern = anchor_re(anchors_extra) if anchors_extra else ANCHOR_RE
    consumed = 0
    for m in pattern.finditer(view):
        if m.start() < consumed:
            continue
        # not an anchor when it continues another path: `a::self::x`
        before = view[:m.start()].rstrip()
        if before.endswith("::"):
            continue
        anchor = next(g for g in m.groups() if g)
        if m.group(2):
            anchor = "$crate"
        trees, end = parse_tree(view, _skip_ws(view, m.end()))
        consumed = end
        for segs in trees:
            if segs:  # a bare `crate::` names nothing
                out.append((m.start(), anchor, segs))
    return out


# --------------------------------------------------------------------------------------------------
# Module tree.
# --------------------------------------------------------------------------------------------------


@dataclass
class Module:
    path: tuple[str, ...]
    file: str  # repository-relative
    crate: str
    children: dict[str, tuple[str, ...]] = field(default_factory=dict)
    uses: dict[str, tuple[str, ...] | None] = field(default_factory=dict)  # alias -> absolute target


@dataclass
class SourceFile:
    rel: str
    text: str
    cls: list[str]
    code: str
    comment: str
    lines: int
    newlines: list[int]
    # (start, end, module path) of each module body in this file, outermost first
    spans: list[tuple[int, int, tuple[str, ...]]] = field(default_factory=list)
    crate: str = ""

    def line_of(self, off: int) -> int:
        return bisect.bisect_right(self.newlines, off - 1) + 1 if self.newlines else 1

    def module_at(self, off: int) -> tuple[str, ...]:
        best = None
        for s, e, p in self.spans:
            if s <= off < e and (best is None or len(p) >= len(best)):
                best = p
        return best if best is not None else self.spans[0][2]


MOD_RE = re.compile(
    r"((?:#\s*!?\[[^\]]*\]\s*)*)(?<![\w$])(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*([;{])"
)
PATH_ATTR_RE = re.compile(r'#\s*\[\s*path\s*=\s*"([^"]*)"\s*\]')
USE_RE = re.compile(r"(?<![\w$])use\s+")
MACRO_EXPORT_RE = re.compile(r"#\s*\[\s*macro_export\b[^\]]*\]\s*macro_rules!\s*(" + IDENT + ")")
OUT_DIR_INCLUDE_RE = re.compile(r"include!\s*\(\s*concat!\s*\(\s*env!\s*\(\s*\"OUT_DIR\"")


def load(root: Path, rel: str) -> SourceFile:
    text = (root / rel).read_text(encoding="utf-8", errors="replace")
    cls = lex(text)
    code, comment = views(text, cls)
    nl = [i for i, c in enumerate(text) if c == "\n"]
    return SourceFile(rel, text, cls, code, comment, len(text.splitlines()), nl)


def match_brace(sf: SourceFile, open_idx: int) -> int:
    """Index just after the `}` closing the `{` at open_idx (code characters only)."""
    depth = 0
    for j in range(open_idx, len(sf.text)):
        if sf.cls[j] != CODE:
            continue
        c = sf.text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(sf.text)


def brace_depths(sf: SourceFile) -> list[int]:
    """Brace depth (code braces only) before each character."""
    d = 0
    out = [0] * (len(sf.text) + 1)
    for j, c in enumerate(sf.text):
        out[j] = d
        if sf.cls[j] == CODE:
            if c == "{":
                d += 1
            elif c == "}":
                d -= 1
    out[len(sf.text)] = d
    return out


class Crate:
    """All module trees of the package: the library and each binary root."""

    def __init__(self, root: Path, crate_name: str):
        self.root = root
        self.crate_name = crate_name
        self.files: dict[str, SourceFile] = {}
        self.modules: dict[tuple[str, tuple[str, ...]], Module] = {}
        self.roots: dict[str, str] = {}  # crate id -> root file
        self.macros: dict[str, dict[str, str]] = {}  # crate id -> macro name -> file
        self.notes: list[str] = []

    # -- building ----------------------------------------------------------------------------------

    def add_root(self, crate: str, rel: str) -> None:
        self.roots[crate] = rel
        self.macros[crate] = {}
        self._add_file(crate, rel, (), mod_rs=True)

    def _add_file(self, crate: str, rel: str, modpath: tuple[str, ...], mod_rs: bool) -> None:
        if rel in self.files and self.files[rel].crate:
            self.notes.append(f"{rel} is reached twice (as `{'::'.join(modpath) or 'crate'}` too); kept once")
            return
        sf = self.files.get(rel) or load(self.root, rel)
        sf.crate = crate
        self.files[rel] = sf
        self.modules[(crate, modpath)] = Module(modpath, rel, crate)
        sf.spans.append((0, len(sf.text) + 1, modpath))
        depths = brace_depths(sf)
        # directory for child modules of this file, as Rust does it
        fdir = Path(rel).parent
        base_dir = fdir if mod_rs else fdir / Path(rel).stem
        self._scan_body(crate, sf, depths, 0, len(sf.text), 0, modpath, base_dir, fdir, mod_rs, inline=())
        for m in MACRO_EXPORT_RE.finditer(sf.code):
            self.macros[crate].setdefault(m.group(1), rel)
        if OUT_DIR_INCLUDE_RE.search(sf.code):
            self._add_generated(crate, sf, modpath, fdir)

    def _scan_body(self, crate, sf, depths, start, end, depth, modpath, base_dir, fdir, mod_rs, inline):
        for m in MOD_RE.finditer(sf.code, start, end):
            if sf.cls[m.start(2)] != CODE or depths[m.start(2)] != depth:
                continue
            name = m.group(2)
            name = name[2:] if name.startswith("r#") else name
            child = modpath + (name,)
            self.modules[(crate, modpath)].children[name] = child
            pa = PATH_ATTR_RE.search(m.group(1) or "")
            if m.group(3) == "{":
                open_idx = m.end(3) - 1
                close = match_brace(sf, open_idx)
                self.modules[(crate, child)] = Module(child, sf.rel, crate)
                sf.spans.append((open_idx, close, child))
                child_base = base_dir / (pa.group(1) if pa else name)
                self._scan_body(crate, sf, depths, open_idx + 1, close - 1, depth + 1, child, child_base,
                                fdir, mod_rs, inline + (name,))
                continue
            if pa:
                if inline:  # path attribute inside an inline module: relative to the inline dirs
                    target = base_dir / pa.group(1)
                else:  # relative to the directory of the declaring file
                    target = fdir / pa.group(1)
                cand = [target]
                child_mod_rs = True  # a file loaded by #[path] owns its directory
            else:
                cand = [base_dir / f"{name}.rs", base_dir / name / "mod.rs"]
                child_mod_rs = None
            found = None
            for c in cand:
                c = Path(os.path.normpath(c))
                if (self.root / c).is_file():
                    found = c
                    break
            if not found:
                self.notes.append(f"`mod {name};` in {sf.rel}: no file found ({', '.join(map(str, cand))})")
                continue
            rel = found.as_posix()
            is_mod_rs = child_mod_rs if child_mod_rs is not None else (found.name == "mod.rs")
            self._add_file(crate, rel, child, is_mod_rs)

    def _add_generated(self, crate, sf, modpath, fdir):
        """`include!(concat!(env!("OUT_DIR"), ..))`: this crate's build.rs writes `#[path] pub mod x;` for
        every other `*.rs` file of the including file's folder; mirror that."""
        added = []
        for p in sorted((self.root / fdir).glob("*.rs")):
            rel = p.relative_to(self.root).as_posix()
            if rel == sf.rel or p.stem in self.modules[(crate, modpath)].children:
                continue
            child = modpath + (p.stem,)
            self.modules[(crate, modpath)].children[p.stem] = child
            self._add_file(crate, rel, child, mod_rs=True)
            added.append(p.stem)
        if added:
            self.notes.append(f"{sf.rel} includes generated code from OUT_DIR: every sibling file taken as "
                              f"a child module ({', '.join(added)}), as build.rs generates them")

    def collect_uses(self) -> None:
        """Module-level `use` declarations: alias -> absolute target path (None: outside the crate)."""
        for rel, sf in self.files.items():
            depths = brace_depths(sf)
            for s, e, mp in sf.spans:
                body_depth = depths[s] + (1 if s > 0 else 0)
                for m in USE_RE.finditer(sf.code, s, e):
                    if sf.cls[m.start()] != CODE or depths[m.start()] != body_depth or sf.module_at(m.start()) != mp:
                        continue
                    trees, _ = parse_tree(sf.code, m.end())
                    raw = sf.code[m.end():m.end() + 400]
                    alias_map = dict(re.findall(r"(" + IDENT + r")\s+as\s+(" + IDENT + r")", raw))
                    for segs in trees:
                        if not segs:
                            continue
                        target = self._absolute(sf.crate, mp, segs[0], segs[1:], relative_ok=True)
                        last = segs[-1]
                        if last == "self":
                            last = segs[-2] if len(segs) > 1 else last
                        alias = alias_map.get(last, last)
                        if alias in ("self", "super", "crate", "_"):
                            continue
                        self.modules[(sf.crate, mp)].uses.setdefault(alias, target)

    # -- resolution --------------------------------------------------------------------------------

    def _absolute(self, crate, modpath, anchor, segs, relative_ok=False):
        """Absolute segment list (from the crate root) of a path, or None if it leaves the crate."""
        if anchor in ("crate", "$crate"):
            cur: list[str] = []
        elif anchor == "self":
            cur = list(modpath)
        elif anchor == "super":
            if not modpath:
                return None
            cur = list(modpath[:-1])
        elif relative_ok and anchor in self.modules[(crate, modpath)].children:
            cur = list(modpath) + [anchor]
        else:
            return None
        for s in segs:
            if s == "super":
                if not cur:
                    return None
                cur.pop()
            elif s == "self":
                continue
            elif s == "crate":
                return None
            else:
                cur.append(s)
        return tuple(cur)

    def resolve(self, crate: str, absolute: tuple[str, ...], _depth: int = 0) -> tuple[str, tuple[str, ...], bool]:
        """(file, module, whole path is a module) for the longest module prefix of an absolute path.

        A segment that is neither a child module nor an exported macro is looked up among the module's
        `use` names: when it names a module (`pub use crate::a::b;`), resolution continues there;
        when it names an item, it stops at the module that imports it (that file references the
        item's own file, so file-level circles are unchanged)."""
        cur: tuple[str, ...] = ()
        for seg in absolute:
            mod = self.modules[(crate, cur)]
            if seg in mod.children:
                cur = mod.children[seg]
                continue
            if not cur and seg in self.macros.get(crate, {}):
                return self.macros[crate][seg], cur, False
            tgt = mod.uses.get(seg)
            if tgt is not None and _depth < 8:
                _, m, whole = self.resolve(crate, tgt, _depth + 1)
                if whole:
                    cur = m
                    continue
            return mod.file, cur, False
        return self.modules[(crate, cur)].file, cur, True

    # -- the graph ---------------------------------------------------------------------------------

    def edges(self) -> dict[str, dict[str, tuple[int, str]]]:
        """file -> {file it depends on -> (line, path text) of the first reference}."""
        lib = "lib" if "lib" in self.roots else None
        graph: dict[str, dict[str, tuple[int, str]]] = {rel: {} for rel in self.files}
        for rel, sf in self.files.items():
            extra = (self.crate_name,) if (lib and sf.crate != lib) else ()
            refs = find_paths(sf.code, extra) + find_paths(sf.comment, extra)
            # module-level `use x::..` where x is a child module (uniform paths) also references x
            for m in USE_RE.finditer(sf.code):
                if sf.cls[m.start()] != CODE:
                    continue
                mp = sf.module_at(m.start())
                trees, _ = parse_tree(sf.code, m.end())
                for segs in trees:
                    if segs and segs[0] in self.modules[(sf.crate, mp)].children:
                        refs.append((m.start(), "@" + segs[0], segs[1:]))
            for off, anchor, segs in sorted(refs, key=lambda r: r[0]):
                mp = sf.module_at(off)
                crate = sf.crate
                if anchor == "$crate" or anchor == self.crate_name:
                    crate = lib or crate
                    absolute = self._absolute(crate, (), "crate", segs)
                    shown = f"{anchor}::" + "::".join(segs)
                    shown = shown.removesuffix("::self")
                elif anchor.startswith("@"):
                    absolute = self._absolute(crate, mp, anchor[1:], segs, relative_ok=True)
                    shown = "use " + "::".join([anchor[1:]] + segs)
                else:
                    absolute = self._absolute(crate, mp, anchor, segs)
                    shown = (f"{anchor}::" + "::".join(segs)).removesuffix("::self")
                if absolute is None:
                    continue
                target, _, _ = self.resolve(crate, absolute)
                if target == rel:
                    continue
                graph[rel].setdefault(target, (sf.line_of(off), shown))
        return graph


def tarjan(graph: dict[str, dict[str, object]]) -> list[list[str]]:
    """Strongly connected components (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, {})))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(sorted(comp))
    return comps


# --------------------------------------------------------------------------------------------------
# Measurements.
# --------------------------------------------------------------------------------------------------


def crate_name(root: Path) -> str:
    try:
        import tomllib

        data = tomllib.loads((root / "Cargo.toml").read_text())
        name = data.get("lib", {}).get("name") or data["package"]["name"]
        return name.replace("-", "_")
    except Exception:
        return "crate_under_test"


def build_crate(root: Path) -> Crate:
    c = Crate(root, crate_name(root))
    if (root / "src/lib.rs").is_file():
        c.add_root("lib", "src/lib.rs")
    bins = (["src/main.rs"] if (root / "src/main.rs").is_file() else []) + sorted(
        p.relative_to(root).as_posix() for p in (root / "src/bin").glob("*.rs")) if (root / "src").is_dir() else []
    for b in bins:
        if b not in c.files:
            c.add_root("bin:" + b, b)
    c.collect_uses()
    return c


def rooms(root: Path) -> dict:
    files = sorted(
        [p for p in (root / "src").rglob("*.rs")] + [p for p in (root / "systems").glob("*.rs")]
        if (root / "systems").is_dir() else list((root / "src").rglob("*.rs")))
    lines = {p.relative_to(root).as_posix(): len(p.read_text(encoding="utf-8", errors="replace").splitlines())
             for p in files}
    largest = max(lines.items(), key=lambda kv: (kv[1], kv[0])) if lines else (None, 0)
    src_total = sum(v for k, v in lines.items() if k.startswith("src/"))
    return {
        "count": len(lines),
        "count_src": sum(1 for k in lines if k.startswith("src/")),
        "count_systems": sum(1 for k in lines if k.startswith("systems/")),
        "lines_per_file": dict(sorted(lines.items(), key=lambda kv: (-kv[1], kv[0]))),
        "largest": {"file": largest[0], "lines": largest[1]},
        "total_lines_src": src_total,
        "total_lines_systems": sum(v for k, v in lines.items() if k.startswith("systems/")),
        "over_500": [{"file": k, "lines": v} for k, v in sorted(lines.items(), key=lambda kv: (-kv[1], kv[0]))
                     if v > BIG_FILE_LINES],
    }


def circles(root: Path) -> dict:
    c = build_crate(root)
    graph = c.edges()
    comps = [comp for comp in tarjan(graph) if len(comp) > 1]
    comps.sort(key=lambda comp: (-len(comp), comp))
    detail = []
    for comp in comps:
        members = set(comp)
        inner = [{"from": a, "to": b, "line": graph[a][b][0], "path": graph[a][b][1]}
                 for a in comp for b in sorted(graph[a]) if b in members]
        detail.append({"files": comp, "edges": inner})
    in_tree = set(c.files)
    all_rs = {p.relative_to(root).as_posix() for p in (root / "src").rglob("*.rs")}
    if (root / "systems").is_dir():
        all_rs |= {p.relative_to(root).as_posix() for p in (root / "systems").glob("*.rs")}
    return {
        "count": len(comps),
        "files_involved": len({f for comp in comps for f in comp}),
        "components": detail,
        "edges": sum(len(v) for v in graph.values()),
        "graph": {k: sorted(v) for k, v in sorted(graph.items())},
        "outside_module_tree": sorted(all_rs - in_tree),
        "notes": c.notes,
    }


DUP_HEADER_RE = re.compile(r"^\s*(\d+)\s+pairs?\b", re.M)
DUP_ROW_RE = re.compile(r"^\s*D\d+\s+\S+:\d+-\d+\s+~\s+\S+:\d+-\d+", re.M)
DUP_MORE_RE = re.compile(r"\(\+(\d+)\s+more\s+pairs?\)")


def parse_duplicates(out: str) -> dict:
    rows = DUP_ROW_RE.findall(out)
    more = sum(int(x) for x in DUP_MORE_RE.findall(out))
    head = DUP_HEADER_RE.search(out)
    if head:
        pairs = int(head.group(1))
        source = "header"
    elif re.search(r"^\s*no duplicates", out, re.M):
        pairs, source = 0, "header"
    else:
        pairs, source = len(rows) + more, "rows"
    shape = re.search(r"\((\d+)\s+by shape alone(?:,\s*(\d+)\s+of those marked boilerplate)?", out)
    row_lines = [ln.strip() for ln in out.splitlines() if DUP_ROW_RE.match(ln)]
    return {
        "pairs": pairs,
        "counted_from": source,
        "rows_listed": len(rows),
        "by_shape_alone": int(shape.group(1)) if shape else None,
        "boilerplate": int(shape.group(2)) if shape and shape.group(2) else None,
        "identical": (pairs - int(shape.group(1))) if shape else None,
        "header": out.splitlines()[0].strip() if out.strip() else "",
        "incomplete": [ln.strip() for ln in out.splitlines() if ln.strip().startswith("incomplete:")],
        "rows": row_lines,
    }


def duplicates(root: Path) -> dict:
    try:
        proc = subprocess.run(["duplicates", "--most", "200"], cwd=root, capture_output=True, text=True,
                              timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"pairs": None, "error": f"`duplicates --most 200` did not run: {e}"}
    res = parse_duplicates(proc.stdout)
    res["command"] = "duplicates --most 200"
    return res


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def git_state(root: Path) -> dict:
    status = _git(root, "status", "--porcelain", "--", "src", "systems")
    return {"commit": _git(root, "rev-parse", "--short", "HEAD").strip() or "unknown",
            "source": "working tree",
            "changed_files_src_systems": [ln[3:] for ln in status.splitlines() if ln.strip()]}


def measure(root: Path) -> dict:
    return {"git": git_state(root), "rooms": rooms(root), "circles": circles(root), "duplicates": duplicates(root)}


def measure_rev(root: Path, rev: str) -> dict:
    """Measures a committed revision: `git archive REV` unpacked into a temporary folder (the working
    tree is not touched), so that a number can be reproduced while src/ is being edited."""
    commit = _git(root, "rev-parse", "--short", rev + "^{commit}").strip()
    if not commit:
        raise SystemExit(f"house.py: `{rev}` is not a commit")
    tar = subprocess.run(["git", "archive", "--format=tar", commit], cwd=root, capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory(prefix="house-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.extractall(tmp, filter="data")
        r = {"git": {"commit": commit, "source": f"git archive {commit}", "changed_files_src_systems": []},
             "rooms": rooms(Path(tmp)), "circles": circles(Path(tmp)), "duplicates": duplicates(Path(tmp))}
    return r


def markdown(r: dict, title: str | None) -> str:
    g, ro, ci, du = r["git"], r["rooms"], r["circles"], r["duplicates"]
    out = [f"## {title or 'House (commit ' + g['commit'] + ')'}", ""]
    changed = g["changed_files_src_systems"]
    if g.get("source", "working tree") != "working tree":
        out.append(f"Measured on commit `{g['commit']}` as committed (`{g['source']}`).")
    else:
        out.append(f"Measured on the working tree at commit `{g['commit']}`"
                   + (f", with {len(changed)} uncommitted change(s) under src/ and systems/: "
                      + ", ".join(f"`{c}`" for c in changed) if changed else ", clean under src/ and systems/")
                   + ".")
    out += ["", "| measure | value |", "|---|---|",
            f"| rooms (`.rs` files in src/ and systems/) | {ro['count']} ({ro['count_src']} in src/, "
            f"{ro['count_systems']} in systems/) |",
            f"| total lines in src/ | {ro['total_lines_src']} (systems/: {ro['total_lines_systems']}) |",
            f"| largest room | `{ro['largest']['file']}` ({ro['largest']['lines']} lines) |",
            f"| rooms over {BIG_FILE_LINES} lines | {len(ro['over_500'])} |",
            f"| import circles (SCCs of more than one file) | {ci['count']} |",
            f"| files in an import circle | {ci['files_involved']} |",
            f"| duplicated blocks (`duplicates --most 200` pairs) | "
            f"{du['pairs'] if du.get('pairs') is not None else 'n/a'} |", ""]
    out += ["### Rooms", "", "| file | lines |", "|---|---:|"]
    out += [f"| `{f}` | {n}{' **>500**' if n > BIG_FILE_LINES else ''} |" for f, n in ro["lines_per_file"].items()]
    out += ["", f"Over {BIG_FILE_LINES} lines: " + (", ".join(f"`{x['file']}` ({x['lines']})" for x in ro["over_500"])
                                                   or "none") + ".", ""]
    out += ["### Import circles", ""]
    out.append(f"{ci['edges']} file-to-file edges; {ci['count']} circle(s) with {ci['files_involved']} files.")
    out.append("")
    for n, comp in enumerate(ci["components"], 1):
        out.append(f"{n}. {len(comp['files'])} files: " + ", ".join(f"`{f}`" for f in comp["files"]))
        for e in comp["edges"]:
            out.append(f"   - `{e['from']}` → `{e['to']}` (line {e['line']}: `{e['path']}`)")
    if not ci["components"]:
        out.append("No circles.")
    if ci["outside_module_tree"]:
        out += ["", "Not reached from src/lib.rs or a binary root: "
                + ", ".join(f"`{f}`" for f in ci["outside_module_tree"]) + "."]
    if ci["notes"]:
        out += [""] + [f"Note: {n}" for n in ci["notes"]]
    out += ["", "### Duplicated blocks", ""]
    if du.get("pairs") is None:
        out.append(du.get("error", "`duplicates` gave no count."))
    else:
        out.append(f"`duplicates --most 200` lists **{du['pairs']}** pairs of places sharing 6 or more lines"
                   + (f" ({du['identical']} with identical runs, {du['by_shape_alone']} by shape alone, "
                      f"{du['boilerplate']} of those marked boilerplate)" if du.get("by_shape_alone") is not None else "")
                   + f"; its header: `{du['header']}`.")
        if du["incomplete"]:
            out.append("Incomplete: " + "; ".join(du["incomplete"]))
        if du["rows"]:
            out += ["", "<details><summary>rows</summary>", "", "```"] + du["rows"] + ["```", "", "</details>"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# Self-test.
# --------------------------------------------------------------------------------------------------

FAKE = {
    "Cargo.toml": '[package]\nname = "fake-house"\nversion = "0.0.0"\nedition = "2021"\n',
    "src/lib.rs": "//! Fake crate; mentions crate::b::c only in prose on the root file.\n"
                  "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n"
                  '#[path = "../extra/e.rs"]\npub mod e;\n'
                  "pub use a::helper_a as root_helper;\n",
    # a -> b/c.rs through a doc link only
    "src/a.rs": "/// Calls into [`C`](crate::b::c::C) — the only reference to b/c.rs from here.\n"
                "pub fn helper_a() {}\n"
                "pub const S: &str = \"not paths: my_crate::d, Self::d, x::self::d\";\n",
    # b/mod.rs -> a.rs and b/c.rs through a group; must NOT become crate::c (src/c.rs)
    "src/b/mod.rs": "pub mod c;\nuse crate::{a, b::c};\npub fn helper_b() { let _ = (a::S, c::C); }\n",
    # b/c.rs -> b/mod.rs through an inline call via super::
    "src/b/c.rs": "pub struct C;\npub fn f() {\n    super::helper_b();\n}\n"
                  "#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test] fn t() { f(); }\n}\n",
    # src/c.rs references the cycle but is not referenced back (unless the group is expanded wrongly)
    "src/c.rs": "pub fn g() { crate::b::helper_b(); crate::root_helper(); }\n",
    # d.rs references a.rs through a re-exported item and is outside any cycle
    "src/d.rs": "// crate::b is mentioned in a comment (counts) but nothing points back\n"
                "pub fn h() { crate::e::k(); }\n",
    "extra/e.rs": "pub fn k() {}\n",
}


def self_test() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, text in FAKE.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        c = build_crate(root)
        g = c.edges()
        assert "src/b/c.rs" in g["src/a.rs"], f"doc link a -> b/c missing: {g['src/a.rs']}"
        assert "src/b/mod.rs" in g["src/b/c.rs"], f"inline super:: call c -> b missing: {g['src/b/c.rs']}"
        assert set(g["src/b/mod.rs"]) == {"src/a.rs", "src/b/c.rs"}, f"group expansion wrong: {g['src/b/mod.rs']}"
        assert g["src/c.rs"].keys() == {"src/b/mod.rs", "src/lib.rs"}, g["src/c.rs"]
        assert set(g["src/d.rs"]) == {"src/b/mod.rs", "extra/e.rs"}, f"#[path] module / comment: {g['src/d.rs']}"
        assert set(g["src/a.rs"]) == {"src/b/c.rs"}, f"my_crate::/Self::/x::self:: are not anchors: {g['src/a.rs']}"
        assert "src/a.rs" in g["src/lib.rs"], "lib.rs `pub use a::..` re-export references a.rs"
        comps = [x for x in tarjan(g) if len(x) > 1]
        assert comps == [["src/a.rs", "src/b/c.rs", "src/b/mod.rs"]], f"circles: {comps}"
        assert not any("src/c.rs" in x or "src/d.rs" in x or "src/lib.rs" in x for x in comps)
        # group parser details
        got = [(a, s) for _, a, s in find_paths("use crate::{a, b::{c, d as e}, f::*};")]
        assert got == [("crate", ["a"]), ("crate", ["b", "c"]), ("crate", ["b", "d"]), ("crate", ["f"])], got
        got = [(a, s) for _, a, s in find_paths("$crate::x::Y{..}; super::super::z(); Self::new(); my_self::q")]
        assert got == [("$crate", ["x", "Y"]), ("super", ["super", "z"])], got
    print("self-test passed: the cycle a.rs → b/c.rs → b/mod.rs → a.rs is found (doc link, inline super:: "
          "call, crate::{a, b::c} group); c.rs, d.rs and lib.rs are not in a circle")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print the measurements as JSON")
    ap.add_argument("--self-test", action="store_true", help="check the circle finder on a fake crate")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent), help="repository root")
    ap.add_argument("--rev", help="measure this commit (git archive into a temporary folder) instead of "
                    "the working tree")
    ap.add_argument("--title", help="heading of the Markdown report (default: House (commit <hash>))")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0
    r = measure_rev(Path(args.root), args.rev) if args.rev else measure(Path(args.root))
    if args.json:
        json.dump(r, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(markdown(r, args.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
