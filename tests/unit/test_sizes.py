"""core/sizes.py: sizes as an operator reads them."""

import pytest

from migration_tools.core.sizes import human_size

KIB, MIB, GIB = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 bytes"),
        (1, "1 bytes"),
        (1023, "1,023 bytes"),
        (KIB, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (500 * KIB, "500.0 KiB"),
        (MIB, "1.0 MiB"),
        (int(2.25 * MIB), "2.2 MiB"),
        (734 * MIB + 300 * KIB, "734.3 MiB"),
        (GIB, "1.0 GiB"),
        (3 * GIB // 2, "1.5 GiB"),
        (2048 * GIB, "2,048.0 GiB"),  # GiB is the largest unit
    ],
)
def test_human_size(size, shown):
    assert human_size(size) == shown
