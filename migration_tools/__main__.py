from migration_tools.core.deps import require

require()

from migration_tools.cli.main import main  # noqa: E402

raise SystemExit(main())
