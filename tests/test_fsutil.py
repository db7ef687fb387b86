"""Files appear complete or not at all: the one atomic write, its temporary names and its failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s2l2a.fsutil import atomic_path, temp_name, write_bytes_atomic, write_json_atomic, write_text_atomic


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writes_replace_whole_files_and_leave_nothing_behind(tmp_path: Path) -> None:
    f = tmp_path / "a.json"
    f.write_text("old")
    write_json_atomic(f, {"b": 1, "a": [1, 2]}, sort_keys=True)
    assert f.read_text() == json.dumps({"a": [1, 2], "b": 1}, indent=1)
    write_text_atomic(tmp_path / "t.txt", "é\n")
    assert (tmp_path / "t.txt").read_bytes() == "é\n".encode()
    write_bytes_atomic(tmp_path / "deep" / "er" / "b.bin", b"\0" * 3, mkdir=True)
    assert (tmp_path / "deep" / "er" / "b.bin").read_bytes() == b"\0\0\0"
    assert _leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path: Path) -> None:
    f = tmp_path / "keep.txt"
    f.write_text("old")
    with pytest.raises(TypeError):
        write_json_atomic(f, {"x": object()})   # fails before any file is made
    with pytest.raises(RuntimeError), atomic_path(f) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert f.read_text() == "old" and _leftovers(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        write_text_atomic(tmp_path / "missing" / "x.txt", "no parent, no mkdir")


def test_temporary_names_are_hidden_siblings_and_never_shared(tmp_path: Path) -> None:
    names = {temp_name(tmp_path / "r.json") for _ in range(200)}
    assert len(names) == 200
    assert all(n.parent == tmp_path and n.name.startswith(".r.json.") and n.name.endswith(".tmp") for n in names)
    assert temp_name(tmp_path / "t", ".npz").name.endswith(".tmp.npz")


@pytest.mark.parametrize("name", ["it's", "a\nb", "0", "nan", "sp ace", "..x"])
def test_odd_file_names(tmp_path: Path, name: str) -> None:
    write_text_atomic(tmp_path / name, name)
    assert (tmp_path / name).read_text() == name
    assert [n for n in _leftovers(tmp_path) if n != name] == []
