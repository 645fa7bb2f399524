"""Reminders and alerts sent to users."""
