"""The on-disk spool of messages waiting to be sent.

One JSON file per message in ``<data dir>/mail-spool/``, readable by emsbox only and written
whole or not at all; named by the time the message was made and a counter, so that sorted names
are the order the events happened in. The spool keeps in memory what it holds (names and ages),
so that the status never lists the directory, and holds at most a given number of messages:
when it is full the oldest is dropped, so that the newest events get through after a long
outage.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from emsbox.private_files import write_private

log = logging.getLogger(__name__)

SPOOL_DIR = "mail-spool"  # in the data directory


@dataclass
class Spooled:
    """A message in the spool: its file, when it was made and whom it still has to reach."""

    path: Path
    created_s: float
    message: EmailMessage
    to: list[str] | None  # None: the configured recipients


@dataclass(frozen=True)
class SpoolCounts:
    """How many messages wait, when the oldest was made, and how many a full spool dropped."""

    waiting: int
    oldest_created_s: float | None
    dropped: int


def creation_time(path: Path) -> float | None:
    """When a spooled message was made, from its file name; None if the name does not say."""
    stamp = path.name.partition("-")[0]
    return int(stamp) / 1000.0 if stamp.isdigit() else None


class Spool:
    """The messages waiting in a directory, oldest first, and what is known of them in memory
    (kept under a lock: messages come from the caller's thread while e-mail is stopped)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._sequence = 0  # of the files named in this run
        # The messages, oldest first: name and creation time (so that counts() need not list
        # the directory); read from the directory by load(), kept up to date after.
        self._index: dict[str, float | None] = {}
        # Files that could be neither sent nor set aside (a read-only spool): skipped, so that
        # they are not read, or worse sent, again and again.
        self._stuck: set[str] = set()
        self._dropped = 0
        self._full_said = False  # the full spool was logged (again once messages go out)

    def load(self) -> None:
        """What the spool holds, from the directory (at start, and while stopped)."""
        index = {path.name: creation_time(path) for path in self.names()}
        with self._lock:
            self._index = index

    def names(self) -> list[Path]:
        """The spooled messages in the directory, oldest first (names start with the time
        they were made)."""
        try:
            with os.scandir(self.directory) as entries:
                names = [e.name for e in entries if e.name.endswith(".json") and e.is_file()]
        except OSError:
            return []
        names = [n for n in names if not n.startswith(".") and n not in self._stuck]
        return [self.directory / name for name in sorted(names)]

    def waiting(self) -> list[Path]:
        """The spooled messages, oldest first, from memory."""
        with self._lock:
            return [self.directory / name for name in self._index]

    def counts(self) -> SpoolCounts:
        """What waits and what was dropped, from memory (cheap)."""
        with self._lock:
            oldest = next(iter(self._index.values()), None)
            return SpoolCounts(len(self._index), oldest, self._dropped)

    def add(self, message: EmailMessage, created_s: float, max_waiting: int) -> None:
        """Into the spool; beyond ``max_waiting`` messages the oldest are dropped."""
        with self._lock:
            # Named by time, then by a counter for messages of the same millisecond: sorted
            # names are the order the events happened in.
            self._sequence += 1
            sequence = self._sequence
        name = f"{round(created_s * 1000):013d}-{sequence:06d}-{secrets.token_hex(2)}.json"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._write(self.directory / name, message, created_s, None)
        except OSError as exc:
            log.error("e-mail %r lost: the spool cannot be written: %s", message["Subject"], exc)
            return
        over: list[str] = []
        with self._lock:
            self._index[name] = created_s
            while len(self._index) > max_waiting:
                oldest = next(iter(self._index))
                del self._index[oldest]
                over.append(oldest)
            self._dropped += len(over)
            first = bool(over) and not self._full_said
            self._full_said = self._full_said or bool(over)
        for oldest in over:
            # Said once until messages go out again; each file name at debug level.
            log.log(
                logging.ERROR if first else logging.DEBUG,
                "mail spool full (%d messages): the oldest, %s, dropped so that new events "
                "get through",
                max_waiting,
                oldest,
            )
            first = False
            try:
                (self.directory / oldest).unlink(missing_ok=True)
            except OSError as exc:
                log.error("mail spool: cannot remove %s: %s", oldest, exc)
                self._stuck.add(oldest)

    def read(self, path: Path) -> Spooled | None:
        """A spooled message; None if it is gone or unreadable (then set aside as .bad)."""
        try:
            record = json.loads(path.read_bytes())
            message = email.message_from_string(record["message"], policy=email.policy.SMTP)
            assert isinstance(message, EmailMessage)
            to = record.get("to")
            return Spooled(
                path,
                float(record["created_s"]),
                message,
                [str(a) for a in to] if isinstance(to, list) else None,
            )
        except FileNotFoundError:
            self._forget(path)
            return None
        except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
            log.error("mail spool: %s is unreadable, set aside: %s", path.name, exc)
            try:
                path.rename(path.with_suffix(".bad"))
                self._forget(path)
            except OSError:
                self._set_aside(path)
            return None

    def settle(self, spooled: Spooled, later: list[str]) -> None:
        """The server took the message: kept for the recipients ``later`` only (refused for
        now), removed if there are none."""
        if not later:
            self.remove(spooled)
            return
        try:
            # Not sent again to the others.
            self._write(spooled.path, spooled.message, spooled.created_s, later)
        except OSError as exc:
            log.error("mail spool: cannot update %s: %s", spooled.path, exc)
            self._set_aside(spooled.path)

    def remove(self, spooled: Spooled) -> None:
        """The message no longer waits: its file is removed, or skipped if it cannot be."""
        try:
            spooled.path.unlink(missing_ok=True)
            self._forget(spooled.path)
        except OSError as exc:
            log.error("mail spool: cannot remove %s: %s", spooled.path, exc)
            self._set_aside(spooled.path)

    def delivered(self) -> None:
        """A message went out: a spool full again is logged again."""
        with self._lock:
            self._full_said = False

    def _write(
        self, path: Path, message: EmailMessage, created_s: float, to: list[str] | None
    ) -> None:
        record: dict[str, object] = {
            "created_s": created_s,
            "message": message.as_string(policy=email.policy.SMTP),
        }
        if to is not None:
            record["to"] = to
        write_private(path, json.dumps(record).encode())

    def _forget(self, path: Path) -> None:
        """``path`` no longer waits."""
        with self._lock:
            self._index.pop(path.name, None)

    def _set_aside(self, path: Path) -> None:
        """``path`` can be neither sent nor removed: skipped from now on."""
        self._stuck.add(path.name)
        self._forget(path)
