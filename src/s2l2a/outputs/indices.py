"""Spectral indices as formulas over band names, parsed with :mod:`ast` and evaluated without ``eval``.

A user formula comes from a command line or a campaign file that others may edit, so it is never
executed as Python: it is parsed into a syntax tree and only numbers, band names and the operators
``+ - * / **`` (and unary ``+ -``) are accepted; anything else (calls, attributes, subscripts,
comparisons, names that are not bands) is refused with a one-line error before any pixel is read.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from s2l2a.errors import S2L2AError
from s2l2a.safe.bands import BANDS

#: built-in indices (B08 at 10 m; at 20/60 m B08 is averaged from its 10 m image, see derive.py)
INDICES: dict[str, str] = {
    "ndvi": "(B08 - B04) / (B08 + B04)",
    "ndwi": "(B03 - B08) / (B03 + B08)",
    "nbr": "(B08 - B12) / (B08 + B12)",
    "evi": "2.5 * (B08 - B04) / (B08 + 6 * B04 - 7.5 * B02 + 1)",
}

#: the built-in indices that are normalised differences, (a - b) / (a + b): defined in [-1, 1]
NORMALISED_DIFFERENCES = ("ndvi", "ndwi", "nbr")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_BINOPS: dict[type[ast.operator], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[np.ndarray], np.ndarray]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_MAX_LEN = 500


class FormulaError(S2L2AError):
    """A formula that is not plain arithmetic over band names and numbers."""


def _band_name(name: str) -> str | None:
    """Canonical band id for a formula name ("B8A", "b08", "B8" -> "B08"), or None."""
    n = name.upper()
    if n in BANDS:
        return n
    m = re.fullmatch(r"B(\d{1,2})", n)
    if m and f"B{int(m.group(1)):02d}" in BANDS:
        return f"B{int(m.group(1)):02d}"
    return None


@dataclass(frozen=True)
class Formula:
    """A checked formula: its name, its text and the bands it reads."""

    name: str
    expression: str
    bands: tuple[str, ...]
    _tree: ast.Expression
    #: values outside are no data (NaN): a normalised difference lies in [-1, 1] unless a band's
    #: reflectance is negative or both are about 0, where it says nothing (-144 seen in shadow)
    valid_range: tuple[float, float] | None = None

    @classmethod
    def parse(cls, name: str, expression: str) -> Formula:
        """Parse and check ``expression``; raise FormulaError naming the first forbidden element."""
        if not _NAME.match(name):
            raise FormulaError(f"formula name {name!r}: use letters, digits and '_' (at most 32, letter first)")
        if len(expression) > _MAX_LEN:
            raise FormulaError(f"formula {name}: longer than {_MAX_LEN} characters")
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except SyntaxError as e:
            raise FormulaError(f"formula {name}: not an arithmetic expression ({e.msg})") from None
        bands: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Expression | ast.operator | ast.unaryop | ast.Load):
                continue
            if isinstance(node, ast.BinOp):
                if type(node.op) not in _BINOPS:
                    raise FormulaError(f"formula {name}: operator {type(node.op).__name__} is not allowed")
                continue
            if isinstance(node, ast.UnaryOp):
                if type(node.op) not in _UNARY:
                    raise FormulaError(f"formula {name}: operator {type(node.op).__name__} is not allowed")
                continue
            if isinstance(node, ast.Constant):
                if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                    raise FormulaError(f"formula {name}: only numbers are allowed as constants, not {node.value!r}")
                continue
            if isinstance(node, ast.Name):
                band = _band_name(node.id)
                if band is None:
                    raise FormulaError(f"formula {name}: {node.id!r} is not a band name (B01..B12, B8A)")
                bands.append(band)
                continue
            raise FormulaError(f"formula {name}: {type(node).__name__} is not allowed "
                               "(only numbers, band names and + - * / **)")
        if not bands:
            raise FormulaError(f"formula {name}: uses no band")
        return cls(name=name, expression=expression.strip(), bands=tuple(dict.fromkeys(bands)), _tree=tree)

    def evaluate(self, reflectance: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate over reflectance arrays (float); division by zero gives NaN/inf, not an error."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(_evaluate(self._tree, reflectance, self.name), dtype=np.float64)
            if self.valid_range is not None:
                lo, hi = self.valid_range
                out = np.where((out >= lo) & (out <= hi), out, np.nan)
        return out


def _evaluate(node: ast.AST, refl: Mapping[str, np.ndarray], name: str) -> np.ndarray | float:
    """Walk the checked tree. A plain function on purpose: a recursive closure would form a reference
    cycle holding every strip's reflectance arrays until the garbage collector happened to run."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, refl, name)
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_evaluate(node.left, refl, name),  # type: ignore[arg-type]
                                      _evaluate(node.right, refl, name))  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, refl, name))  # type: ignore[arg-type]
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return refl[_band_name(node.id) or node.id]
    raise FormulaError(f"formula {name}: unexpected {type(node).__name__}")  # parse() refused it


def parse_formula_option(text: str) -> Formula:
    """``"name=expression"`` as given to ``--formula``."""
    name, sep, expr = text.partition("=")
    if not sep or not expr.strip():
        raise FormulaError(f"--formula {text!r}: expected NAME=EXPRESSION, e.g. \"ndre=(B8A-B05)/(B8A+B05)\"")
    return Formula.parse(name.strip(), expr)


def builtin_index(name: str) -> Formula:
    """One of :data:`INDICES` by (case-insensitive) name."""
    key = name.strip().lower()
    if key not in INDICES:
        raise FormulaError(f"unknown index {name!r}; known: {', '.join(INDICES)} (or use --formula)")
    f = Formula.parse(key, INDICES[key])
    return replace(f, valid_range=(-1.0, 1.0)) if key in NORMALISED_DIFFERENCES else f
