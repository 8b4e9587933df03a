"""Settings of the Slack notifier: one frozen model, composed into the application settings.

Secrets are :class:`pydantic.SecretStr`: they never show in ``repr``, ``str`` or logs.
Which transport is used follows from what is configured: a bot token (Web API: post,
update, thread replies, uploads), else an incoming webhook (post only), else the
terminal/file renderer.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

from rca.model import Incident, Severity


class SlackRoute(BaseModel, frozen=True, extra="forbid"):
    """Send incidents that match to ``channel``; the first matching route wins.

    Parameters
    ----------
    channel
        Channel id or name (``C0123...`` or ``#ops``).
    severities
        Match only these severities (empty: any).
    min_severity
        Match only incidents at least this severe.
    services
        Match incidents affecting at least one of these services (empty: any).

    >>> from rca.model import IncidentState
    >>> route = SlackRoute(channel="#db", services=["postgres"], min_severity="critical")
    >>> inc = Incident(id="i", version=1, state=IncidentState.OPENED,
    ...                severity=Severity.CRITICAL, title="t", services=("api", "postgres"),
    ...                opened_at=0.0, updated_at=0.0)
    >>> route.matches(inc)
    True
    """

    channel: str = Field(min_length=1)
    severities: tuple[Severity, ...] = ()
    min_severity: Severity | None = None
    services: tuple[str, ...] = ()

    def matches(self, incident: Incident) -> bool:
        """True if the incident goes to this route's channel."""
        if self.severities and incident.severity not in self.severities:
            return False
        if self.min_severity is not None and incident.severity.rank < self.min_severity.rank:
            return False
        return not self.services or any(s in self.services for s in incident.services)


class RetryConfig(BaseModel, frozen=True, extra="forbid"):
    """How hard one call is retried before :class:`~notify.exceptions.SlackUnavailable`.

    Parameters
    ----------
    max_attempts
        Calls per Slack method call, the first one included.
    backoff_s
        First wait after a 5xx or a timeout; doubled at every attempt (with up to 10 %
        jitter), capped at ``max_backoff_s``.
    max_backoff_s
        Longest wait between two attempts, also the cap on a 429's ``Retry-After``.
    timeout_s
        Time allowed for one HTTP call.
    """

    max_attempts: int = Field(default=4, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)


class ChartConfig(BaseModel, frozen=True, extra="forbid"):
    """The PNG chart of the anomalous series posted into an incident's thread.

    Parameters
    ----------
    enabled
        Draw and upload charts (bot token only: webhooks cannot upload).
    points
        Points kept per anomalous series (ring buffer).
    lookback_points
        Points kept per ordinary series, so that a chart shows the series before its
        onset. Memory: about 12 bytes per point per series.
    max_series
        Bound on series kept with their short history (least recently seen dropped).
    max_anomalous
        Bound on series kept with the long history.
    retain_s
        How long a series keeps its long history after its latest anomaly.
    width_in, height_in, dpi
        Picture size.
    """

    enabled: bool = True
    points: int = Field(default=300, ge=10, le=100_000)
    lookback_points: int = Field(default=60, ge=2, le=10_000)
    max_series: int = Field(default=100_000, ge=1)
    max_anomalous: int = Field(default=500, ge=1)
    retain_s: float = Field(default=3600.0, gt=0)
    width_in: float = Field(default=6.0, gt=0)
    height_in: float = Field(default=2.4, gt=0)
    dpi: int = Field(default=100, ge=30, le=300)


class SlackConfig(BaseModel, frozen=True, extra="forbid"):
    """Settings of the Slack notifier (the ``slack`` block of the application settings).

    Parameters
    ----------
    bot_token
        Bot token (``xoxb-...``); enables the Web API: post, update, threads, uploads.
    webhook_url
        Incoming webhook URL, used when there is no bot token: one new message per
        post, no update, no thread, no upload (see ``docs/slack.md``).
    signing_secret
        Verifies the requests Slack sends when someone presses a button.
    base_url
        Web API root; point it at a local server in tests.
    default_channel
        Channel of incidents that match no route.
    routes
        Checked in order; the first route that matches gives the channel.
    username, icon_emoji
        How messages are signed (bot token with ``chat:write.customize``, or webhook).
    thread_replies
        Post a thread reply for each notable timeline event.
    min_severity
        Incidents below this severity are not posted at all.
    notify_predicted
        Post incidents that rest only on forecasts.
    retry
        Retry and timeout policy.
    chart
        Chart settings.
    render_dir
        Where the file renderer writes (one JSON and one text file per message) when no
        credentials are configured; ``None``: terminal only.
    render_terminal
        Print rendered messages on the terminal when no credentials are configured.
    """

    bot_token: SecretStr | None = None
    webhook_url: SecretStr | None = None
    signing_secret: SecretStr | None = None
    base_url: str = "https://slack.com/api/"
    default_channel: str = "#incidents"
    routes: tuple[SlackRoute, ...] = ()
    username: str | None = None
    icon_emoji: str | None = None
    thread_replies: bool = True
    min_severity: Severity = Severity.INFO
    notify_predicted: bool = True
    retry: RetryConfig = RetryConfig()
    chart: ChartConfig = ChartConfig()
    render_dir: str | None = None
    render_terminal: bool = True

    @field_validator("base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @property
    def mode(self) -> str:
        """``"web_api"``, ``"webhook"`` or ``"render"`` (no credentials)."""
        if self.bot_token is not None and self.bot_token.get_secret_value():
            return "web_api"
        if self.webhook_url is not None and self.webhook_url.get_secret_value():
            return "webhook"
        return "render"

    @property
    def interactive(self) -> bool:
        """Whether messages carry buttons: with a bot token and a signing secret (the
        worker can verify the presses and update the message), and in previews."""
        if self.mode == "render":
            return True
        secret = self.signing_secret
        return self.mode == "web_api" and secret is not None and bool(secret.get_secret_value())

    def channel_for(self, incident: Incident) -> str:
        """The channel an incident goes to (first matching route, else the default)."""
        for route in self.routes:
            if route.matches(incident):
                return route.channel
        return self.default_channel
