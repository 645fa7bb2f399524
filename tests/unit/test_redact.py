"""core/redact.py: passwords never reach a log line, a report or an error message."""

import pytest

from migration_tools.core import redact as redact_module
from migration_tools.core.redact import MASK, redact, register_environment_secrets, register_secret


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("host=db password=hunter2 user=app", f"host=db password={MASK} user=app"),
        ("PGPASSWORD=hunter2 pg_dump -Fc", f"PGPASSWORD={MASK} pg_dump -Fc"),
        ("Password: hunter2", f"Password: {MASK}"),
        ("password = 'two words' port=5432", f"password = {MASK} port=5432"),
        ('passwd="two words" port=5432', f"passwd={MASK} port=5432"),
        ("SECRET=abc123", f"SECRET={MASK}"),
    ],
)
def test_password_assignments_are_masked(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://app:hunter2@db.example.com:5432/medguard",
         f"postgresql://app:{MASK}@db.example.com:5432/medguard"),
        ("could not connect to postgres://app:p:w@h/db", f"could not connect to postgres://app:{MASK}@h/db"),
    ],
)
def test_the_password_of_a_connection_url_is_masked(text, shown):
    assert redact(text) == shown


def test_text_without_secrets_is_unchanged():
    text = 'FATAL:  password authentication failed for user "app"; postgresql://app@h/db'
    assert redact(text) == text


def test_a_registered_secret_is_masked_wherever_it_appears():
    register_secret("Tr0ub4dor&3")
    assert redact("auth failed: Tr0ub4dor&3 rejected (Tr0ub4dor&3)") == (
        f"auth failed: {MASK} rejected ({MASK})"
    )


def test_the_longest_registered_secret_is_masked_first():
    register_secret("abc")
    register_secret("abcdef")
    assert redact("token abcdef") == f"token {MASK}"


@pytest.mark.parametrize("value", [None, "", "ab"])
def test_empty_and_very_short_values_are_not_registered(value):
    register_secret(value)
    assert not redact_module._SECRETS
    assert redact("ab cd") == "ab cd"


def test_the_environment_passwords_are_registered(monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", "from-db-env")
    monkeypatch.setenv("PGPASSWORD", "from-pg-env")
    register_environment_secrets()
    assert redact("tried from-db-env then from-pg-env") == f"tried {MASK} then {MASK}"
