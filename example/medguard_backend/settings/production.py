"""Production settings: secrets and database credentials come from the environment.

Missing database variables resolve to empty strings rather than failing at import
time, so the migration kit's pre-flight check can report them itself.
"""

import os
from typing import Any

from .base import *  # noqa: F403

SECRET_KEY: str = os.environ.get(
    "DJANGO_SECRET_KEY",
    "demo-only-6v#q2Lr9pX!fW4z@Tn8kB3m$Hs7cJ1y%Ud5eGa0iQw^RoZtVbN_xMl",
)

DEBUG = False

ALLOWED_HOSTS: list[str] = ["localhost", "127.0.0.1"]

DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DB_NAME", ""),
        "USER": os.environ.get("DB_USER", ""),
        "PASSWORD": os.environ.get("DB_PASSWORD", ""),
        "HOST": os.environ.get("DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DB_PORT", "5432"),
    },
}

# HTTPS hardening (``manage.py check --deploy``).
SECURE_SSL_REDIRECT = True
# The load balancer (and zero-downtime) request the health URL over plain HTTP on the private side.
SECURE_REDIRECT_EXEMPT: list[str] = [r"^health/$"]
SECURE_PROXY_SSL_HEADER: tuple[str, str] = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
