from pathlib import Path

from migration_tools.core.config import REQUIRED_ENV_VARS, KitSettings, Paths, missing_env_vars


def test_missing_env_vars_names_each_missing_variable_in_order():
    env = {name: "x" for name in REQUIRED_ENV_VARS}
    assert missing_env_vars(env) == []
    del env["DB_PASSWORD"]
    env["DB_HOST"] = ""
    assert missing_env_vars(env) == ["DB_PASSWORD", "DB_HOST"]


def test_kit_settings_defaults_when_the_project_configures_nothing():
    settings = KitSettings.from_dict(None)
    assert settings.backup_prefix == "django"
    assert settings.critical_models == ()
    assert settings.retention == 7


def test_kit_settings_reads_the_projects_dict():
    settings = KitSettings.from_dict(
        {
            "BACKUP_PREFIX": "medguard",
            "CRITICAL_MODELS": ["a.B"],
            "DUPLICATE_KEYS": {"a.B": ["x", "y"]},
            "BACKUP_RETENTION": 3,
        }
    )
    assert settings.backup_prefix == "medguard"
    assert settings.critical_models == ("a.B",)
    assert settings.duplicate_keys == {"a.B": ("x", "y")}
    assert settings.retention == 3


def test_paths_default_to_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("PM_WORKDIR", raising=False)
    monkeypatch.chdir(tmp_path)
    paths = Paths.from_env()
    assert paths.backups == tmp_path / "backups"
    assert paths.migration_log == tmp_path / "migration.log"
    assert paths.rollback_scripts == Path(tmp_path, "rollback_scripts")
