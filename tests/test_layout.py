"""The package layout: no import cycles, few flat modules, tinyml imports at module top.

Fast and static (``ast`` and ``tokenize`` only; nothing is imported, no TensorFlow needed).

* The import graph covers every module under ``tinyml/`` and ``codegen/`` (as ``tinyml.codegen``,
  the name it is installed under) and is built from ALL import statements, at module top and
  inside functions alike, restricted to tinyml's own modules.  ``from P import n`` is an edge to
  the module ``P.n`` when there is one, else to ``P``; an import of ``P.m`` is an edge to ``P.m``
  only (not to the package ``P`` that Python also initializes).  Imports made at run time through
  ``importlib`` are not statements and are not seen.
* At most ``MAX_FLAT`` ``.py`` files sit directly in ``tinyml/`` (``__init__.py`` counts): the
  rest lives in the subpackages that show the flow (graph, schedule, targets, tools, apps, train).
* A tinyml module imported inside a function (outside ``tinyml/cli.py``, whose per-command
  imports keep start-up fast) must defer an optional extra, and says which with a comment on
  the import statement's line (any line of a statement that spans several)::

      from tinyml.train.qat import qat_int8  # extra: train

  The marker is ``# extra: NAME`` where NAME is one of the extras in pyproject.toml's
  ``[project.optional-dependencies]`` (``reference``, ``train``, ...).  Any other tinyml import
  goes at module top.
"""

from __future__ import annotations

import ast
import re
import tokenize
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_FLAT = 8
LAZY_OK = {"tinyml/cli.py"}
_MARKER = re.compile(r"#\s*extra:\s*([A-Za-z0-9_.-]+)")


@dataclass(frozen=True)
class Edge:
    source: str  # module name
    target: str  # module name
    path: str  # file of the source, relative to the repo
    line: int
    end_line: int
    local: bool  # inside a function


def _modules() -> dict[str, Path]:
    """Module name -> file, for tinyml/ and codegen/ (as tinyml.codegen)."""
    found: dict[str, Path] = {}
    for top, prefix in (("tinyml", ("tinyml",)), ("codegen", ("tinyml", "codegen"))):
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO / top).with_suffix("")
            parts = prefix + rel.parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of dotted ``name`` that is a tinyml module."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def _edges(modules: dict[str, Path]) -> list[Edge]:
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = str(path.relative_to(REPO))
        package = module if _is_package(path) else module.rpartition(".")[0]

        def visit(node: ast.AST, local: bool) -> None:
            for child in ast.iter_child_nodes(node):
                inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [alias.name for alias in child.names]
                elif isinstance(child, ast.ImportFrom):
                    if child.level:
                        base_parts = package.split(".")
                        base_parts = base_parts[:len(base_parts) - (child.level - 1)]
                        base = ".".join(base_parts + ([child.module] if child.module else []))
                    else:
                        base = child.module or ""
                    targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                               for alias in child.names]
                for name in targets:
                    target = _resolve(name, modules)
                    if target is not None and target != module:
                        edges.append(Edge(module, target, rel, child.lineno, child.end_lineno or child.lineno,
                                          local))
                visit(child, inner)

        visit(tree, False)
    return edges


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {node: WHITE for node in graph}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt, WHITE) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt, WHITE) == WHITE:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            found = dfs(node)
            if found:
                return found
    return None


