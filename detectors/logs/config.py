"""Settings of log template mining and log anomaly detection."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MinerConfig(BaseModel, frozen=True, extra="forbid"):
    """Template mining, per service.

    Parameters
    ----------
    max_templates
        Cap on templates per service; lines that would open a template past the cap are
        counted in ``template_cap_hits`` and mapped to the overflow template (id 0).
    merge_after
        A token position becomes a parameter once this many distinct values were seen
        there in templates that are otherwise identical.
    pair_merge_after
        Two positions become parameters together once templates that differ at exactly
        those two positions show this many distinct values at each (``from alice to db1``,
        ``from bob to web2``, ...). Set high: state machines (``from NEW to RUNNING``)
        stay apart.
    min_constant_ratio
        A template keeps at least this share of constant tokens: short lines such as
        ``running`` / ``blocked`` are never generalised into ``<*>``.
    cache_size
        Entries of the masked-line cache (cleared when full).
    """

    max_templates: int = Field(default=1000, ge=1)
    merge_after: int = Field(default=4, ge=2)
    pair_merge_after: int = Field(default=10, ge=2)
    min_constant_ratio: float = Field(default=0.5, ge=0.0, le=1.0)
    cache_size: int = Field(default=10_000, ge=0)


class LogDetectionConfig(BaseModel, frozen=True, extra="forbid"):
    """Log anomaly detection, per service.

    Parameters
    ----------
    miner
        Template mining settings.
    warmup_lines
        New templates seen in a service's first ``warmup_lines`` lines are learned
        silently.
    new_template_threshold
        Minimum severity (0..1) of a new template for it to be reported: 0.45 lets
        through any new error-level template, and lines of lower levels that hold a
        failure word.
    alert_severity
        Severity from which a single line counts as an alert on its own
        (:attr:`LineVerdict.alert`); 0.85 means a level of error or worse together with a
        failure word.
    bucket_seconds
        Width of the count buckets of rate detection (event time).
    baseline_halflife_buckets
        Half-life, in buckets, of the exponentially weighted rate baseline.
    warmup_buckets
        Buckets a signal must have been observed before rate departures are reported.
    rate_z
        Departure (in Poisson-corrected standard deviations) above the baseline that
        counts as a rate anomaly.
    min_count
        Fewest lines in a bucket for a rate or burst anomaly.
    burst_ratio
        A template whose bucket count reaches ``burst_ratio`` times its baseline while the
        baseline is below one line per bucket is reported as a burst.
    peak_halflife_buckets
        Half-life of the remembered peak count of a signal (one day of one-minute
        buckets by default).
    peak_ratio
        A departure is only reported when the count also exceeds ``peak_ratio`` times the
        remembered peak: an hourly batch job that logs a burst every hour is reported the
        first time, not every hour.
    max_examples
        Example lines kept per template (the latest ones).
    max_tracked_templates
        Templates per service whose rates are tracked (the most recently seen ones).
    max_services
        Services one monitor keeps; lines of a new service beyond it are not mined nor
        tracked (they still get a severity) and count in ``services_rejected``.
    failure_words
        Words that raise the severity of a line (case-insensitive, whole words).
    caller_errors
        Phrases that mark a caller's mistake rather than a fault of the system (the errno
        texts of ENOENT, EACCES, EPERM, ENOEXEC, EINVAL, EEXIST, ENOTDIR, EISDIR and the
        HTTP 4xx reasons): a line holding one gets no failure-word share of severity.
    """

    miner: MinerConfig = MinerConfig()
    warmup_lines: int = Field(default=200, ge=0)
    new_template_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    alert_severity: float = Field(default=0.85, ge=0.0, le=1.0)
    bucket_seconds: float = Field(default=60.0, gt=0)
    baseline_halflife_buckets: float = Field(default=30.0, gt=0)
    warmup_buckets: int = Field(default=10, ge=1)
    rate_z: float = Field(default=4.0, gt=0)
    min_count: int = Field(default=5, ge=1)
    burst_ratio: float = Field(default=10.0, gt=1)
    peak_halflife_buckets: float = Field(default=1440.0, gt=0)
    peak_ratio: float = Field(default=1.5, ge=0)
    max_examples: int = Field(default=3, ge=1)
    max_tracked_templates: int = Field(default=500, ge=1)
    max_services: int = Field(default=10_000, ge=1)
    failure_words: tuple[str, ...] = (
        "error",
        "errors",
        "fail",
        "failed",
        "failure",
        "failures",
        "fatal",
        "panic",
        "abort",
        "aborted",
        "exception",
        "timeout",
        "timed out",
        "refused",
        "denied",
        "unreachable",
        "crash",
        "crashed",
        "killed",
        "terminated",
        "severed",
        "corrupt",
        "corrupted",
        "interrupt",
        "unavailable",
        "oom",
        "out of memory",
    )
    caller_errors: tuple[str, ...] = (
        "no such file or directory",
        "permission denied",
        "operation not permitted",
        "exec format error",
        "invalid argument",
        "file exists",
        "not a directory",
        "is a directory",
        "bad request",
        "unauthorized",
        "forbidden",
        "not found",
    )
