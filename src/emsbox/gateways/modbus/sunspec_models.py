"""The choice of SunSpec meter models (kept apart so that the settings need not load the maps)."""

from __future__ import annotations

from enum import StrEnum


class SunSpecModels(StrEnum):
    """Which SunSpec meter models the gateway serves."""

    FLOAT = "float"  # 211–214: float32 values
    INT = "int"  # 201–204: int16 with scale factors, 32-bit accumulators
