from django.conf import settings
from django.db import models


class SecurityEvent(models.Model):
    """An entry of the security audit trail."""

    class EventType(models.TextChoices):
        LOGIN_SUCCESS = "login_success", "Login succeeded"
        LOGIN_FAILED = "login_failed", "Login failed"
        PASSWORD_RESET = "password_reset", "Password reset"
        PERMISSION_DENIED = "permission_denied", "Permission denied"
        DATA_EXPORT = "data_export", "Data export"
        SUSPICIOUS_ACTIVITY = "suspicious_activity", "Suspicious activity"

    class Severity(models.TextChoices):
        LOW = "LOW", "Low"
        MEDIUM = "MEDIUM", "Medium"
        HIGH = "HIGH", "High"
        CRITICAL = "CRITICAL", "Critical"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="security_events",
    )
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.LOW)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    details = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.severity} {self.event_type}"
