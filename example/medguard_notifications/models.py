from django.conf import settings
from django.db import models


class Notification(models.Model):
    """A reminder or alert shown to a user."""

    class Kind(models.TextChoices):
        DOSE_REMINDER = "dose_reminder", "Dose reminder"
        REFILL_REMINDER = "refill_reminder", "Refill reminder"
        INTERACTION_ALERT = "interaction_alert", "Interaction alert"
        SYSTEM = "system", "System"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    medication = models.ForeignKey(
        "medications.Medication",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
    )
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.SYSTEM)
    title = models.CharField(max_length=200)
    message = models.TextField()
    is_read = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.title
