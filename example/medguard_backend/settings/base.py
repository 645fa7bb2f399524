"""Settings shared by every MedGuard SA environment."""

import os
from pathlib import Path
from typing import Any

BASE_DIR: Path = Path(__file__).resolve().parent.parent.parent

INSTALLED_APPS: list[str] = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "users",
    "medications",
    "security",
    "medguard_notifications",
]

MIDDLEWARE: list[str] = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "medguard_backend.urls"
WSGI_APPLICATION = "medguard_backend.wsgi.application"

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "users.User"

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-za"
TIME_ZONE = "Africa/Johannesburg"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Configuration of the migration-safety kit.
MIGRATION_KIT: dict[str, Any] = {
    "BACKUP_PREFIX": "medguard",
    "CRITICAL_MODELS": [
        "medications.Medication",
        "users.User",
        "security.SecurityEvent",
        "medguard_notifications.Notification",
    ],
    "DUPLICATE_KEYS": {
        "medications.Medication": ["name", "strength", "form"],
        "users.User": ["email"],
    },
    "BACKUP_RETENTION": 7,
    # The running application's health URL, requested by zero-downtime throughout and after
    # migrating; demo.sh serves it with runserver on loopback.
    "HEALTH_CHECK_URL": os.environ.get("MEDGUARD_HEALTH_URL", ""),
}
