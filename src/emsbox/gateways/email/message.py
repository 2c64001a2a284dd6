"""The e-mail messages: plain text in UTF-8, one per alarm event, and the test message.

Pure: the same notice and settings give the same message (but for its Message-ID).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from emsbox import variables

EVENT_TITLES = {
    "raised": "Alarm raised",
    "cleared": "Alarm cleared",
    "acknowledged": "Alarm acknowledged",
}


@dataclass(frozen=True)
class Letterhead:
    """What every message carries besides its event: who from, to whom, which site."""

    sender: str
    recipients: tuple[str, ...]
    site_name: str
    zone: ZoneInfo
    subject_prefix: str = ""


def format_value(value: object, variable: str) -> str:
    """A measured value with the unit of its variable: ``231.4 V``; "none" without one."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "none (no recent reading)"
    number = float(value)
    # Six significant digits say more than any meter measures; large counters in full.
    text = f"{number:.6g}" if abs(number) < 1e6 else f"{number:.0f}"
    known = variables.BY_NAME.get(variable)
    unit = known.unit if known is not None else ""
    return f"{text} {unit}".rstrip()


def local_time(time_s: float, zone: ZoneInfo) -> dt.datetime:
    """The moment ``time_s`` (Unix seconds) on the site's clock."""
    return dt.datetime.fromtimestamp(time_s, dt.UTC).astimezone(zone)


def one_line(text: str) -> str:
    """``text`` with every control character (a line break, a tab) and line or paragraph
    separator replaced by a space: a header is one line."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


def _subject(head: Letterhead, title: str) -> str:
    subject = f"{title} ({head.site_name})"
    return one_line(f"{head.subject_prefix} {subject}" if head.subject_prefix else subject)


def _envelope(head: Letterhead, subject: str, when: dt.datetime, body: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = head.sender
    message["To"] = ", ".join(head.recipients)
    message["Date"] = format_datetime(when)
    # The sender's domain names the message: asking the system for its own name may hang on
    # a device without DNS.
    message["Message-ID"] = make_msgid("emsbox", head.sender.rpartition("@")[2] or "emsbox")
    # RFC 3834: automatic messages, so that vacation responders do not answer them.
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps the text readable in the raw message and needs no 8BITMIME.
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return message


@dataclass(frozen=True)
class Folded:
    """Earlier events of the same alarm that were not sent one by one: how many of each kind,
    since when (Unix seconds)."""

    counts: Mapping[str, int]
    since_s: float

    @property
    def total(self) -> int:
        """How many events were folded."""
        return sum(self.counts.values())


def alarm_message(
    notice: Mapping[str, object], head: Letterhead, folded: Folded | None = None
) -> EmailMessage:
    """The message of one alarm event (an ``AlarmNotice`` as a dict); with ``folded``, the
    earlier events of the alarm this message stands for (a flapping alarm)."""
    event = str(notice.get("event", ""))
    name = str(notice.get("name", ""))
    variable = str(notice.get("variable", ""))
    title = EVENT_TITLES.get(event, f"Alarm {event}")
    time_s = notice.get("time_s")
    when = local_time(float(time_s) if isinstance(time_s, int | float) else 0.0, head.zone)
    known = variables.BY_NAME.get(variable)
    what = f"{variable} ({known.description})" if known is not None else variable
    lines = [
        f"{title}: {name}",
        "",
        f"Site:      {head.site_name}",
        f"Time:      {when:%Y-%m-%d %H:%M:%S} {when.tzname()} ({head.zone.key})",
    ]
    if notice.get("load"):
        lines.append(f"Load:      {notice['load']}")
    # The built-in alarms (a silent source, a full disk) watch no variable but say why.
    if variable:
        lines.append(f"Variable:  {what}")
        lines.append(f"Value:     {format_value(notice.get('value'), variable)}")
    if notice.get("detail"):
        lines.append(f"Detail:    {notice['detail']}")
    lines.append(f"Event:     {event}")
    by = notice.get("by")
    if by:
        lines.append(f"Acknowledged by: {by}")
    if folded is not None and folded.total:
        since = local_time(folded.since_s, head.zone)
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(folded.counts.items()))
        lines += [
            "",
            f"This alarm changed often: {folded.total} earlier events since "
            f"{since:%Y-%m-%d %H:%M:%S} {since.tzname()} ({kinds}) were not sent one by one; "
            "this message is the latest.",
        ]
    lines += ["", "Sent by emsbox: alarms are listed on the Alarms page of the web app."]
    return _envelope(head, _subject(head, f"{title}: {name}"), when, "\n".join(lines) + "\n")


def trial_message(head: Letterhead, time_s: float) -> EmailMessage:
    """The test message the settings page's button sends."""
    when = local_time(time_s, head.zone)
    body = (
        f"This is a test message from emsbox at {head.site_name}, sent at "
        f"{when:%Y-%m-%d %H:%M:%S} {when.tzname()} ({head.zone.key}).\n\n"
        "Alarm events will be sent to: " + ", ".join(head.recipients) + "\n"
    )
    return _envelope(head, _subject(head, "Test message"), when, body)
