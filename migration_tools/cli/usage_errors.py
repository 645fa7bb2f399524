"""click's usage errors in the kit's words: `prog: what is wrong; run '... --help' for the options [usage]`.

The scripts' gate and both CLIs' runner word them the same way.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence

import click

from migration_tools.core.errors import prog_name
from migration_tools.core.redact import redact

_EXTRA = re.compile(r"Got unexpected extra (arguments?) \((.*)\)")


def what_is_wrong(exc: click.UsageError) -> str:
    """The first half of the kit's line: the option-parsing errors the scripts used to word
    themselves keep that wording; any other keeps click's text."""
    if isinstance(exc, click.NoSuchOption):
        return f"unknown option '{exc.option_name}'{did_you_mean(exc.possibilities)}"
    if isinstance(exc, click.BadOptionUsage) and "requires an argument" in exc.message:
        return f"option '{exc.option_name}' needs a value"
    extra = _EXTRA.fullmatch(exc.message)
    if extra:
        return f"unexpected {extra.group(1)} '{extra.group(2)}'"
    command = getattr(exc, "command_name", None)  # click.NoSuchCommand (click 8.4+)
    if command is not None:
        return f"unknown command '{command}'{did_you_mean(getattr(exc, 'possibilities', None))}"
    return exc.format_message().rstrip(".")


def usage_failure(exc: click.UsageError, group: click.Group | None = None, args: Sequence[str] = ()) -> str:
    """`prog: what is wrong; run '... --help' for the options [usage]`, then click's usage line.

    click raises some parsing errors (an option missing its value) without a context; `group` and
    `args` (what the group was given) then tell which command it was.
    """
    ctx = exc.ctx or (_invoked_context(group, args) if group is not None else None)
    what = redact(what_is_wrong(exc))
    if ctx is None:
        return f"{prog_name()}: {what}; run it with --help for the usage [usage]"
    listing = "the commands" if isinstance(ctx.command, click.Group) else "the options"
    return f"{prog_name()}: {what}; run '{ctx.command_path} --help' for {listing} [usage]\n{ctx.get_usage()}"


def _invoked_context(group: click.Group, args: Sequence[str]) -> click.Context:
    """The context of the command named in `args`, as click names the program (`python -m pkg`)."""
    main = sys.modules.get("__main__")
    package = getattr(main, "__package__", None)
    if package:
        module = os.path.splitext(os.path.basename(sys.argv[0]))[0]
        invoked = f"python -m {package if module == '__main__' else f'{package}.{module}'}"
    else:
        invoked = os.path.basename(sys.argv[0])
    root = click.Context(group, info_name=invoked, **group.context_settings)
    name = next((arg for arg in args if not arg.startswith("-")), "")
    command = group.get_command(root, name) if name else None
    return root if command is None else click.Context(command, info_name=name, parent=root)


def did_you_mean(possibilities: Iterable[str] | None) -> str:
    names = [f"'{p}'" for p in possibilities or ()]
    return f" (did you mean {' or '.join(names)}?)" if names else ""
