"""The backup tiers without PostgreSQL: the settings keys, names, metadata rules, the directory
checksum (against coreutils' sha256sum) and how a full read is split over readers."""

import hashlib
import subprocess
from pathlib import Path

import pytest

from migration_tools.backup import inventory, metadata, tiers
from migration_tools.backup.metadata_rules import problem
from migration_tools.core.config import KitSettings, backup_tier
from migration_tools.core.errors import EXIT_USAGE, BadInput


def test_the_tier_defaults_to_custom_with_two_jobs():
    assert backup_tier({}) == ("custom", 2)
    settings = KitSettings.from_dict({"BACKUP_FORMAT": "directory", "BACKUP_JOBS": 4})
    assert (settings.backup_format, settings.backup_jobs) == ("directory", 4)


@pytest.mark.parametrize(
    ("raw", "error_id", "message"),
    [
        ({"BACKUP_FORMAT": "Directory"}, "settings-backup-format",
         "MIGRATION_KIT['BACKUP_FORMAT'] is 'Directory', not one of 'custom', 'directory', 'pgbackrest'"),
        ({"BACKUP_FORMAT": None}, "settings-backup-format",
         "MIGRATION_KIT['BACKUP_FORMAT'] is None, not one of 'custom', 'directory', 'pgbackrest'"),
        ({"BACKUP_JOBS": 0}, "settings-backup-jobs",
         "MIGRATION_KIT['BACKUP_JOBS'] is 0, not a whole number of at least 1"),
        ({"BACKUP_JOBS": 2.5}, "settings-backup-jobs",
         "MIGRATION_KIT['BACKUP_JOBS'] is 2.5, not a whole number of at least 1"),
        ({"BACKUP_JOBS": True}, "settings-backup-jobs",
         "MIGRATION_KIT['BACKUP_JOBS'] is True, not a whole number of at least 1"),
    ],
)
def test_a_bad_tier_setting_is_bad_input(raw, error_id, message):
    with pytest.raises(BadInput) as caught:
        KitSettings.from_dict(raw)
    assert (caught.value.error_id, caught.value.message, caught.value.exit_code) == (
        error_id, message, EXIT_USAGE)
    assert caught.value.hint.startswith("fix it in the settings module, then run ")


def test_directory_backups_are_named_like_files_with_dir():
    name = metadata.dump_name("medguard", "20261125_181500_2", "directory")
    assert name == "medguard_backup_20261125_181500_2.dir"
    assert metadata.is_dump_name(name) and metadata.format_of(Path(name)) == "directory"
    assert metadata.timestamp_of(Path(name)) == "20261125_181500_2"
    assert metadata.meta_path_for(Path(name)).name == "medguard_backup_20261125_181500_2.json"
    assert metadata.partial_path_for(Path(name)).name == f".{name}.partial"
    assert not metadata.is_dump_name("medguard_backup_20261125_181500.tar")


def test_the_metadata_name_must_match_its_format():
    base = {"format": "directory", "file": "m_backup_20261125_181500.sql"}
    raw = _raw() | base
    assert problem(raw) == (
        "file 'm_backup_20261125_181500.sql' does not end with .dir, as a directory backup does")
    assert problem(raw | {"file": "m_backup_20261125_181500.dir"}) == ""


def test_the_directory_checksum_is_sha256sum_of_its_files_in_name_order(tmp_path: Path):
    backup = tmp_path / "m_backup_20261125_181500.dir"
    backup.mkdir()
    files = (("toc.dat", b"PGDMP"), ("3041.dat.gz", b"a" * 5000), ("10.dat.gz", b"b"), ("9.dat.gz", b""))
    for name, data in files:
        (backup / name).write_bytes(data)
    (backup / "link.dat.gz").symlink_to(backup / "toc.dat")  # not a regular file: left out
    listing = subprocess.run(
        "find . -maxdepth 1 -type f -printf '%f\\0' | LC_ALL=C sort -z | xargs -0 sha256sum --",
        shell=True, cwd=backup, capture_output=True, check=True,
    ).stdout
    assert tiers.manifest(backup, jobs=3).encode() == listing
    assert [p.name for p in tiers.members(backup)] == ["10.dat.gz", "3041.dat.gz", "9.dat.gz", "toc.dat"]
    assert tiers.sha256_of(backup) == hashlib.sha256(listing).hexdigest()
    assert tiers.size_of(backup) == 5 + 5000 + 1
    assert tiers.present(backup) and not tiers.present(backup.with_suffix(".sql"))
    assert tiers.remove(backup) and not backup.exists() and not tiers.remove(backup)


def test_a_full_read_is_split_by_data_size_with_the_schema_in_the_first_part(tmp_path: Path):
    backup = tmp_path / "m_backup_20261125_181500.dir"
    backup.mkdir()
    for dump_id, size in (("3001", 900), ("3002", 500), ("3003", 450), ("3004", 10)):
        (backup / f"{dump_id}.dat.gz").write_bytes(b"x" * size)
    toc = ["215; 1259 16390 TABLE public a postgres", *(f"{i}; 0 1 TABLE DATA public t{i} postgres"
                                                      for i in ("3001", "3002", "3003", "3004"))]
    parts = tiers._split(backup, toc, 2)
    ids = [[line.split(";")[0] for line in part] for part in parts]
    assert ids == [["215", "3001", "3004"], ["3002", "3003"]]  # 910 and 950 bytes
    assert tiers._split(backup, toc[:1], 4) == [toc[:1]]


def test_a_directory_backups_metadata_names_the_directory(tmp_path: Path):
    backups = tmp_path / "backups"
    (backups / "m_backup_20261125_181500.dir").mkdir(parents=True)
    (backups / "m_backup_20261125_181500.json").write_text("{}")
    (backups / "m_backup_20261125_181501.json").write_text("{}")
    found = inventory.resolve("m_backup_20261125_181500.json", backups)
    assert found == (backups / "m_backup_20261125_181500.dir").resolve()
    assert sorted(p.name for p in inventory.dump_candidates(backups)) == [
        "m_backup_20261125_181500.dir", "m_backup_20261125_181501.sql"]


def _raw() -> dict:
    return {
        "format_version": 1, "tool": "migration_kit", "tool_version": "1",
        "created_at": "2026-11-25T18:15:00+00:00", "reason": "manual", "database": "d", "host": "h",
        "port": 5432, "user": "u", "server_version": "15.1",
        "server_version_num": 150001, "pg_dump_version": "15.1", "format": "custom", "compression": 9,
        "file": "m_backup_20261125_181500.sql", "size_bytes": 1, "sha256": "0" * 64, "toc_entries": 1,
        "applied_migrations": [], "row_counts": {}, "snapshot_consistent": True, "django_alias": "default",
        "kit_profile": "standard", "validated": {"full_read": True, "deep": False},
    }
