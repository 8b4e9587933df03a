"""Errors of the streaming layer. Every one derives from :class:`StreamsError`."""


class StreamsError(Exception):
    """Root of the errors raised by :mod:`streams`."""


class ConfigError(StreamsError):
    """The configuration file or environment has a bad value; the message names it."""


class LocalKafkaError(StreamsError):
    """The local broker cannot be fetched, formatted or started; the message says why."""


class EnvironmentProblem(StreamsError):
    """The machine is not as the worker needs it (a folder it cannot create, a port in use,
    no broker); the message names what and the setting that changes it."""
