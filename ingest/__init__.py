"""Decoding of telemetry as it arrives on Kafka into domain events.

Pure: bytes in, :mod:`detectors.events` objects (or a typed error) out.
"""
