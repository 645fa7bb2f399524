#!/usr/bin/env python3
"""python rollback_manager.py COMMAND: list, validate, restore and clean up backups."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Error lines name the command the operator typed.
os.environ.setdefault("PM_PROG", "rollback_manager.py")

from migration_tools.core.deps import require

require()

from migration_tools.cli.rollback import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
