"""Drift turned into failures: every command has help, and the README documents it."""

import subprocess
import sys
from pathlib import Path

import click

from migration_tools.cli.main import main_group
from migration_tools.cli.rollback import rollback_group

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_every_core_and_rollback_manager_command_has_help_and_is_in_the_readme():
    for group, runner in ((main_group, "migration_tools"), (rollback_group, "rollback_manager.py")):
        ctx = click.Context(group)
        names = group.list_commands(ctx)
        assert names, runner
        for name in names:
            command = group.get_command(ctx, name)
            assert command is not None and command.help, f"{runner} {name} has no help text"
            argv = ([sys.executable, "-m", "migration_tools"] if runner == "migration_tools"
                    else [sys.executable, str(REPO / "rollback_manager.py")])
            shown = subprocess.run([*argv, name, "--help"], capture_output=True, text=True, check=False,
                                   cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
            assert shown.returncode == 0, shown.stderr
            assert shown.stdout.startswith("Usage: "), shown.stdout
            assert f"`{name}" in README, f"README does not document {name}"


def test_every_shell_command_is_in_the_readme():
    listed = subprocess.run([str(REPO / "production_migrate.sh"), "help"], capture_output=True, text=True,
                            check=True).stdout
    names = [line.split()[0] for line in listed.splitlines() if line.startswith("  ")]
    assert "migrate" in names and "full-deploy" in names
    for name in names:
        assert f"`{name}" in README, f"README does not document {name}"
