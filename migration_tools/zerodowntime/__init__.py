"""`zero-downtime`: migrations that never queue in front of the application, and the measurement
that proves it. Above deploy and lint: it weighs the plan with the lint, runs it through
django-pg-zero-downtime-migrations' schema editor with the kit's retries, and recovers by the
rules of `migrate`."""
