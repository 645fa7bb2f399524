"""backups/metadata.py: the metadata contract, file names and atomic writes (no PostgreSQL)."""

import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from migration_tools.backup import metadata
from migration_tools.backup.metadata import BackupMeta, from_dict, load
from migration_tools.core.errors import EXIT_USAGE, BadInput

DUMP = "medguard_backup_20261125_181500.sql"
HINT = "run python rollback_manager.py list-backups to see the valid backups"


def valid_raw(**changes):
    raw = {
        "format_version": 1,
        "tool": "migration_kit",
        "tool_version": "1.4.0",
        "created_at": "2026-11-25T18:15:00.123456+00:00",
        "reason": "pre-migrate",
        "database": "medguard_sa",
        "host": "localhost",
        "port": 5432,
        "user": "medguard_user",
        "server_version": "16.4",
        "server_version_num": 160004,
        "pg_dump_version": "16.4",
        "format": "custom",
        "compression": 9,
        "file": DUMP,
        "size_bytes": 123_456,
        "sha256": "0123456789abcdef" * 4,
        "toc_entries": 42,
        "applied_migrations": [["users", "0001_initial"], ["medications", "0001_initial"]],
        "row_counts": {"public.users_user": 3, "public.medications_doselog": 0},
        "snapshot_consistent": True,
        "django_alias": "default",
        "kit_profile": "standard",
        "validated": {"full_read": True, "deep": False},
    }
    raw.update(changes)
    return raw


def problem_of(raw):
    with pytest.raises(ValueError) as caught:
        from_dict(raw)
    return str(caught.value)


# -- from_dict: a well-formed dict ------------------------------------------------------------


def test_a_well_formed_dict_becomes_the_backup_meta_it_describes():
    meta = from_dict(valid_raw())
    assert meta.file == DUMP
    assert meta.port == 5432
    assert meta.applied_migrations == [("users", "0001_initial"), ("medications", "0001_initial")]
    assert meta.migration_count == 2
    assert meta.row_counts == {"public.users_user": 3, "public.medications_doselog": 0}
    assert meta.created == datetime(2026, 11, 25, 18, 15, 0, 123456, tzinfo=timezone.utc)
    assert meta.validated == {"full_read": True, "deep": False}


def test_keys_the_kit_does_not_know_are_ignored():
    assert from_dict(valid_raw(comment="taken before the v2 release")) == from_dict(valid_raw())


# -- from_dict: each kind of bad metadata, with its message ------------------------------------


@pytest.mark.parametrize("raw", [[], "text", 3, None])
def test_anything_but_an_object_is_refused(raw):
    assert problem_of(raw) == "the file does not hold a JSON object"


def test_missing_keys_are_all_named_in_the_contract_order():
    raw = valid_raw()
    del raw["sha256"], raw["port"]
    assert problem_of(raw) == "missing key(s): port, sha256"


@pytest.mark.parametrize(
    ("key", "value", "type_name"),
    [
        ("port", "5432", "str"),
        ("port", 5432.0, "float"),
        ("port", True, "bool"),  # bool is an int in Python, never in the metadata
        ("size_bytes", False, "bool"),
        ("format_version", True, "bool"),
        ("database", None, "NoneType"),
        ("snapshot_consistent", 1, "int"),
        ("applied_migrations", {"users": "0001_initial"}, "dict"),
        ("row_counts", [], "list"),
        ("validated", "yes", "str"),
    ],
)
def test_a_key_of_the_wrong_type_is_named_with_the_type_it_has(key, value, type_name):
    assert problem_of(valid_raw(**{key: value})) == f"key '{key}' has the wrong type ({type_name})"


def test_an_unsupported_format_version_is_refused():
    assert problem_of(valid_raw(format_version=2)) == "format_version 2 is not supported (this kit reads 1)"


def test_metadata_of_another_tool_is_refused():
    assert problem_of(valid_raw(tool="pgbackrest")) == "tool is 'pgbackrest', not 'migration_kit'"


