"""OTLP protobuf (``otlp_proto``): the binary export requests that the OpenTelemetry
Collector's Kafka exporter writes by default.

A request is parsed with the generated classes of ``opentelemetry-proto`` and turned
into the shape of its OTLP/JSON encoding, so that the OTLP/JSON decoders
(:mod:`ingest.formats.otlp_metrics`, :mod:`ingest.formats.structured_logs`) do all of
the validation: keys in lowerCamelCase, enums as integers, trace and span ids in hex,
other bytes in base64, ``NaN`` and infinities as strings, fields at their default value
left out. 64-bit integers stay Python integers, which those decoders take as they take
decimal strings.

The fields are walked with ``ListFields`` rather than converted by
``google.protobuf.json_format.MessageToDict``, which gives the same shape (bar the ids)
about three times slower.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any, Literal

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from ingest.exceptions import DecodeError, Reason

FORMAT = "otlp_proto"
Signal = Literal["metrics", "logs"]

_REQUESTS: dict[Signal, tuple[type[Message], str]] = {
    "metrics": (ExportMetricsServiceRequest, "resource_metrics"),
    "logs": (ExportLogsServiceRequest, "resource_logs"),
}
# C0 controls other than tab, newline, carriage return and escape, plus DEL: the tags and
# lengths of a protobuf message are full of them, text messages hold none.
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")
_DETECT_BYTES = 4096
# OTLP/JSON writes these bytes fields in hex instead of the Protobuf JSON base64
_HEX_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})
_KEY_VALUE = "opentelemetry.proto.common.v1.KeyValue"

_SCALAR, _SCALARS, _MESSAGE, _MESSAGES, _HEX, _BASE64, _DOUBLE, _DOUBLES, _ATTRIBUTES = range(9)
_ANY_VALUE_NAMES = {
    "string_value": "stringValue",
    "int_value": "intValue",
    "bool_value": "boolValue",
}
_KINDS: dict[Any, tuple[str, int]] = {}


def looks_like_otlp_proto(payload: bytes) -> bool:
    """Whether a message is binary and starts as every OTLP export request does.

    The first byte of a request is the tag of its first resource entry (field 1,
    length-delimited: ``0x0a``, a newline to a text decoder); the bytes after it hold
    control characters that no text message has.

    >>> request = ExportMetricsServiceRequest(resource_metrics=[{}])
    >>> looks_like_otlp_proto(request.SerializeToString())
    True
    >>> looks_like_otlp_proto(b"\\ncpu,host=a usage=1 1700000000000000000")
    False
    """
    return payload[:1] == b"\n" and _CONTROL.search(payload, 0, _DETECT_BYTES) is not None


def parse_request(payload: bytes, signal: Signal) -> dict[str, Any]:
    """The OTLP/JSON shape of a binary ``ExportMetricsServiceRequest`` or
    ``ExportLogsServiceRequest``.

    Raises :class:`~ingest.exceptions.DecodeError`: ``invalid_value`` when the bytes do
    not parse as the request, ``unknown_format`` when they parse as nothing sensible (no
    resource entry, fields the request does not have; parsing arbitrary bytes can
    succeed) or as the request of the other signal.

    >>> from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ...     ExportLogsServiceRequest)
    >>> request = ExportLogsServiceRequest(resource_logs=[{"scope_logs": [{"log_records": [
    ...     {"time_unix_nano": 1700000000000000000, "severity_number": 17,
    ...      "body": {"string_value": "payment declined"}, "span_id": b"\\xee\\xe1\\x9b\\x7e"}]}]}])
    >>> parse_request(request.SerializeToString(), "logs")
    {'resourceLogs': [{'scopeLogs': [{'logRecords': [{'timeUnixNano': 1700000000000000000, \
'severityNumber': 17, 'body': {'stringValue': 'payment declined'}, 'spanId': 'eee19b7e'}]}]}]}
    >>> parse_request(b"\\n\\x05\\x12\\xff", "metrics")
    Traceback (most recent call last):
    ...
    ingest.exceptions.DecodeError: invalid_value: otlp_proto: cannot parse as an \
