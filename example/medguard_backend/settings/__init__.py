"""Settings package: ``base`` holds shared settings, ``production`` the deployed ones."""
