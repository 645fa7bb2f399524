"""WSGI entry point for the MedGuard SA backend."""

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medguard_backend.settings.production")

application: WSGIHandler = get_wsgi_application()
