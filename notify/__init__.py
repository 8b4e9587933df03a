"""Notifications: incidents to Slack (Block Kit messages, threads, charts, buttons).

The decision logic (what to post, update or reply, collapsing, retry classification,
signature checks) is pure and tested without a network; :mod:`notify.slack.transport`
holds the only code that speaks HTTP. See ``docs/slack.md``.
"""
