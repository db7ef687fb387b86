"""No upward imports: each package of s2l2a imports only from its own layer and the layers below.

The order (docs/architecture.md, "Layers") keeps every concept in one home and lets a lower
package be read, tested and reused without the ones above it: Sentinel-2 formats know nothing of
campaigns, processors nothing of engines, outputs nothing of the campaign store. Every import
counts, also one inside a function (a lazy import is still a dependency); only imports under
``if TYPE_CHECKING:`` are left out, as they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "s2l2a"

#: low to high; a module belongs to the layer of its longest matching prefix
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # vocabulary and small services every layer may use
    ("base", ("s2l2a", "s2l2a.errors", "s2l2a.units", "s2l2a.fsutil", "s2l2a.clock", "s2l2a.jit", "s2l2a.lazy", "s2l2a.defaults",
              "s2l2a.diskspace", "s2l2a.registry",
              # the failure classes are campaign vocabulary that processors and Sen2Cor's
              # classifier speak; a leaf module that imports nothing
              "s2l2a.campaign.failures")),
    ("formats", ("s2l2a.safe",)),                  # Sentinel-2 products, names, bands, SCL classes
    ("transfer", ("s2l2a.archive", "s2l2a.acquire")),  # safe unpacking, search and download
    ("sen2cor", ("s2l2a.sen2cor",)),               # an installed Sen2Cor: find, run, classify, GIPP
    ("auxdata", ("s2l2a.auxdata",)),               # DEM in the layout each Sen2Cor version reads
    ("processors", ("s2l2a.processors",)),
    ("outputs", ("s2l2a.outputs",)),               # one product's derived files, STAC item, report page
    ("campaign", ("s2l2a.campaign",)),             # store, settings, layout, planning, one job
    ("engines", ("s2l2a.engines",)),               # where jobs run: local, Dask, schedulers
    # what drives engines: a run, the cluster bookkeeping, the preflight check of a run
    ("runs", ("s2l2a.campaign.run", "s2l2a.campaign.cluster", "s2l2a.campaign.check")),
    ("api", ("s2l2a.api",)),
    ("cli", ("s2l2a.cli", "s2l2a.__main__")),
]

#: upward imports that exist today, each with why and who removes it; a test fails when one of
#: them is gone, so this list only shrinks
KNOWN: dict[tuple[str, str], str] = {
    ("s2l2a.registry", "s2l2a.engines.scheduler"):
        "registry checks that a scheduler plug-in subclasses Scheduler; the base class could move down",
}


def _layer_of(module: str) -> int:
    best, best_len = -1, -1
    for i, (_name, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best < 0:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")
    return best


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                skip.update(id(n) for n in ast.walk(sub))
    return skip


def imports() -> list[tuple[str, str, int]]:
    """(importer, imported s2l2a module, line) for every import in src/s2l2a."""
    modules = {_module_name(f): f for f in SRC.rglob("*.py")}
    out = []
    for name, path in sorted(modules.items()):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # "from s2l2a.safe import scl" imports the submodule; "from s2l2a import __version__" the package
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in dict.fromkeys(targets):
                if t.split(".")[0] == "s2l2a" and t != name:
                    out.append((name, t, node.lineno))
    return out


def upward() -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for importer, target, line in imports():
        if _layer_of(target) > _layer_of(importer):
            found.setdefault((importer, target), line)
    return found


def test_every_module_has_a_layer() -> None:
    for f in SRC.rglob("*.py"):
        _layer_of(_module_name(f))


def test_no_new_upward_imports() -> None:
    new = {k: line for k, line in upward().items() if k not in KNOWN}
    lines = [f"{a} (line {line}, layer {LAYERS[_layer_of(a)][0]}) imports {b} (layer {LAYERS[_layer_of(b)][0]})"
             for (a, b), line in sorted(new.items())]
    assert not lines, "upward imports:\n" + "\n".join(lines)


def test_known_exceptions_still_exist() -> None:
    gone = sorted(set(KNOWN) - set(upward()))
    assert not gone, f"no longer imported upward, remove from KNOWN: {gone}"


@pytest.mark.parametrize(("low", "high"), [("s2l2a.outputs.report", "s2l2a.campaign.store"),
                                           ("s2l2a.sen2cor.locate", "s2l2a.processors"),
                                           ("s2l2a.safe.acquisition", "s2l2a.campaign.dedup")])
def test_the_checker_sees_an_upward_import(low: str, high: str) -> None:
    assert _layer_of(high) > _layer_of(low)


def test_lazy_imports_count_and_type_checking_ones_do_not() -> None:
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import s2l2a.cli\n"
                     "def f():\n    import s2l2a.api\n")
    skip = _type_checking_nodes(tree)
    seen = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) and id(n) not in skip for a in n.names]
    assert seen == ["s2l2a.api"]
