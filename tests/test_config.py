from pathlib import Path

import pytest

from migration_tools.core.config import REQUIRED_ENV_VARS, KitSettings, Paths, missing_env_vars, require_env
from migration_tools.core.errors import EXIT_USAGE, BadInput

FULL_ENV = {name: "x" for name in REQUIRED_ENV_VARS} | {"DB_PORT": "5432"}


def test_missing_env_vars_names_each_missing_variable_in_order():
    env = {name: "x" for name in REQUIRED_ENV_VARS}
    assert missing_env_vars(env) == []
    del env["DB_PASSWORD"]
    env["DB_HOST"] = ""
    assert missing_env_vars(env) == ["DB_PASSWORD", "DB_HOST"]


def test_require_env_is_the_one_rule_missing_variables_refused_with_exit_2(monkeypatch):
    monkeypatch.setenv("PM_PROG", "production_migrate.sh")
    require_env(FULL_ENV)
    with pytest.raises(BadInput) as caught:
        require_env({k: v for k, v in FULL_ENV.items() if k not in ("DJANGO_SETTINGS_MODULE", "DB_PORT")})
    assert caught.value.exit_code == EXIT_USAGE
    assert caught.value.line() == (
        "production_migrate.sh: missing environment variable(s): DJANGO_SETTINGS_MODULE DB_PORT; "
        "export them (see README, Configuration), then run production_migrate.sh status [env-missing]"
    )


@pytest.mark.parametrize("port", ["fivefour", "54 32", "-1", "0", "65536", "5432x", "٥٤٣٢"])
def test_require_env_refuses_a_db_port_that_is_not_a_port_number(monkeypatch, port: str):
    monkeypatch.setenv("PM_PROG", "production_migrate.sh")
    with pytest.raises(BadInput) as caught:
        require_env(FULL_ENV | {"DB_PORT": port})
    assert caught.value.line() == (
        f"production_migrate.sh: DB_PORT '{port}' is not a port number; fix DB_PORT, then run "
        "production_migrate.sh status [env-port]"
    )


@pytest.mark.parametrize("port", ["1", "5432", "65535"])
def test_require_env_accepts_every_port_number(port: str):
    require_env(FULL_ENV | {"DB_PORT": port})


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
