"""The outbox and its delivery: queued messages in, sent (or failed) messages out."""
