"""What to keep after a product was converted and derived: the only code in outputs/ that deletes.

Rules (each re-checked from disk at the moment of deleting, never trusted from an earlier step):

- ``all``: keep the L2A and the derived outputs.
- ``derived``: delete the L2A only when its derived folder verifies (manifest, every COG valid,
  every file naming this L2A as its source).
- ``l2a``: keep the L2A; nothing is derived (``derive`` refuses this policy as contradictory).
- The L1C is deleted only when asked (``delete_l1c=True``) and only after the L2A verified
  (:func:`s2l2a.safe.verify_l2a`), before the L2A could be deleted under ``derived``.

Anything that does not open as the expected product level is never deleted.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from s2l2a.errors import S2L2AError


class KeepPolicy(StrEnum):
    ALL = "all"
    DERIVED = "derived"
    L2A = "l2a"


class KeepError(S2L2AError):
    """A deletion was refused because what it depends on did not verify."""


@dataclass
class KeepOutcome:
    """What :func:`apply_keep` removed and what it kept, with the reason for each kept item."""

    removed: list[Path] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # path -> why


def _remove_tree(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)


def apply_keep(policy: KeepPolicy | str, l2a_path: Path | str, derived_dir: Path | str | None = None, *,
               l1c_path: Path | str | None = None, delete_l1c: bool = False) -> KeepOutcome:
    """Apply ``policy`` to one product; raise KeepError (deleting nothing more) when a check fails."""
    from s2l2a.outputs.derive import DeriveError, verify_derived
    from s2l2a.safe import open_l1c, open_l2a, verify_l2a

    policy = KeepPolicy(policy)
    l2a = Path(l2a_path)
    out = KeepOutcome()
    if delete_l1c and l1c_path is not None:
        l1c = Path(l1c_path)
        if l1c.exists():
            try:
                verify_l2a(l2a)
            except S2L2AError as e:
                raise KeepError(f"L1C kept: its L2A does not verify ({e})", l1c) from None
            open_l1c(l1c, require_bands=False)  # raises unless it really is an L1C product
            _remove_tree(l1c)
            out.removed.append(l1c)
    elif l1c_path is not None:
        out.kept[str(l1c_path)] = "L1C is deleted only with --delete-l1c"
    if policy is not KeepPolicy.DERIVED:
        out.kept[str(l2a)] = f"keep policy {policy.value}"
        return out
    if derived_dir is None:
        raise KeepError("L2A kept: no derived outputs were written", l2a)
    try:
        res = verify_derived(derived_dir)
    except DeriveError as e:
        raise KeepError(f"L2A kept: derived outputs do not verify ({e})", l2a) from None
    product = open_l2a(l2a, require_bands=False)
    if res.product != product.name.name:
        raise KeepError(f"L2A kept: the derived folder belongs to {res.product}", l2a)
    _remove_tree(l2a)
    out.removed.append(l2a)
    return out


@dataclass
class ProductDeriveOutcome:
    """One product's pass through derive + keep (what ``derive`` prints and the run path records)."""

    l2a: Path
    derived_dir: Path | None = None
    removed: list[Path] = field(default_factory=list)
    skipped: str | None = None   # why nothing was done
    error: str | None = None     # one line; the L2A (and L1C) are then untouched


def derive_then_keep(l2a_path: Path | str, out_dir: Path | str, spec: Any, policy: KeepPolicy | str = "all", *,
                     l1c_path: Path | str | None = None, delete_l1c: bool = False, threads: int = 1
                     ) -> ProductDeriveOutcome:
    """Derive one product, then apply the keep policy; never raises for a product's failure.

    This is the function the ``run`` path calls per product as soon as its L2A is verified.
    """
    from s2l2a.outputs.derive import derive_product

    policy = KeepPolicy(policy)
    out = ProductDeriveOutcome(l2a=Path(l2a_path))
    try:
        if policy is KeepPolicy.L2A:
            out.skipped = "keep policy l2a: nothing derived"
        else:
            res = derive_product(l2a_path, out_dir, spec, threads=threads)
            out.derived_dir = Path(res.out_dir)
        kept = apply_keep(policy, l2a_path, out.derived_dir, l1c_path=l1c_path, delete_l1c=delete_l1c)
        out.removed = kept.removed
    except S2L2AError as e:
        out.error = str(e)
    except OSError as e:
        out.error = f"{l2a_path}: {e}"
    return out
