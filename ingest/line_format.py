"""Header formats of raw log lines, configured as Loghub writes them.

A format names the fields of a line between literal text, e.g.
``<Date> <Time> <Pid> <Level> <Component>: <Content>``. A line that matches becomes an
event whose message is ``Content`` (what template mining sees), whose level is ``Level``,
whose time is read from the ``Date``/``Day``/``Time``/``Timestamp`` fields with ``time``
(a ``strptime`` format; ``epoch`` for seconds since 1970), whose host is ``Node``/``Host``
and whose other fields are attributes. Lines that match no format are decoded as before
(syslog, or plain), so nothing is dropped.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from functools import cached_property

from pydantic import BaseModel, Field, field_validator

_FIELD = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")
TIME_FIELDS = ("Date", "Day", "Time", "Timestamp")
HOST_FIELDS = ("Node", "Host", "Hostname")


def compile_format(text: str) -> re.Pattern[str]:
    """The anchored regular expression of a format: fields lazily matched, literal text as
    is (runs of blanks match any run of blanks).

    >>> p = compile_format("<Date> <Time> <Level> [<Process>] <Component>: <Content>")
    >>> m = p.match("2015-10-18 18:01:47,978 INFO [main] o.a.h.MRAppMaster: Created x")
    >>> m["Process"], m["Component"], m["Content"]
    ('main', 'o.a.h.MRAppMaster', 'Created x')
    """
    parts = _FIELD.split(text)
    if len(parts) < 3:
        raise ValueError(f"a line format names at least one <Field>: {text!r}")
    names = parts[1::2]
    if "Content" not in names:
        raise ValueError(f"a line format needs a <Content> field: {text!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"a field is named twice in {text!r}")
    pattern = []
    for index, part in enumerate(parts):
        if index % 2:
            pattern.append(f"(?P<{part}>.*?)")
        else:
            pattern.append(r"\s+".join(re.escape(chunk) for chunk in re.split(r"\s+", part)))
    return re.compile("^" + "".join(pattern) + "$", re.DOTALL)


class LineFormatRule(BaseModel, frozen=True, extra="forbid"):
    """One configured header format.

    Parameters
    ----------
    format
        Fields in angle brackets between literal text; ``<Content>`` is required.
    time
        How the time fields, joined by one space in their order, are read: a ``strptime``
        format, or ``epoch``. Unset: the time of receipt.
    service
        The service of the lines it matches (else the usual service rules, with ``Node``
        or ``Host`` as host).

    >>> rule = LineFormatRule(format="<Date> <Time> <Pid> <Level> <Component>: <Content>",
    ...                       time="%y%m%d %H%M%S")
    >>> rule.parse("081109 203615 148 INFO dfs.DataNode: Receiving block blk_1")["Content"]
    'Receiving block blk_1'
    """

    format: str
    time: str | None = None
    service: str | None = Field(default=None, min_length=1)

    @field_validator("format")
    @classmethod
    def _compiles(cls, value: str) -> str:
        compile_format(value)
        return value

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return compile_format(self.format)

    def parse(self, line: str) -> dict[str, str] | None:
        """The fields of ``line``, or None when it does not match."""
        m = self.regex.match(line)
        return m.groupdict() if m else None

    def timestamp(self, fields: dict[str, str], zone: tzinfo) -> float | None:
        """Epoch seconds from the time fields, or None (no ``time``, or it does not parse)."""
        if self.time is None:
            return None
        text = " ".join(fields[f].strip() for f in fields if f in TIME_FIELDS)
        try:
            if self.time == "epoch":
                return float(text)
            parsed = datetime.strptime(text, self.time)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return parsed.timestamp()
