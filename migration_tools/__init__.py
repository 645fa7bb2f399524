"""Production-safe migration kit for Django on PostgreSQL."""

__version__ = "0.1.0"
