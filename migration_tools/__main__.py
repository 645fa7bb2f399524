import importlib.util
import sys

_missing = [m for m in ("click", "django", "psycopg", "psutil", "pglast") if not importlib.util.find_spec(m)]
if _missing:
    print(
        f"migration_tools: Python package(s) {', '.join(_missing)} not installed for {sys.executable}; "
        "run pip install -r requirements.txt in the project's virtual environment [python-deps]",
        file=sys.stderr,
    )
    raise SystemExit(2)

from migration_tools.cli import main  # noqa: E402

raise SystemExit(main())
