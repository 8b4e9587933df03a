"""Online anomaly detectors for metric series and log streams.

Pure: no Kafka, no HTTP. Everything here runs on plain Python values and can be
tested in microseconds.
"""
