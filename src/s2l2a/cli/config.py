"""``s2l2a config DIR [KEY [VALUE]]``: show or change one setting of a campaign, with init's checks.

Without it the only way to change ``--processor`` or ``--sen2cor`` after ``init`` was editing the
TOML by hand, and ``init --force`` rewrites every setting. Keys are ``section.key`` as in
s2l2a.toml (``campaign.processor``, ``resources.memory_mb``, ``sen2cor.l2a_process``); the keys of
[campaign] and [resources] may be given bare (``memory_mb``). Values are typed by key; unknown keys
of free-form sections take TOML syntax (``20``, ``true``, ``"text"``), else text.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import click

from s2l2a.campaign.layout import SETTINGS_FILE
from s2l2a.campaign.settings import setting_key
from s2l2a.cli._common import campaign_argument, user_errors
from s2l2a.errors import ConfigError
from s2l2a.registry import processor_names
from s2l2a.units import parse_duration

# key -> kind of value: "str" text, "int", "duration" (seconds or 90m/3h), "path" (made absolute:
# typed relative to where the user is), "dir" (kept as typed: relative to the campaign folder); the
# other sections' keys come from their declarations (s2l2a.registry.Section: see _kinds)
KINDS: dict[str, str] = {
    "campaign.name": "str", "campaign.processor": "str", "campaign.output_dir": "dir",
    "campaign.scratch_dir": "dir",
    "resources.memory_mb": "int", "resources.cores_per_job": "int", "resources.timeout_s": "duration",
    "resources.max_attempts": "int", "resources.workers": "int", "resources.min_free_mb": "int",
}


@click.command("config")
@campaign_argument
@click.argument("key", required=False)
@click.argument("value", required=False)
@click.option("--unset", is_flag=True, help="Remove KEY (a [campaign]/[resources] key returns to its default).")
@user_errors
def cmd(campaign: Path, key: str | None, value: str | None, unset: bool) -> None:
    """Show all settings of DIR, one KEY, or set KEY to VALUE (checked like 'init' before it is saved).

    \b
    s2l2a config DIR                                  every setting, as section.key = value
    s2l2a config DIR memory_mb                        one setting
    s2l2a config DIR campaign.processor sen2cor       change one
    s2l2a config DIR sen2cor.l2a_process /opt/Sen2Cor-02.11.00-Linux64
    s2l2a config DIR sen2cor.gipp --unset
    """
    from s2l2a.api import Campaign

    c = Campaign.open(campaign)
    if key is None:
        if unset:
            raise click.UsageError("--unset needs a KEY")
        for name, v in c.config().items():
            click.echo(f"{name} = {_show(v)}")
        return
    path = setting_key(key)
    name = ".".join(path)
    if value is None and not unset:
        current = _current(c, name)
        if current is None and name not in _kinds():
            raise ConfigError(f"{name} is not set", campaign / SETTINGS_FILE)
        click.echo(_show(current))
        return
    if value is not None and unset:
        raise click.UsageError("give either VALUE or --unset")
    before = _current(c, name)
    after = c.config(name, unset=True) if unset else c.config(name, _parse(name, value))  # type: ignore[arg-type]
    click.echo(f"{name} = {_show(after)}" + (f"  (was {_show(before)})" if before is not None else ""))
    if path[0] in processor_names() and name not in _kinds() and path[:2] != ("sen2cor", "parameters"):
        click.echo(f"Warning: {name} is not a setting s2l2a knows; it is stored, check its spelling", err=True)
    if name in ("resources.memory_mb", "resources.cores_per_job"):
        for note in c.settings.above_machine():
            click.echo(f"Warning: {note}; fine for bigger cluster nodes, but a local run refuses it", err=True)


def _current(c: Any, name: str) -> Any:
    """The value of setting ``name`` (None: unset)."""
    try:
        return c.config(name)
    except ConfigError:
        return None


def _kinds() -> dict[str, str]:
    """KINDS and every declared section's keys ([sen2cor], [builtin], a plug-in's, [cluster], [derive] ...)."""
    from s2l2a import registry

    out = dict(KINDS)
    for name in registry.section_names():
        try:
            declared = registry.section(name)
        except ConfigError:  # a plug-in that cannot be loaded here: its keys are typed as TOML
            continue
        for setting in declared.settings if declared else ():
            out.setdefault(f"{name}.{setting.key}", setting.kind)
    return out


def _parse(name: str, text: str) -> Any:
    """The typed value of ``text`` for setting ``name`` (one-line ConfigError when it is not one)."""
    kind = _kinds().get(name)
    if kind in ("str", "dir"):
        return text
    if kind == "path":
        return os.path.abspath(Path(text).expanduser()) if text else text  # '..' folded, links kept
    if kind == "int":
        try:
            return int(text.strip())
        except ValueError:
            raise ConfigError(f"{name}: {text!r} is not a whole number") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{name}: {text!r} is not a number") from None
    if kind == "duration":
        seconds = parse_duration(text, name)
        return int(seconds) if float(seconds).is_integer() else seconds
    try:  # unknown key of a free-form section: TOML syntax, else plain text
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _show(value: Any) -> str:
    """A value the way s2l2a.toml writes it (strings quoted, so ``"20"`` and ``20`` differ)."""
    import tomli_w

    if value is None:
        return "(unset)"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).strip().removeprefix("v = ")
