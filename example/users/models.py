from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A MedGuard account: a patient, a caregiver or a pharmacist."""

    phone_number = models.CharField(max_length=20, blank=True)
    timezone = models.CharField(max_length=64, default="Africa/Johannesburg")

    def __str__(self) -> str:
        return self.username