def test_an_unknown_reason_is_refused_naming_the_known_ones():
    assert problem_of(valid_raw(reason="nightly")) == (
        "reason 'nightly' is not one of manual, pre-migrate, pre-rollback"
    )


def test_a_dump_format_other_than_custom_is_refused():
    assert problem_of(valid_raw(format="plain")) == "format 'plain' is not one of custom, directory"


@pytest.mark.parametrize(
    "sha",
    ["0123456789ABCDEF" * 4, "0123456789abcdef" * 4 + "0", "0123456789abcdef" * 3, "g" * 64, ""],
)
def test_a_sha256_that_is_not_64_lowercase_hex_digits_is_refused(sha):
    assert problem_of(valid_raw(sha256=sha)) == "sha256 is not 64 lowercase hex digits"


@pytest.mark.parametrize("changes", [{"size_bytes": -1}, {"toc_entries": -1}])
def test_negative_sizes_are_refused(changes):
    assert problem_of(valid_raw(**changes)) == "size_bytes and toc_entries must not be negative"


@pytest.mark.parametrize("name", [f"backups/{DUMP}", f"/srv/backups/{DUMP}", ""])
def test_file_must_be_a_bare_file_name(name):
    assert problem_of(valid_raw(file=name)) == f"file '{name}' must be a bare file name"


def test_created_at_without_utc_offset_is_refused():
    assert problem_of(valid_raw(created_at="2026-11-25T18:15:00")) == (
        "created_at '2026-11-25T18:15:00' has no UTC offset"
    )


def test_created_at_that_is_not_a_time_is_refused():
    assert problem_of(valid_raw(created_at="yesterday")) == "created_at 'yesterday' is not an ISO 8601 time"


@pytest.mark.parametrize(
    "pairs",
    [
        [["users"]],
        [["users", "0001_initial", "extra"]],
        [["users", 1]],
        ["users.0001_initial"],
        [{"app": "users", "name": "0001_initial"}],
    ],
)
def test_applied_migrations_must_be_app_name_pairs(pairs):
    assert problem_of(valid_raw(applied_migrations=pairs)) == (
        "applied_migrations must be a list of [app, name] pairs"
    )


@pytest.mark.parametrize("count", [-1, True, 1.5, "3", None])
def test_row_counts_must_be_non_negative_integers(count):
    assert problem_of(valid_raw(row_counts={"public.users_user": count})) == (
        "row_counts must map 'schema.table' to a non-negative integer"
    )


@pytest.mark.parametrize(
    "writes", [{"public.users_user": -1}, {"public.users_user": True}, ["public.users_user"]]
)
def test_write_counters_when_present_must_be_non_negative_integers(writes):
    assert problem_of(valid_raw(write_counters=writes)) == (
        "write_counters must map 'schema.table' to a non-negative integer"
    )


def test_write_counters_are_optional():
    assert from_dict(valid_raw()).write_counters == {}
    writes = {"public.users_user": 7}
    assert from_dict(valid_raw(write_counters=writes)).write_counters == writes


def test_validated_must_map_to_booleans():
    assert problem_of(valid_raw(validated={"full_read": 1})) == "validated must map check names to true/false"


# -- to_json and the checksum ----------------------------------------------------------------


def test_to_json_round_trips_and_records_the_checksum_of_its_content():
    meta = from_dict(valid_raw(database="médguard"))
    text = meta.to_json()
    assert text.endswith("}\n")
    parsed = json.loads(text)
    assert list(parsed) == sorted(parsed)
    assert parsed["metadata_sha256"] == metadata.content_checksum(meta.to_dict())
    assert parsed["database"] == "médguard"
    assert parsed["applied_migrations"] == [["users", "0001_initial"], ["medications", "0001_initial"]]
    assert from_dict(parsed) == meta


def test_the_checksum_ignores_its_own_key_and_changes_with_any_value():
    raw = valid_raw()
    checksum = metadata.content_checksum(raw)
    assert len(checksum) == 64
    assert metadata.content_checksum({**raw, "metadata_sha256": "anything"}) == checksum
    assert metadata.content_checksum(valid_raw(size_bytes=123_457)) != checksum


