"""Security audit trail."""
