"""Lint of the pending plan: the lock, the table's size and the safe alternative per statement.

Layers: `collect` (Django's SQL in collect mode), `classify` and `types` (pure functions over
pglast nodes), `catalogue` (the rules as data), `alternatives` (concrete SQL), `sizes` (the
catalog), `tracking` and `analyse` (the plan as a whole), `findings` (levels), `run` (all of
it). lint sits beside deploy: it imports core and pg, never deploy (nor deploy lint).
pglast is imported here only, so commands that do not lint never load it.

A migration that is unsafe on purpose says so on its class (or in MIGRATION_KIT["LINT_ACCEPT"]):

    class Migration(migrations.Migration):
        migration_kit_accept = ["the table holds 200 rows in production"]

See `lint.settings` for the forms and the size threshold.
"""
