"""Stored report artifacts: the artifact store (local folder or S3), the signed manifest,
file encryption and compression, checksums, and the published set that delivery sends."""
