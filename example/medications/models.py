from django.conf import settings
from django.db import models


class Medication(models.Model):
    """An entry of the medication catalogue."""

    class Form(models.TextChoices):
        TABLET = "tablet", "Tablet"
        CAPSULE = "capsule", "Capsule"
        SYRUP = "syrup", "Syrup"
        INJECTION = "injection", "Injection"
        INHALER = "inhaler", "Inhaler"
        CREAM = "cream", "Cream"
        DROPS = "drops", "Drops"

    name = models.CharField(max_length=200)
    generic_name = models.CharField(max_length=200, blank=True)
    strength = models.CharField(max_length=50)
    form = models.CharField(max_length=20, choices=Form.choices, default=Form.TABLET)
    manufacturer = models.CharField(max_length=200, blank=True)
    schedule = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "strength")

    def __str__(self) -> str:
        return f"{self.name} {self.strength} {self.form}"


class Prescription(models.Model):
    """A medication prescribed to a patient."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prescriptions"
    )
    medication = models.ForeignKey(
        Medication, on_delete=models.PROTECT, related_name="prescriptions"
    )
    dosage = models.CharField(max_length=100)
    frequency = models.CharField(max_length=50)
    instructions = models.TextField(blank=True)
    prescribed_by = models.CharField(max_length=200, blank=True)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.medication} for {self.user}"


class DoseLog(models.Model):
    """One scheduled dose of a prescription; by far the largest table."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        TAKEN = "taken", "Taken"
        MISSED = "missed", "Missed"
        SKIPPED = "skipped", "Skipped"

    prescription = models.ForeignKey(
        Prescription, on_delete=models.CASCADE, related_name="dose_logs"
    )
    scheduled_at = models.DateTimeField()
    taken_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    source = models.CharField(max_length=30, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = (models.Index(fields=["scheduled_at"], name="doselog_scheduled_at_idx"),)

    def __str__(self) -> str:
        return f"{self.prescription_id} @ {self.scheduled_at:%Y-%m-%d %H:%M} ({self.status})"