ExportMetricsServiceRequest: Wire format was corrupt
    """
    if not payload:
        raise DecodeError(Reason.EMPTY, f"{FORMAT}: message is empty")
    cls, resources = _REQUESTS[signal]
    name = cls.DESCRIPTOR.name
    try:
        request = cls.FromString(payload)
    except ProtobufDecodeError as exc:
        _reject_other_signal(payload, signal)
        cause = str(exc).rsplit(": ", 1)[-1]  # what comes before names the type again
        raise DecodeError(
            Reason.INVALID_VALUE, f"{FORMAT}: cannot parse as an {name}: {cause}"
        ) from None
    if not getattr(request, resources):
        _reject_other_signal(payload, signal)
        raise DecodeError(
            Reason.UNKNOWN_FORMAT, f"{FORMAT}: a binary message that is no {name}: no resource"
        )
    if len(UnknownFieldSet(request)):
        _reject_other_signal(payload, signal)
        raise DecodeError(
            Reason.UNKNOWN_FORMAT,
            f"{FORMAT}: a binary message that is no {name}: it has fields the request has not",
        )
    return to_json_shape(request)


def _reject_other_signal(payload: bytes, signal: Signal) -> None:
    other: Signal = "logs" if signal == "metrics" else "metrics"
    cls, resources = _REQUESTS[other]
    try:
        request = cls.FromString(payload)
    except ProtobufDecodeError:
        return
    if getattr(request, resources) and not len(UnknownFieldSet(request)):
        raise DecodeError(
            Reason.UNKNOWN_FORMAT,
            f"{FORMAT}: an {cls.DESCRIPTOR.name} on a {signal} topic",
        )


def _kind(field: Any, value: Any) -> tuple[str, int]:
    # told by the value rather than by the descriptor, whose API for repeated fields
    # differs across protobuf releases
    if isinstance(value, Message):
        kind = _MESSAGE
    elif field.message_type is not None:
        kind = _ATTRIBUTES if field.message_type.full_name == _KEY_VALUE else _MESSAGES
    elif isinstance(value, bytes):
        kind = _HEX if field.name in _HEX_FIELDS else _BASE64
    elif field.cpp_type == field.CPPTYPE_DOUBLE:
        kind = _DOUBLE if isinstance(value, float) else _DOUBLES
    elif isinstance(value, bool | int | str):
        kind = _SCALAR
    else:
        kind = _SCALARS
    found = _KINDS[field] = (field.json_name, kind)
    return found


def to_json_shape(message: Message) -> dict[str, Any]:
    """A message as its OTLP/JSON encoding parses (64-bit integers as integers).

    >>> from opentelemetry.proto.common.v1.common_pb2 import KeyValue
    >>> to_json_shape(KeyValue(key="retries", value={"int_value": 3}))
    {'key': 'retries', 'value': {'intValue': 3}}
    """
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        name, kind = _KINDS.get(field) or _kind(field, value)
        if kind == _SCALAR:
            out[name] = value
        elif kind == _ATTRIBUTES:
            out[name] = [_key_value(item) for item in value]
        elif kind == _MESSAGES:
            out[name] = [to_json_shape(item) for item in value]
        elif kind == _MESSAGE:
            out[name] = to_json_shape(value)
        elif kind == _DOUBLE:
            out[name] = value if math.isfinite(value) else _special(value)
        elif kind == _DOUBLES:
            out[name] = [v if math.isfinite(v) else _special(v) for v in value]
        elif kind == _SCALARS:
            out[name] = list(value)
        elif kind == _HEX:
            out[name] = value.hex()
        else:
            out[name] = base64.b64encode(value).decode()
    return out


def _key_value(item: Any) -> dict[str, Any]:
    # attributes are most of a request: read directly, the shape ListFields would give
    out: dict[str, Any] = {"key": item.key} if item.key else {}
    if item.HasField("value"):
        value = item.value
        which = value.WhichOneof("value")
        name = _ANY_VALUE_NAMES.get(which) if which else None
        out["value"] = {name: getattr(value, which)} if name else to_json_shape(value)
    return out


def _special(value: float) -> str:
    """The Protobuf JSON string of a double that is not finite."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
