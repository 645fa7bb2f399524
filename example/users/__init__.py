"""Patients, caregivers and staff (custom user model)."""
