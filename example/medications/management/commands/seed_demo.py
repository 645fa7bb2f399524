"""Bring an empty database to MedGuard's released state and fill it with demo data.

    python manage.py seed_demo              # the seed document's scale (1,247 medications, ...)
    python manage.py seed_demo --scale N    # about N rows in all, for benchmarks

Rows are generated set-based in SQL (INSERT ... SELECT generate_series), never row by row.
The big table's foreign keys are dropped while it loads and added back afterwards, the way
pg_restore loads data: validating a constraint once is far cheaper than a trigger per row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from medguard_backend.release import RELEASED_MIGRATIONS

# The seed document's figures (ENHANCED_MIGRATION_FEATURES.md, verify-data example).
BASE = {"medications": 1247, "users": 156, "security_events": 89, "notifications": 234}
EXPIRED_NOTIFICATIONS = 12  # purged by the pending medguard_notifications.0003 migration
DUPLICATE_MEDICATIONS = 2  # "Potential duplicates: 2" in the seed document


@dataclass(frozen=True)
class Sizes:
    users: int
    medications: int
    prescriptions: int
    dose_logs: int
    security_events: int
    notifications: int

    @property
    def total(self) -> int:
        return sum(vars(self).values())

    @classmethod
    def for_scale(cls, scale: int | None) -> Sizes:
        if not scale:
            return cls(BASE["users"], BASE["medications"], 312, 3000,
                       BASE["security_events"], BASE["notifications"])
        return cls(
            users=max(BASE["users"], scale // 50),
            medications=max(BASE["medications"], scale // 200),
            prescriptions=max(312, scale // 10),
            dose_logs=max(3000, scale - sum(scale // d for d in (50, 200, 10, 100, 20))),
            security_events=max(BASE["security_events"], scale // 100),
            notifications=max(BASE["notifications"], scale // 20),
        )


class Command(BaseCommand):
    help = "Migrate an empty database to the released state and seed the demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", type=int, default=None, metavar="N",
                            help="Seed about N rows in all (benchmarks); default: the seed document's scale.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        scale = options["scale"]
        if scale is not None and scale < 1000:
            raise CommandError("--scale must be at least 1000")
        started = time.monotonic()
        self._migrate_to_release(alias)
        sizes = Sizes.for_scale(scale)
        with connections[alias].cursor() as cur:
            cur.execute("SELECT count(*) FROM users_user")
            if cur.fetchone()[0]:
                raise CommandError(
                    "the database already holds users: seed_demo fills an empty database only; "
                    "use a fresh database (./demo.sh recreates the demo's)"
                )
        with transaction.atomic(using=alias), connections[alias].cursor() as cur:
            cur.execute("SELECT setseed(0.42)")
            # Check foreign keys per statement, so the bulk load below may alter its table.
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
            self._seed(cur, sizes)
        with connections[alias].cursor() as cur:
            cur.execute("ANALYZE")
        self.stdout.write(
            f"Seeded {sizes.total:,} rows (users {sizes.users:,}, medications {sizes.medications:,}, "
            f"prescriptions {sizes.prescriptions:,}, dose logs {sizes.dose_logs:,}, security events "
            f"{sizes.security_events:,}, notifications {sizes.notifications:,}) "
            f"in {time.monotonic() - started:.1f}s"
        )

    def _migrate_to_release(self, alias: str) -> None:
        connection = connections[alias]
        executor = MigrationExecutor(connection)
        targets = [
            (app, RELEASED_MIGRATIONS.get(app, name))
            for app, name in executor.loader.graph.leaf_nodes()
        ]
        plan = executor.migration_plan(targets)
        executor.migrate(targets, plan=plan)

    def _seed(self, cur: Any, s: Sizes) -> None:
        cur.execute(
            """
            INSERT INTO users_user (password, is_superuser, username, first_name, last_name, email,
                                    is_staff, is_active, date_joined, phone_number)
            SELECT '!', false, 'patient' || g, initcap(substr(md5(g::text), 1, 6)),
                   initcap(substr(md5((g * 7)::text), 1, 8)), 'patient' || g || '@medguard.example',
                   g <= 3, true, now() - (g %% 900) * interval '1 day',
                   '+27' || lpad((600000000 + g)::text, 9, '0')
            FROM generate_series(1, %s) g
            """,
            [s.users],
        )
        unique_meds = s.medications - DUPLICATE_MEDICATIONS
        cur.execute(
            """
            INSERT INTO medications_medication (name, generic_name, strength, form, manufacturer,
                                                schedule, created_at, updated_at, is_active)
            SELECT 'Med-' || g || '-' || substr(md5(g::text), 1, 6), 'generic-' || (g %% 400),
                   (ARRAY['5mg','10mg','20mg','50mg','100mg','250mg','500mg'])[1 + g %% 7],
                   (ARRAY['tablet','capsule','syrup','injection','inhaler','cream','drops'])[1 + g %% 7],
                   (ARRAY['Aspen','Cipla','Adcock Ingram','Sandoz','Pfizer','Dis-Chem'])[1 + g %% 6],
                   g %% 7, now() - (g %% 700) * interval '1 day', now(), g %% 50 <> 0
            FROM generate_series(1, %s) g
            """,
            [unique_meds],
        )
        # Re-registrations of the same product: what verify-data reports as potential duplicates.
        cur.execute(
            """
            INSERT INTO medications_medication (name, generic_name, strength, form, manufacturer,
                                                schedule, created_at, updated_at, is_active)
            SELECT name, generic_name, strength, form, manufacturer, schedule, now(), now(), true
            FROM medications_medication ORDER BY id LIMIT %s
            """,
            [DUPLICATE_MEDICATIONS],
        )
        cur.execute(
            """
            INSERT INTO medications_prescription (user_id, medication_id, dosage, frequency, instructions,
                                                  prescribed_by, start_date, end_date, created_at)
            SELECT u.first + (g %% u.n), m.first + ((g * 31) %% m.n), (1 + g %% 3) || ' tablet(s)',
                   (ARRAY['once daily','twice daily','three times daily','as needed'])[1 + g %% 4],
                   CASE WHEN g %% 3 = 0 THEN 'Take with food' ELSE '' END,
                   'Dr ' || substr(md5(g::text), 1, 5),
                   current_date - (g %% 365), CASE WHEN g %% 5 = 0 THEN current_date + 30 END,
                   now() - (g %% 365) * interval '1 day'
            FROM generate_series(1, %s) g,
                 (SELECT min(id) AS first, count(*) AS n FROM users_user) u,
                 (SELECT min(id) AS first, count(*) AS n FROM medications_medication) m
            """,
            [s.prescriptions],
        )
        with _foreign_keys_dropped(cur, "medications_doselog"):
            cur.execute(
                """
                INSERT INTO medications_doselog (prescription_id, scheduled_at, taken_at, status, source,
                                                 notes, created_at)
                SELECT p.first + (g %% p.n), now() - (g %% 2000) * interval '1 hour',
                       CASE WHEN g %% 4 <> 0 THEN now() - (g %% 2000) * interval '1 hour' END,
                       (ARRAY['taken','taken','taken','missed','skipped','scheduled'])[1 + g %% 6],
                       (ARRAY['app','sms','caregiver',''])[1 + g %% 4], '', now()
                FROM generate_series(1, %s) g,
                     (SELECT min(id) AS first, count(*) AS n FROM medications_prescription) p
                """,
                [s.dose_logs],
            )
        cur.execute(
            """
            INSERT INTO security_securityevent (user_id, event_type, severity, ip_address, user_agent,
                                                details, created_at)
            SELECT CASE WHEN g %% 10 = 0 THEN NULL ELSE u.first + (g %% u.n) END,
                   (ARRAY['login_success','login_failed','password_reset','permission_denied',
                          'data_export','suspicious_activity'])[1 + g %% 6],
                   (ARRAY['low','low','medium','high','critical'])[1 + g %% 5],
                   ('10.0.' || (g %% 250) || '.' || (1 + g %% 200))::inet, 'MedGuard/2.0', '',
                   now() - (g %% 90) * interval '1 day'
            FROM generate_series(1, %s) g, (SELECT min(id) AS first, count(*) AS n FROM users_user) u
            """,
            [s.security_events],
        )
        cur.execute(
            """
            INSERT INTO medguard_notifications_notification (user_id, kind, title, message, is_read,
                                                             created_at, expires_at)
            SELECT u.first + (g %% u.n),
                   (ARRAY['dose_reminder','refill_reminder','interaction_alert','system'])[1 + g %% 4],
                   'Reminder ' || g, 'Time for your dose (' || substr(md5(g::text), 1, 8) || ')',
                   g %% 3 = 0, now() - (g %% 30) * interval '1 day',
                   CASE WHEN g <= %s THEN now() - interval '2 days'
                        WHEN g %% 2 = 0 THEN now() + interval '30 days' END
            FROM generate_series(1, %s) g, (SELECT min(id) AS first, count(*) AS n FROM users_user) u
            """,
            [EXPIRED_NOTIFICATIONS, s.notifications],
        )


class _foreign_keys_dropped:
    """Drop a table's foreign keys for a bulk load and add them back (validated) afterwards."""

    def __init__(self, cur: Any, table: str) -> None:
        self.cur = cur
        self.table = table
        self.constraints: list[tuple[str, str]] = []

    def __enter__(self) -> None:
        self.cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            [self.table],
        )
        self.constraints = list(self.cur.fetchall())
        for name, _definition in self.constraints:
            self.cur.execute(f'ALTER TABLE "{self.table}" DROP CONSTRAINT "{name}"')

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        for name, definition in self.constraints:
            self.cur.execute(f'ALTER TABLE "{self.table}" ADD CONSTRAINT "{name}" {definition}')
