"""The audit log's own domain: the source-compatible row hash and chain, the window event
stream, action categories, and integrity verification with signed checkpoints."""
