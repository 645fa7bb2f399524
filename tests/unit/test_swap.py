"""restore/swap.py undo_command(): the psql line a rollback prints to swap the old database back."""

import shlex
import subprocess

import pytest
from psycopg.conninfo import conninfo_to_dict

from migration_tools.core.djangoenv import ConnParams
from migration_tools.pg.databases import side_name
from migration_tools.restore.swap import restore_args, undo_command

STAMP = "20261125_181500_ab12"
HEAD = ["psql", "-h", "db.example.com", "-p", "5433", "-U", "medguard_user", "-d", "postgres",
        "-v", "ON_ERROR_STOP=1"]


def params(dbname):
    return ConnParams(dbname, "medguard_user", "db.example.com", 5433, "not-on-the-command-line")


def undo(dbname, maintenance_db="postgres"):
    aside = side_name(dbname, "pre_rollback", STAMP)
    return undo_command(params(dbname), dbname, aside, STAMP, maintenance_db)


def as_bash_runs_it(command):
    """The argv psql would get when the operator pastes the command into bash."""
    script = 'psql() { printf "%s\\0" psql "$@"; }\n' + command
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return result.stdout.split("\0")[:-1]


def statements(argv):
    assert argv[: len(HEAD)] == HEAD
    rest = argv[len(HEAD):]
    assert rest[0::2] == ["-c"] * (len(rest) // 2)
    return rest[1::2]


def test_undo_command_for_a_plain_name_is_readable():
    assert undo("medguard_sa") == (
        "psql -h db.example.com -p 5433 -U medguard_user -d postgres -v ON_ERROR_STOP=1 "
        '-c "ALTER DATABASE medguard_sa ALLOW_CONNECTIONS false" '
        "-c \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'medguard_sa'\" "
        '-c "ALTER DATABASE medguard_sa RENAME TO medguard_sa__rolled_back_20261125_181500_ab12" '
        '-c "ALTER DATABASE medguard_sa__pre_rollback_20261125_181500_ab12 RENAME TO medguard_sa"'
    )


def test_undo_command_quotes_a_name_with_a_quote_a_space_and_a_dollar():
    name = "o'brien db$HOME"
    argv = as_bash_runs_it(undo(name))
    assert statements(argv) == [
        "ALTER DATABASE \"o'brien db$HOME\" ALLOW_CONNECTIONS false",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'o''brien db$HOME'",
        f"ALTER DATABASE \"o'brien db$HOME\" RENAME TO \"o'brien db$HOME__rolled_back_{STAMP}\"",
        f"ALTER DATABASE \"o'brien db$HOME__pre_rollback_{STAMP}\" RENAME TO \"o'brien db$HOME\"",
    ]
    assert shlex.split(undo(name)) == argv


@pytest.mark.parametrize("name", ['say "hi"', "Medguard", "back`tick`", "bang!", "back\\slash"])
def test_undo_command_quotes_other_awkward_names(name):
    quoted = '"' + name.replace('"', '""') + '"'
    literal = "'" + name.replace("'", "''") + "'"
    argv = as_bash_runs_it(undo(name))
    assert statements(argv)[:2] == [
        f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS false",
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {literal}",
    ]


def test_undo_command_connects_to_the_maintenance_database_it_was_given():
    argv = as_bash_runs_it(undo("medguard_sa", maintenance_db="ops db"))
    assert argv[argv.index("-d") + 1] == "ops db"


def test_undo_command_never_shows_the_password():
    assert "not-on-the-command-line" not in undo("medguard_sa")


@pytest.mark.parametrize("name", ["user", "order", "default"])
def test_undo_command_quotes_a_name_that_is_a_reserved_word(name):
    # PostgreSQL rejects `ALTER DATABASE user ...` with a syntax error: reserved words need quotes.
    first, _, rename_rolled, rename_back = statements(as_bash_runs_it(undo(name)))
    assert first == f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'
    assert rename_rolled.startswith(f'ALTER DATABASE "{name}" RENAME TO ')
    assert rename_back.endswith(f' RENAME TO "{name}"')


def test_restore_args_restore_without_owners_unless_asked():
    assert restore_args("/srv/backups/m.sql", "medguard_sa__restore_x", keep_owner=False) == [
        "--exit-on-error", "--jobs=2", "--dbname=dbname=medguard_sa__restore_x", "--no-owner",
        "/srv/backups/m.sql",
    ]
    assert restore_args("m.sql", "medguard_sa", keep_owner=True, jobs=4) == [
        "--exit-on-error", "--jobs=4", "--dbname=dbname=medguard_sa", "m.sql",
    ]


@pytest.mark.parametrize("name", ["it's", "my db", "back\\slash"])
def test_restore_args_pass_an_awkward_database_name_as_a_conninfo_libpq_reads_back(name):
    dbname_arg = restore_args("m.sql", name, keep_owner=False)[2]
    assert dbname_arg.startswith("--dbname=")
    assert conninfo_to_dict(dbname_arg.removeprefix("--dbname=")) == {"dbname": name}
