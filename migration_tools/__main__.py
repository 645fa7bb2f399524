from migration_tools.deps import require

require()

from migration_tools.cli import main  # noqa: E402

raise SystemExit(main())
