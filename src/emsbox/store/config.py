"""Settings of the data logger: the logging tiers, their roll-ups and how long each is kept."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Tier(BaseModel):
    """One resolution of the log: buckets of ``resolution_s`` kept for ``retention_h``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    resolution_s: int = Field(
        ge=1, le=86_400, description="Length of one bucket of this tier, in seconds."
    )
    retention_h: float | None = Field(
        default=None,
        gt=0.0,
        description="How long buckets of this tier are kept, in hours; empty: forever.",
    )


def _default_tiers() -> list[Tier]:
    return [
        Tier(resolution_s=1, retention_h=48.0),
        Tier(resolution_s=60, retention_h=24.0 * 366),
        Tier(resolution_s=900, retention_h=24.0 * 366 * 5),
        Tier(resolution_s=3600, retention_h=None),
    ]


class StoreConfig(BaseModel):
    """The data logger: what is logged, how often, and for how long."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tiers: list[Tier] = Field(
        default_factory=_default_tiers,
        min_length=1,
        max_length=8,
        description=(
            "Logging tiers, finest first. The first tier is written from the live readings; "
            "each following one is rolled up from the one before (averages of averages, "
            "extremes of extremes, last counter values). Each resolution must be a whole "
            "multiple of the previous one."
        ),
    )
    logging_interval_s: int = Field(
        default=60,
        ge=1,
        le=86_400,
        description=(
            "The logging interval: the resolution of the tier exported and published as "
            "logged records (must be the resolution of one of the tiers)."
        ),
    )
    commit_interval_s: float = Field(
        default=5.0,
        ge=0.1,
        le=60.0,
        description=(
            "Longest time a reading waits in memory before it is committed to disk. Each "
            "commit rewrites whole pages, so longer intervals spare flash storage (a kill "
            "loses at most this much of the log; energy counters are saved every second "
            "regardless)."
        ),
    )

    @model_validator(mode="after")
    def _check_tiers(self) -> Self:
        """Tiers get coarser, each a multiple of the one before; the interval is one of them."""
        for finer, coarser in zip(self.tiers, self.tiers[1:], strict=False):
            if coarser.resolution_s <= finer.resolution_s:
                raise ValueError("tiers must be listed finest first, each coarser than the last")
            if coarser.resolution_s % finer.resolution_s:
                raise ValueError(
                    f"tier of {coarser.resolution_s} s is not a whole multiple of the tier of "
                    f"{finer.resolution_s} s"
                )
        resolutions = [t.resolution_s for t in self.tiers]
        if self.logging_interval_s not in resolutions:
            raise ValueError(
                f"logging_interval_s ({self.logging_interval_s}) must be the resolution of a "
                f"tier: {', '.join(map(str, resolutions))}"
            )
        return self
