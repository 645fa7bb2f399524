"""The shell scripts' gate to the core: help, usage and argument checks, from the click commands.

production_migrate.sh and production_migrate_enhanced.sh hold no option list of their own: they
ask this module, which parses with the click commands themselves (no command callback runs). It
imports click and the command modules but never Django, so it answers before anything starts.

    python -m migration_tools.cli.gate help [COMMAND]
        the command list, or one command's help, on stdout; exit 0 (2 for an unknown COMMAND)
    python -m migration_tools.cli.gate check [COMMAND [ARG ...]]
        ARGs parsed by COMMAND's click command, then the required variables (config.require_env):
        silent, exit 0 when all is well; else the kit's one line (and the usage) on stderr, exit 2.
        A refusal over the variables is written to migration.log; usage errors are not (nothing ran).
    python -m migration_tools.cli.gate run COMMAND [ARG ...]
        `check`, then, all being well, this process becomes the core (`python -m migration_tools
        COMMAND ARG ...`): the scripts' way when they have nothing of their own to say, one Python
        start-up instead of two
    python -m migration_tools.cli.gate log LEVEL COMMAND MESSAGE
        one line in migration.log (LEVEL: INFO, WARNING or ERROR), for what bash itself refuses

Every line names the script (PM_PROG, see errors.prog_name). `usage_failure` is also how the
click CLIs (runner.run_group) word click's own usage errors.
"""

from __future__ import annotations

import difflib
import logging
import runpy
import sys
from collections.abc import Sequence

try:
    import click
except ImportError:  # the kit's packages are not installed for this Python: say so in one line
    from migration_tools.core.deps import require

    require()
    raise

from migration_tools.cli.main import main_group
from migration_tools.cli.usage_errors import did_you_mean, what_is_wrong
from migration_tools.core import audit
from migration_tools.core.config import Paths, require_env
from migration_tools.core.errors import EXIT_OK, EXIT_USAGE, KitError, prog_name
from migration_tools.core.redact import redact, register_environment_secrets

