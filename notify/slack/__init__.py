"""Slack: Block Kit rendering, delivery with retries and state, interactive buttons."""