def _comments(path: Path) -> dict[int, str]:
    out: dict[int, str] = {}
    with open(path, "rb") as f:
        for tok in tokenize.tokenize(f.readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string
    return out


def _extras() -> set[str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["project"]["optional-dependencies"])


# ---------------------------------------------------------------------------


def test_graph_sees_local_and_top_level_imports() -> None:
    modules = _modules()
    assert {"tinyml", "tinyml.cli", "tinyml.codegen", "tinyml.codegen.lower", "tinyml.codegen.ops"} <= set(modules)
    edges = _edges(modules)
    cli = {(e.target, e.local) for e in edges if e.source == "tinyml.cli"}
    assert ("tinyml.errors", False) in cli  # at the top of cli.py
    assert any(local for target, local in cli if target.startswith("tinyml.tools.")), cli  # per command
    assert any(e.source.startswith("tinyml.codegen.ops.") and e.target == "tinyml.codegen.lower" for e in edges)


def test_find_cycle_names_it() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {m: set() for m in _modules()}
    where: dict[tuple[str, str], str] = {}
    for e in _edges(_modules()):
        graph[e.source].add(e.target)
        where.setdefault((e.source, e.target), f"{e.path}:{e.line}")
    cycle = _find_cycle(graph)
    assert cycle is None, ("import cycle: " + " -> ".join(cycle) + " ("
                           + ", ".join(where[(a, b)] for a, b in zip(cycle, cycle[1:])) + ")")


def test_few_flat_modules() -> None:
    flat = sorted(p.name for p in (REPO / "tinyml").glob("*.py"))
    assert len(flat) <= MAX_FLAT, (f"{len(flat)} modules directly in tinyml/ ({', '.join(flat)}); at most "
                                   f"{MAX_FLAT}: put the new one in the subpackage of its stage")


def test_tinyml_imports_at_module_top() -> None:
    extras = _extras()
    bad = []
    comments_of: dict[str, dict[int, str]] = {}
    for e in _edges(_modules()):
        if not e.local or e.path in LAZY_OK:
            continue
        comments = comments_of.setdefault(e.path, _comments(REPO / e.path))
        named = {m.group(1) for line in range(e.line, e.end_line + 1)
                 for m in [_MARKER.search(comments.get(line, ""))] if m}
        if not named & extras:
            bad.append(f"{e.path}:{e.line} imports {e.target} inside a function")
    assert not bad, ("tinyml imports belong at module top unless they defer an optional extra, marked "
                     f"'# extra: NAME' with NAME one of {sorted(extras)}:\n" + "\n".join(dict.fromkeys(bad)))


def test_every_python_package_is_installed() -> None:
    """pyproject.toml lists its packages by name: a new subpackage missing there is left out of `pip install .`
    (or installed only as data, without its byte code)."""
    with open(REPO / "pyproject.toml", "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    found = set()
    for prefix, root in ((("tinyml",), REPO / "tinyml"), (("tinyml", "codegen"), REPO / "codegen")):
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            if "codegen" not in parts:  # tinyml/codegen is a link to codegen/ in a checkout
                found.add(".".join(prefix + parts))
    assert sorted(found - listed) == []


# Private names one codegen module still takes from another; no new ones (make a shared helper public, as
# declare.portable_f32, which floats.py, exp.py and sequence.py declare their float kernels with).
PRIVATE_IMPORTS_KNOWN = {
    ("tinyml.codegen.ops.nonlinear", "tinyml.codegen.ops.elementwise", "_unary"),
    ("tinyml.codegen.ops.int16_upsample", "tinyml.codegen.ops.int16", "_range16"),
    ("tinyml.codegen.families_s16", "tinyml.codegen.families", "_consts"),
    ("tinyml.codegen.families_s16", "tinyml.codegen.families", "_pair"),
    ("tinyml.codegen.families_s16", "tinyml.codegen.families", "_per_output"),
    ("tinyml.codegen.families_s16", "tinyml.codegen.families", "_weights"),
}


def test_codegen_modules_share_public_helpers_only() -> None:
    modules = _modules()
    found = set()
    for module, path in modules.items():
        if not module.startswith("tinyml.codegen"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tinyml.codegen"):
                found |= {(module, node.module, a.name) for a in node.names if a.name.startswith("_")}
    assert found <= PRIVATE_IMPORTS_KNOWN, ("private names imported across codegen modules (make them public): "
                                            f"{sorted(found - PRIVATE_IMPORTS_KNOWN)}")
