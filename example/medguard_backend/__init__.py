"""MedGuard SA medication-management backend (demo project for the migration kit)."""
