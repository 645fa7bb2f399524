"""Medication catalogue, prescriptions and dose logs."""
