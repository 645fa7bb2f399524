import stat

from migration_tools.core import audit
from migration_tools.core.redact import MASK, redact, register_secret


def test_registered_secret_is_masked_anywhere_in_a_line():
    register_secret("s3cr3t-Value")
    assert redact("connect failed for s3cr3t-Value at host") == f"connect failed for {MASK} at host"


def test_password_assignments_and_uris_are_masked():
    assert "hunter2" not in redact("PGPASSWORD=hunter2 pg_dump")
    assert "hunter2" not in redact("password: 'hunter2'")
    assert redact("postgresql://u:hunter2@h/db") == f"postgresql://u:{MASK}@h/db"


def test_audit_log_is_owner_only_and_redacted(tmp_path):
    register_secret("TopSecretPw")
    log_path = tmp_path / "migration.log"
    logger = audit.setup(log_path, "status")
    logger.error("could not connect with password TopSecretPw")
    for handler in logger.handlers:
        handler.flush()
    text = log_path.read_text()
    assert "TopSecretPw" not in text
    assert "ERROR [status]" in text
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