def test_a_dict_whose_checksum_no_longer_matches_is_refused():
    raw = json.loads(from_dict(valid_raw()).to_json())
    raw["row_counts"]["public.users_user"] = 4
    assert problem_of(raw) == "it was edited after the backup (metadata_sha256 does not match its content)"


def test_metadata_without_a_checksum_is_still_accepted():
    raw = valid_raw()
    assert "metadata_sha256" not in raw
    assert from_dict(raw).database == "medguard_sa"


# -- load --------------------------------------------------------------------------------------


def test_load_reads_what_write_wrote(tmp_path):
    meta = from_dict(valid_raw())
    path = tmp_path / "medguard_backup_20261125_181500.json"
    metadata.write(meta, path)
    assert load(path) == meta


def test_load_of_a_missing_file_says_a_dump_without_metadata_is_not_a_backup(tmp_path, monkeypatch):
    monkeypatch.setenv("PM_PROG", "rollback_manager.py")
    with pytest.raises(BadInput) as caught:
        load(tmp_path / "medguard_backup_20261125_181500.json")
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.line() == (
        "rollback_manager.py: metadata file medguard_backup_20261125_181500.json is missing "
        f"(a dump without metadata is not a backup); {HINT} [backup-metadata]"
    )


def test_load_of_a_file_that_is_not_json_names_the_parse_error(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{not json")
    with pytest.raises(BadInput) as caught:
        load(path)
    assert caught.value.error_id == "backup-metadata"
    assert caught.value.message == (
        "metadata file m.json is invalid: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    )
    assert caught.value.hint == HINT


def test_load_of_an_unreadable_path_says_why(tmp_path):
    (tmp_path / "m.json").mkdir()
    with pytest.raises(BadInput) as caught:
        load(tmp_path / "m.json")
    assert caught.value.message == "cannot read metadata file m.json: Is a directory"


def test_load_refuses_a_file_edited_after_the_backup(tmp_path):
    path = tmp_path / "medguard_backup_20261125_181500.json"
    path.write_text(from_dict(valid_raw()).to_json())
    edited = json.loads(path.read_text())
    edited["row_counts"]["public.users_user"] = 0  # hide rows, keep the old checksum
    path.write_text(json.dumps(edited, indent=2))
    with pytest.raises(BadInput) as caught:
        load(path)
    assert caught.value.message == (
        "metadata file medguard_backup_20261125_181500.json is invalid: it was edited after the backup "
        "(metadata_sha256 does not match its content)"
    )


def test_load_names_the_first_problem_of_bad_metadata(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(valid_raw(reason="nightly")))
    with pytest.raises(BadInput) as caught:
        load(path)
    assert caught.value.message == (
        "metadata file m.json is invalid: reason 'nightly' is not one of manual, pre-migrate, pre-rollback"
    )


# -- names -------------------------------------------------------------------------------------


def test_dump_name():
    assert metadata.dump_name("medguard", "20261125_181500") == DUMP
    assert metadata.dump_name("medguard", "20261125_181500_2") == "medguard_backup_20261125_181500_2.sql"


@pytest.mark.parametrize(
    ("path", "stamp"),
    [
        (Path(DUMP), "20261125_181500"),
        (Path("/srv/backups") / "medguard_backup_20261125_181500_2.sql", "20261125_181500_2"),
        ("my_backup_tool_backup_20261125_181500.sql", "20261125_181500"),  # the last marker counts
    ],
)
def test_timestamp_of(path, stamp):
    assert metadata.timestamp_of(path) == stamp


@pytest.mark.parametrize(
    "name", ["medguard_20261125_181500.sql", "medguard_backup_20261125_181500.json", f".{DUMP}"]
)
def test_timestamp_of_a_name_that_is_not_a_backup_is_bad_input(name, monkeypatch):
    monkeypatch.setenv("PM_PROG", "rollback_manager.py")
    with pytest.raises(BadInput) as caught:
        metadata.timestamp_of(Path("/srv/backups") / name)
    assert caught.value.line() == (
        f"rollback_manager.py: '{name}' is not a backup file name "
        f"(expected <prefix>_backup_<timestamp>.sql or .dir); {HINT} [backup-name]"
    )


def test_script_path_for_keeps_the_clash_suffix():
    assert metadata.script_path_for(
        Path("backups/medguard_backup_20261125_181500_2.sql"), Path("/srv/rollback_scripts")
    ) == Path("/srv/rollback_scripts/rollback_20261125_181500_2.sh")


def test_meta_path_for():
    assert metadata.meta_path_for(Path("backups") / DUMP) == Path(
        "backups/medguard_backup_20261125_181500.json"
    )


def test_partial_path_for_is_hidden_beside_the_final_file():
    assert metadata.partial_path_for(Path("/srv/backups") / DUMP) == Path(
        "/srv/backups/.medguard_backup_20261125_181500.sql.partial"
    )


@pytest.mark.parametrize(
    ("name", "partial"),
    [
        (".medguard_backup_20261125_181500.sql.partial", True),
        (".rollback_20261125_181500.sh.partial", True),
        ("medguard_backup_20261125_181500.sql.partial", False),
        (".medguard_backup_20261125_181500.sql", False),
        (DUMP, False),
    ],
)
def test_is_partial_name(name, partial):
    assert metadata.is_partial_name(name) is partial


@pytest.mark.parametrize(
    ("name", "dump"),
    [
        (DUMP, True),
        ("medguard_backup_20261125_181500_2.sql", True),
        ("medguard_backup_20261125_181500.json", False),
        (f".{DUMP}", False),
        (f".{DUMP}.partial", False),
        ("medguard_20261125_181500.sql", False),
    ],
)
def test_is_dump_name(name, dump):
    assert metadata.is_dump_name(name) is dump


# -- write_atomic ------------------------------------------------------------------------------


def test_write_atomic_writes_the_text_owner_only_and_leaves_no_partial_file(tmp_path):
    final = tmp_path / "m.json"
    metadata.write_atomic(final, "{}\n")
    assert final.read_text() == "{}\n"
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_write_atomic_replaces_a_readable_file_with_an_owner_only_one(tmp_path):
    final = tmp_path / "m.json"
    final.write_text("old")
    os.chmod(final, 0o644)
    metadata.write_atomic(final, "new")
    assert final.read_text() == "new"
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_write_atomic_gives_the_mode_asked_for(tmp_path):
    script = tmp_path / "rollback_20261125_181500.sh"
    metadata.write_atomic(script, "#!/bin/bash\n", mode=0o700)
    assert stat.S_IMODE(script.stat().st_mode) == 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rollback_20261125_181500.sh"]


def test_write_atomic_removes_its_partial_file_when_publishing_fails(tmp_path):
    final = tmp_path / "m.json"
    final.mkdir()  # the rename onto a directory fails after the partial file was written
    with pytest.raises(IsADirectoryError):
        metadata.write_atomic(final, "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
    assert final.is_dir()


def test_write_atomic_removes_its_partial_file_when_writing_fails(tmp_path):
    final = tmp_path / "m.json"
    with pytest.raises(UnicodeEncodeError):
        metadata.write_atomic(final, "half \ud800 written")
    assert list(tmp_path.iterdir()) == []


def test_backup_meta_defaults_are_those_of_a_kit_backup():
    optional = ("validated", "snapshot_consistent", "write_counters", "format", "compression",
                "tool_version", "tool", "format_version")
    required = {k: v for k, v in from_dict(valid_raw()).to_dict().items() if k not in optional}
    meta = BackupMeta(**required)
    assert (meta.format, meta.compression, meta.tool, meta.format_version) == (
        "custom", 9, "migration_kit", 1
    )
    assert meta.validated == {"full_read": True, "deep": False}
    assert meta.snapshot_consistent is True
    assert meta.tool_version == ""
