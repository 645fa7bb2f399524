"""core/config.py: the MIGRATION_KIT dict with its defaults, and where the artefacts go."""

from migration_tools.core.config import DEFAULT_RETENTION, KitSettings, Paths


def test_no_migration_kit_dict_means_the_defaults():
    for raw in (None, {}):
        settings = KitSettings.from_dict(raw)
        assert settings == KitSettings()
        assert settings.backup_prefix == "django"
        assert settings.critical_models == ()
        assert settings.duplicate_keys == {}
        assert settings.retention == DEFAULT_RETENTION == 7


def test_the_readme_example_is_read_as_written():
    settings = KitSettings.from_dict(
        {
            "BACKUP_PREFIX": "medguard",
            "CRITICAL_MODELS": ["medications.Medication", "users.User"],
            "DUPLICATE_KEYS": {"users.User": ["email"], "medications.Medication": ["name", "strength"]},
            "BACKUP_RETENTION": 14,
        }
    )
    assert settings.backup_prefix == "medguard"
    assert settings.critical_models == ("medications.Medication", "users.User")
    assert settings.duplicate_keys == {
        "users.User": ("email",),
        "medications.Medication": ("name", "strength"),
    }
    assert settings.retention == 14


def test_empty_values_fall_back_to_the_defaults():
    settings = KitSettings.from_dict(
        {"BACKUP_PREFIX": "", "CRITICAL_MODELS": None, "DUPLICATE_KEYS": None, "BACKUP_RETENTION": None}
    )
    assert settings == KitSettings()


def test_a_retention_given_as_text_is_a_number():
    assert KitSettings.from_dict({"BACKUP_RETENTION": "3"}).retention == 3


def test_paths_are_under_pm_workdir(monkeypatch, tmp_path):
    monkeypatch.setenv("PM_WORKDIR", str(tmp_path / "work" / ".." / "work"))
    (tmp_path / "work").mkdir()
    paths = Paths.from_env()
    root = tmp_path.resolve() / "work"
    assert paths.root == root
    assert paths.backups == root / "backups"
    assert paths.monitoring == root / "migration_monitoring"
    assert paths.rollback_scripts == root / "rollback_scripts"
    assert paths.migration_log == root / "migration.log"
    assert paths.rollback_log == root / "rollback.log"


def test_paths_without_pm_workdir_are_under_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("PM_WORKDIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Paths.from_env().backups == tmp_path.resolve() / "backups"


def test_an_empty_pm_workdir_means_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("PM_WORKDIR", "")
    monkeypatch.chdir(tmp_path)
    assert Paths.from_env().root == tmp_path.resolve()


def test_a_relative_pm_workdir_is_taken_from_the_current_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("PM_WORKDIR", "deploy")
    monkeypatch.chdir(tmp_path)
    assert Paths.from_env().rollback_log == tmp_path.resolve() / "deploy" / "rollback.log"
