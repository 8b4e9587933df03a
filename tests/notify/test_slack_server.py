"""The fake Slack server answers slack-sdk's own clients the way Slack does."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from tests.slack_server import FakeSlack


def test_threaded_server_speaks_to_the_sync_sdk() -> None:
    with FakeSlack.threaded() as slack:
        client = WebClient(token=slack.token, base_url=slack.base_url)
        assert client.auth_test()["ok"]
        posted = client.chat_postMessage(channel="C1", text="hello")
        client.chat_update(channel="C1", ts=posted["ts"], text="hello again")
        client.chat_postMessage(channel="C1", text="in thread", thread_ts=posted["ts"])
        # What slack-sdk's files_upload_v2 does: three calls, bytes to the upload URL.
        client.files_upload_v2(
            channel="C1",
            thread_ts=posted["ts"],
            content=b"\x89PNG...",
            filename="c.png",
            title="chart",
        )
        assert [c.method for c in slack.calls] == [
            "auth.test",
            "chat.postMessage",
            "chat.update",
            "chat.postMessage",
            "files.getUploadURLExternal",
            "upload",
            "files.completeUploadExternal",
        ]
        [top] = slack.top_level_messages()
        assert top.current["text"] == "hello again"
        assert [m.params["text"] for m in slack.thread(top.ts)] == ["in thread"]
        [stored] = slack.files.values()
        assert stored["content"] == b"\x89PNG..." and stored["thread_ts"] == top.ts
        assert all("Authorization" not in c.headers for c in slack.calls)


def test_token_is_checked_like_slack() -> None:
    with FakeSlack.threaded() as slack:
        for token, error in ((None, "not_authed"), ("xoxb-nope", "invalid_auth")):
            client = WebClient(token=token, base_url=slack.base_url)
            with pytest.raises(SlackApiError) as info:
                client.chat_postMessage(channel="C1", text="x")
            assert info.value.response["error"] == error
        assert slack.messages == {}


def test_faults_for_n_calls_then_until_healed() -> None:
    with FakeSlack.threaded() as slack:
        client = WebClient(token=slack.token, base_url=slack.base_url, retry_handlers=[])
        slack.fail(429, times=1, retry_after=3)
        with pytest.raises(SlackApiError) as info:
            client.chat_postMessage(channel="C1", text="x")
        assert info.value.response.status_code == 429
        assert info.value.response.headers["Retry-After"] == "3"
        client.chat_postMessage(channel="C1", text="x")
        slack.fail(500, times=None)
        for _ in range(3):
            with pytest.raises(SlackApiError):
                client.chat_postMessage(channel="C1", text="x")
        slack.heal()
        client.chat_postMessage(channel="C1", text="x")
        assert [c.status for c in slack.calls] == [429, 200, 500, 500, 500, 200]


def test_hang_gives_no_answer() -> None:
    with FakeSlack.threaded() as slack:
        slack.hang(times=1, seconds=2.0)
        client = WebClient(token=slack.token, base_url=slack.base_url, timeout=1)
        with pytest.raises(TimeoutError):
            client.chat_postMessage(channel="C1", text="x")
        assert slack.calls[0].status == 0 and slack.messages == {}


def test_webhook_path_is_the_secret() -> None:
    with FakeSlack.threaded() as slack:
        assert WebhookClient(slack.webhook_url).send(text="hi").status_code == 200
        wrong = WebhookClient(slack.webhook_url.rsplit("/", 1)[0] + "/guess")
        response = wrong.send(text="hi")
        assert (response.status_code, response.body) == (404, "no_service")
        assert slack.webhook_posts == [{"text": "hi"}]
