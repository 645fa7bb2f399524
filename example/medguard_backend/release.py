"""The migration state that is currently released (applied in production).

Everything after these migrations is the pending release being deployed.
Django's own contrib apps are always fully migrated.
"""

RELEASED_MIGRATIONS: dict[str, str] = {
    "users": "0002_user_phone_number",
    "medications": "0002_medication_is_active",
    "security": "0001_initial",
    "medguard_notifications": "0001_initial",
}
