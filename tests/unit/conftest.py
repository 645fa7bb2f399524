"""The fast tier: pure functions only. No fixture here or in these tests starts PostgreSQL."""

import pytest

from migration_tools.core import redact


@pytest.fixture(autouse=True)
def isolated_process_state(monkeypatch):
    """Secrets registered by one test must not mask text in another; PM_PROG comes from the test."""
    monkeypatch.setattr(redact, "_SECRETS", set())
    monkeypatch.delenv("PM_PROG", raising=False)