HELP_SUMMARY = "Show this help, or the help of one command."
LEVELS = {"INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
USAGE_WIDTH = 78  # as click wraps its help
GATE_USAGE = "help [COMMAND] | check [COMMAND [ARG ...]] | run COMMAND [ARG ...] | log LEVEL COMMAND MESSAGE"


# -- the scripts' commands, as the click group defines them --------------------------------------


def _root() -> click.Context:
    """The context the scripts' commands run in: named after the script, `-h` and `--help`."""
    return click.Context(main_group, info_name=prog_name(), **main_group.context_settings)


def _names() -> list[str]:
    return main_group.list_commands(_root())


def _context(name: str) -> click.Context | None:
    """A context for the script's command `name` (its path is `PROG name`), None if unknown."""
    root = _root()
    command = main_group.get_command(root, name)
    return None if command is None else click.Context(command, info_name=name, parent=root)


def synopsis(ctx: click.Context) -> list[str]:
    """The command's options spelled out, e.g. `[--database ALIAS]`, `[--deep]`."""
    pieces = []
    for param in ctx.command.params:
        if isinstance(param, click.Option):
            if param.hidden:
                continue
            name = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
            if param.is_flag:
                text = " | ".join([name, *param.secondary_opts])
            else:
                text = f"{name} {_metavar(param, ctx)}"
            pieces.append(text if param.required else f"[{text}]")
        else:
            pieces.append(_metavar(param, ctx))
    return pieces


def _metavar(param: click.Parameter, ctx: click.Context) -> str:
    try:
        return param.make_metavar(ctx)
    except TypeError:  # click < 8.2 takes no context
        return param.make_metavar()  # type: ignore[call-arg]


def usage(ctx: click.Context, width: int = USAGE_WIDTH) -> str:
    """`Usage: PROG COMMAND [--option VALUE] ...`, wrapped between the options, never inside one."""
    head = f"Usage: {ctx.command_path}"
    lines, line, filled = [], head, False
    for piece in synopsis(ctx):
        if filled and len(line) + 1 + len(piece) > width:
            lines.append(line)
            line = " " * len(head)
        line, filled = f"{line} {piece}", True
    return "\n".join([*lines, line])


def command_help(ctx: click.Context) -> str:
    formatter = ctx.make_formatter()
    ctx.command.format_help_text(ctx, formatter)
    ctx.command.format_options(ctx, formatter)
    ctx.command.format_epilog(ctx, formatter)
    body = formatter.getvalue().strip("\n")
    return f"{usage(ctx)}\n\n{body}"


def command_list() -> str:
    """What `PROG help` prints: every command with the first sentence of its help."""
    prog, root = prog_name(), _root()
    rows = [(name, main_group.get_command(root, name)) for name in _names()]
    lines = [f"Usage: {prog} COMMAND [options]", "", "Commands:"]
    lines += [f"  {name:<18} {command.get_short_help_str(limit=200)}" for name, command in rows if command]
    lines += [f"  {'help':<18} {HELP_SUMMARY}", ""]
    lines.append(f"Run {prog} COMMAND --help for the options of one command.")
    return "\n".join(lines)


def _refuse_command(what: str) -> int:
    prog = prog_name()
    click.echo(f"{prog}: {what}; run '{prog} help' for the commands [usage]", err=True)
    click.echo(command_list(), err=True)
    return EXIT_USAGE


def _unknown(name: str) -> int:
    guesses = did_you_mean(difflib.get_close_matches(name, _names()))
    return _refuse_command(f"unknown command '{name}'{guesses}")


# -- the actions ---------------------------------------------------------------------------------


def show_help(argv: Sequence[str]) -> int:
    if not argv:
        click.echo(command_list())
        return EXIT_OK
    if len(argv) > 1:
        return _refuse_command(f"unexpected argument '{argv[1]}' after help {argv[0]}")
    name = argv[0]
    if name in ("help", "--help", "-h"):
        click.echo(f"Usage: {prog_name()} help [COMMAND]\n\n  {HELP_SUMMARY}")
        return EXIT_OK
    ctx = _context(name)
    if ctx is None:
        return _unknown(name)
    click.echo(command_help(ctx))
    return EXIT_OK


def check(argv: Sequence[str]) -> int:
    code = _check(argv)
    return EXIT_OK if code is None else code


def _check(argv: Sequence[str]) -> int | None:
    """None when the command may run; else the exit code: a refusal, or click's answer to --help."""
    if not argv or not argv[0]:
        return _refuse_command("no command given")
    name, args = argv[0], list(argv[1:])
    ctx = _context(name)
    if ctx is None:
        return _unknown(name)
    try:
        ctx.command.make_context(name, args, parent=ctx.parent)
    except click.exceptions.Exit as exc:  # -h/--help: click printed the help (the scripts ask `help`)
        return int(exc.exit_code)
    except click.UsageError as exc:
        prog = prog_name()
        what = redact(what_is_wrong(exc))
        click.echo(f"{prog}: {what}; run '{prog} {name} --help' for the options [usage]", err=True)
        click.echo(usage(ctx), err=True)
        return EXIT_USAGE
    try:
        require_env()
    except KitError as exc:
        said = f"{exc.message}; {exc.hint}" if exc.hint else exc.message
        _log(name, logging.ERROR, f"refused: {said} [{exc.error_id}]")  # what the operator saw
        exc.show()
        return exc.exit_code
    return None


def check_and_run(argv: Sequence[str]) -> int:
    """`check`; then run the command as `python -m migration_tools` would, in this process."""
    code = _check(argv)
    if code is not None:
        return code
    sys.argv[1:] = argv
    runpy.run_module("migration_tools", run_name="__main__", alter_sys=True)  # exits with the core's code
    return EXIT_OK


def write_log(argv: Sequence[str]) -> int:
    if len(argv) != 3 or argv[0] not in LEVELS:
        click.echo(f"{prog_name()}: gate log takes LEVEL COMMAND MESSAGE, LEVEL one of "
                   f"{', '.join(LEVELS)}; fix the call [usage]", err=True)
        return EXIT_USAGE
    level, command, message = argv
    _log(command, LEVELS[level], message)
    return EXIT_OK


def _log(command: str, level: int, message: str) -> None:
    """One line in migration.log through the audit module, its only writer; never fatal."""
    path = Paths.from_env().migration_log
    try:
        audit.record(path, command, level, message)
    except OSError as exc:
        click.echo(f"{prog_name()}: warning: cannot write {path}: {exc.strerror}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    register_environment_secrets()  # whatever is echoed or logged is redacted
    actions = {"help": show_help, "check": check, "run": check_and_run, "log": write_log}
    action = actions.get(args[0]) if args else None
    if action is None:
        click.echo(f"migration_tools.cli.gate: expected {GATE_USAGE}; "
                   "see the module's docstring [usage]", err=True)
        return EXIT_USAGE
    return action(args[1:])


if __name__ == "__main__":
    sys.exit(main())
