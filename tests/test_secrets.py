"""The password never reaches a command line, a log, a report, backup metadata or a generated script."""

import os
import shutil
import stat
from pathlib import Path

from tests.support import Database


def argv_recorder(bin_dir: Path, record: Path, *tools: str) -> str:
    """Wrappers first on PATH that append their argv (what `ps` shows) to `record`, then run the real tool."""
    bin_dir.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} must be installed for this test"
        wrapper = bin_dir / tool
        wrapper.write_text(
            "#!/usr/bin/env bash\n"
            f"printf '%s\\n' \"$0 $*\" >> '{record}'\n"
            f"exec '{real}' \"$@\"\n"
        )
        wrapper.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_no_password_on_any_client_tool_command_line(demo_db: Database, tmp_path: Path):
    record = tmp_path / "argv.txt"
    path = argv_recorder(tmp_path / "bin", record, "pg_dump", "pg_restore", "psql")
    backup = demo_db.script("backup", env={"PATH": path})
    assert backup.returncode == 0, backup.stderr
    dump = next((demo_db.workdir / "backups").glob("*.sql"))
    rollback = demo_db.rollback_manager("rollback", dump.name, "--yes", env={"PATH": path})
    assert rollback.returncode == 0, rollback.stderr
    lines = record.read_text().splitlines()
    assert any("pg_dump" in line for line in lines) and any("pg_restore" in line for line in lines)
    assert not [line for line in lines if demo_db.server.password in line]
    with demo_db.connect("postgres") as conn:
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{demo_db.name}__%",)
        ).fetchall():
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_no_password_in_any_file_the_kit_writes_and_files_are_owner_only(demo_db: Database):
    assert demo_db.script("backup").returncode == 0
    migrated = demo_db.run([str(Path(__file__).resolve().parents[1] / "production_migrate_enhanced.sh"),
                            "migrate", "--interval", "0.1"])
    assert migrated.returncode == 0, migrated.stderr
    wrong = demo_db.script("status", env={"DB_PASSWORD": "Not-The-Real-Pw-123"})
    assert wrong.returncode == 2
    written = [p for p in demo_db.workdir.rglob("*") if p.is_file()]
    names = {p.relative_to(demo_db.workdir).parts[0] for p in written}
    assert {"backups", "rollback_scripts", "migration_monitoring", "migration.log"} <= names
    for path in written:
        text = path.read_bytes()
        assert demo_db.server.password.encode() not in text, path
        assert b"Not-The-Real-Pw-123" not in text, path
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    for directory in ("backups", "rollback_scripts", "migration_monitoring"):
        assert stat.S_IMODE((demo_db.workdir / directory).stat().st_mode) == 0o700
