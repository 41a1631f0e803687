"""S3-compatible clients (AWS, MinIO, GCS interoperability) with credentials from the environment."""

from __future__ import annotations

import os

import boto3
from botocore.config import Config


def make_s3_client(
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id_env: str | None = None,
    secret_access_key_env: str | None = None,
    proxies: dict[str, str] | None = None,
):
    """A boto3 S3 client; credentials are read from the named variables at call time.

    Without names, boto3's default chain applies (environment, profile, instance role).
    `proxies={}` ignores proxies from the environment (None: botocore's default).
    """
    kwargs: dict = {
        "endpoint_url": endpoint_url,
        "region_name": region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        # Path-style addressing works with MinIO and moto as well as AWS.
        "config": Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}, proxies=proxies),
    }
    for name, key in ((access_key_id_env, "aws_access_key_id"), (secret_access_key_env, "aws_secret_access_key")):
        if name:
            value = os.environ.get(name)
            if not value:
                raise RuntimeError(f"environment variable {name} (named in the configuration) is not set")
            kwargs[key] = value
    return boto3.client("s3", **kwargs)
