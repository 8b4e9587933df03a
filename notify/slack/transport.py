"""The only code here that speaks HTTP: Slack's Web API and incoming webhooks.

Each method makes one attempt and raises :class:`~notify.exceptions.SlackCallFailed`
with the :class:`~notify.slack.retry.CallOutcome` when it does not succeed; retrying is
the notifier's decision. slack-sdk's own retry handlers are turned off for that reason.
Secrets are kept out of logs: slack-sdk gets a logger that redacts them (its debug
output includes the webhook URL).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from notify.exceptions import SlackCallFailed, UnsupportedOperation
from notify.slack.render import SlackMessage
from notify.slack.retry import CallOutcome

REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replace every secret in a log record's message (and drop its arguments).

    >>> f = RedactSecrets(["xoxb-123"])
    >>> rec = logging.LogRecord("x", logging.INFO, "", 0, "token %s", ("xoxb-123",), None)
    >>> f.filter(rec), rec.getMessage()
    (True, 'token [redacted]')
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        return True


def redacting_logger(name: str, secrets: list[str]) -> logging.Logger:
    """A logger whose records never contain ``secrets``."""
    logger = logging.getLogger(name)
    for old in [f for f in logger.filters if isinstance(f, RedactSecrets)]:
        logger.removeFilter(old)
    logger.addFilter(RedactSecrets(secrets))
    return logger


class SlackTransport(Protocol):
    """What the notifier needs from Slack; one attempt per call."""

    async def post(self, channel: str, message: SlackMessage) -> str:
        """Post a message; returns its ``ts`` (empty when the transport has none)."""
        ...

    async def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        """Replace a message in place."""
        ...

    async def reply(self, channel: str, thread_ts: str, text: str) -> str:
        """Post a thread reply; returns its ``ts``."""
        ...

    async def upload(
        self, channel: str, thread_ts: str, content: bytes, *, filename: str, title: str
    ) -> None:
        """Upload a file into a thread."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class WebApiTransport:
    """Slack's Web API with a bot token (``chat:write``, ``files:write``).

    Parameters
    ----------
    token
        Bot token.
    base_url
        API root (``https://slack.com/api/`` or a local server's).
    timeout_s
        Time allowed per HTTP call.
    username, icon_emoji
        Optional message signature.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str,
        timeout_s: float,
        username: str | None = None,
        icon_emoji: str | None = None,
    ) -> None:
        self._timeout_s = timeout_s
        self._username = username
        self._icon_emoji = icon_emoji
        self._client = AsyncWebClient(
            token=token,
            base_url=base_url,
            timeout=timeout_s,  # type: ignore[arg-type]  # aiohttp takes fractions
            retry_handlers=[],
            logger=redacting_logger("notify.slack.sdk", [token]),
        )

    async def post(self, channel: str, message: SlackMessage) -> str:
        """``chat.postMessage``; returns the message ``ts``."""
        data = await self._call(
            "chat.postMessage",
            self._client.chat_postMessage(
                channel=channel,
                username=self._username,
                icon_emoji=self._icon_emoji,
                **message.payload(),
            ),
        )
        return str(data.get("ts", ""))

    async def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        """``chat.update``."""
        await self._call(
            "chat.update", self._client.chat_update(channel=channel, ts=ts, **message.payload())
        )

    async def reply(self, channel: str, thread_ts: str, text: str) -> str:
        """``chat.postMessage`` with ``thread_ts``."""
        data = await self._call(
            "chat.postMessage",
            self._client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=text,
                username=self._username,
                icon_emoji=self._icon_emoji,
            ),
        )
        return str(data.get("ts", ""))

    async def upload(
        self, channel: str, thread_ts: str, content: bytes, *, filename: str, title: str
    ) -> None:
        """What ``files_upload_v2`` does, one step at a time so each failure is classified:
        ``files.getUploadURLExternal``, POST of the bytes, ``files.completeUploadExternal``."""
        ticket = await self._call(
            "files.getUploadURLExternal",
            self._client.files_getUploadURLExternal(filename=filename, length=len(content)),
        )
        upload_url, file_id = str(ticket.get("upload_url", "")), str(ticket.get("file_id", ""))
        await self._post_bytes(upload_url, content)
        await self._call(
            "files.completeUploadExternal",
            self._client.files_completeUploadExternal(
                files=[{"id": file_id, "title": title}], channel_id=channel, thread_ts=thread_ts
            ),
        )

    async def close(self) -> None:
        """Nothing held between calls (slack-sdk opens a session per call)."""

    async def _post_bytes(self, url: str, content: bytes) -> None:
        timeout = aiohttp.ClientTimeout(total=self._timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, data=content) as resp,
            ):
                body = await resp.text()
                if resp.status != 200:
                    raise SlackCallFailed(
                        "files.upload",
                        CallOutcome(
                            resp.status,
                            None,
                            _retry_after(resp.headers.get("Retry-After")),
                        ),
                    )
                del body
        except TimeoutError as exc:
            raise SlackCallFailed("files.upload", CallOutcome(None, failure="timeout")) from exc
        except aiohttp.ClientError as exc:
            raise SlackCallFailed("files.upload", CallOutcome(None, failure="connection")) from exc

    @staticmethod
    async def _call(method: str, call: Any) -> dict[str, Any]:
        try:
            response = await call
        except SlackApiError as exc:
            resp = exc.response
            data = resp.data if isinstance(resp.data, dict) else {}
            error = data.get("error")
            raise SlackCallFailed(
                method,
                CallOutcome(
                    int(resp.status_code),
                    str(error) if error else None,
                    _retry_after(resp.headers.get("Retry-After") if resp.headers else None),
                ),
            ) from None
        except TimeoutError as exc:
            raise SlackCallFailed(method, CallOutcome(None, failure="timeout")) from exc
        except aiohttp.ClientError as exc:
            raise SlackCallFailed(method, CallOutcome(None, failure="connection")) from exc
        data = response.data
        return data if isinstance(data, dict) else {}


class WebhookTransport:
    """An incoming webhook: post only (no ``ts`` comes back, so no update nor thread).

    Parameters
    ----------
    url
        The webhook URL (a secret: it is redacted from logs).
    timeout_s
        Time allowed per HTTP call.
    username, icon_emoji
        Optional message signature (ignored by webhooks of newer Slack apps).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        username: str | None = None,
        icon_emoji: str | None = None,
    ) -> None:
        self._extra: dict[str, str] = {}
        if username:
            self._extra["username"] = username
        if icon_emoji:
            self._extra["icon_emoji"] = icon_emoji
        self._client = AsyncWebhookClient(
            url=url,
            timeout=timeout_s,  # type: ignore[arg-type]  # aiohttp takes fractions
            retry_handlers=[],
            logger=redacting_logger("notify.slack.sdk.webhook", [url]),
        )

    async def post(self, channel: str, message: SlackMessage) -> str:
        """POST the message (the webhook's own channel is used; ``channel`` is ignored)."""
        del channel
        try:
            resp = await self._client.send_dict({**message.payload(), **self._extra})
        except TimeoutError as exc:
            raise SlackCallFailed("webhook", CallOutcome(None, failure="timeout")) from exc
        except aiohttp.ClientError as exc:
            raise SlackCallFailed("webhook", CallOutcome(None, failure="connection")) from exc
        if resp.status_code != 200:
            body = (resp.body or "").strip()
            raise SlackCallFailed(
                "webhook",
                CallOutcome(
                    resp.status_code,
                    body[:100] or None,
                    _retry_after((resp.headers or {}).get("Retry-After")),
                ),
            )
        return ""

    async def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        """Not possible with a webhook."""
        raise UnsupportedOperation("an incoming webhook cannot update a message")

    async def reply(self, channel: str, thread_ts: str, text: str) -> str:
        """Not possible with a webhook."""
        raise UnsupportedOperation("an incoming webhook cannot reply in a thread")

    async def upload(
        self, channel: str, thread_ts: str, content: bytes, *, filename: str, title: str
    ) -> None:
        """Not possible with a webhook."""
        raise UnsupportedOperation("an incoming webhook cannot upload files")

    async def close(self) -> None:
        """Nothing held between calls."""


def _retry_after(value: object) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(str(value)))
    except ValueError:
        return None
