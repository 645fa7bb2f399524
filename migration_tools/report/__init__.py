"""The deployment report: one self-contained HTML page from a run's JSON report (on core only)."""
