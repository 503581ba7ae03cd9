"""Check that `ernte ARGS` is a command line the CLI accepts, without running it (for the
commands that Dockerfile, docker-compose.yml and README.md ship)."""

from __future__ import annotations

import click

from harvester.cli.main import main


def assert_cli_accepts(args: list[str]) -> None:
    """Parse `ernte ARGS` the way click does before running it: unknown commands or options
    fail here, nothing is executed."""
    group: click.Group = main
    context = group.make_context("ernte", list(args))
    while True:
        name, command, rest = group.resolve_command(context, _unparsed(context))
        assert command is not None, f"ernte has no command {name!r}"
        context = command.make_context(name or "", list(rest), parent=context)
        if not isinstance(command, click.Group) or not _unparsed(context):
            return
        group = command


def _unparsed(context: click.Context) -> list[str]:
    """The tokens a group left for its subcommand (click 8.2+ keeps the command name apart)."""
    return [*getattr(context, "_protected_args", []), *context.args]
