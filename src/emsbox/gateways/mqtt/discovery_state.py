"""What this device has announced to Home Assistant, kept in a file so it can be removed.

Discovery messages are retained by the broker until an empty message replaces them. The file
lists, per load, the config topics published, so that entities of variables, loads or the
whole device that are no longer wanted are removed, also after a restart.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from emsbox.private_files import write_private

log = logging.getLogger(__name__)


class DiscoveryState:
    """Load → config topics announced, saved in ``path`` after each change."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._topics: dict[str, set[str]] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self._topics = {str(k): {str(t) for t in v} for k, v in data["loads"].items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("mqtt: %s unreadable (%s): starting afresh", path, exc)

    def stale_for_load(self, load: str, wanted: set[str]) -> set[str]:
        """Topics announced for ``load`` that are not wanted any more."""
        return self._topics.get(load, set()) - wanted

    def stale_loads(self, keep: set[str]) -> set[str]:
        """Every topic announced for loads not in ``keep``."""
        return {t for load, ts in self._topics.items() if load not in keep for t in ts}

    def published(self, load: str, topics: set[str]) -> None:
        """``load`` is now announced with exactly ``topics``."""
        self._topics[load] = set(topics)
        self._save()

    def forget_loads(self, keep: set[str]) -> None:
        """Loads not in ``keep`` were removed."""
        if set(self._topics) - keep:
            self._topics = {k: v for k, v in self._topics.items() if k in keep}
            self._save()

    def _save(self) -> None:
        data = {"loads": {k: sorted(v) for k, v in sorted(self._topics.items())}}
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            write_private(self._path, json.dumps(data, indent=1).encode())
        except OSError as exc:
            log.warning("mqtt: cannot save %s: %s", self._path, exc)
