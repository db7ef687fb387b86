"""Command-line interface: one module per command, each thin over the library.

Commands are imported lazily so ``s2l2a --help`` stays fast and one command's heavy
imports (dask, rasterio) do not slow down the others.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from s2l2a import __version__

# command name -> "module:attribute" (each module under s2l2a.cli owns one command or group)
COMMANDS: dict[str, str] = {
    "init": "s2l2a.cli.init:cmd",
    "plan": "s2l2a.cli.plan:cmd",
    "run": "s2l2a.cli.run:cmd",
    "status": "s2l2a.cli.status:cmd",
    "retry": "s2l2a.cli.retry:cmd",
    "worker": "s2l2a.cli.worker:cmd",
    "search": "s2l2a.cli.search:cmd",
    "fetch": "s2l2a.cli.fetch:cmd",
    "sen2cor": "s2l2a.cli.sen2cor:cmd",
    "dem": "s2l2a.cli.dem:cmd",
    "derive": "s2l2a.cli.derive:cmd",
    "cube": "s2l2a.cli.cube:cmd",
    "report": "s2l2a.cli.report:cmd",
    "stac": "s2l2a.cli.report:stac_cmd",
    "cluster": "s2l2a.cli.cluster:cmd",
    "selftest": "s2l2a.cli.selftest:cmd",
    "check": "s2l2a.cli.check:cmd",
    "config": "s2l2a.cli.config:cmd",
    "rebuild": "s2l2a.cli.rebuild:cmd",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        # a command whose module is not installed (optional part) is simply not listed
        return sorted(n for n, t in COMMANDS.items() if importlib.util.find_spec(t.split(":")[0]))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None or importlib.util.find_spec(target.split(":")[0]) is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="s2l2a")
def main() -> None:
    """Convert Sentinel-2 L1C products to L2A in batch: plan a campaign, run it, track it."""
