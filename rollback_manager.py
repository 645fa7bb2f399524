#!/usr/bin/env python3
"""python rollback_manager.py COMMAND: list, validate, restore and clean up backups."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from migration_tools.deps import require

require()

from migration_tools.rollback_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
