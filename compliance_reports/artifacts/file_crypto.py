"""AES-256-GCM encryption of exported files.

Key: 32 bytes read from the environment variable a report configuration names
(`export.encryption_key_env`), written as 64 hexadecimal characters or as base64 (standard or
URL-safe alphabet) of exactly 32 bytes. Anything else is rejected with an error naming the
variable, never showing its value. Generate one with `openssl rand -hex 32`.

Key id: the first 16 hex characters of SHA-256(key), recorded in every file and the manifest
so an operator can tell which key a file needs without trying them all.

File format (`<original name>.enc`):

    offset  size  content
    0       6     magic b"CRENC1"
    6       8     key id (the 8 bytes whose hex is the key id)
    14      12    nonce: 96 random bits from os.urandom, fresh for every file
    26      n+16  AES-256-GCM ciphertext followed by its 16-byte tag

The associated data authenticates magic + key id + the original file name (UTF-8), so a
changed byte anywhere, a truncated file, a swapped key id or a renamed file all fail
decryption. Because the nonce is fresh, encrypting the same plaintext twice gives different
files; the byte-identical guarantee of the exporters applies to the plaintext.

Small files go through cryptography's one-shot AESGCM; files above STREAM_THRESHOLD are
processed in chunks with the streaming GCM interface, which produces the same format. When
decrypting in chunks the plaintext is written to a temporary file that only becomes the output
once the tag has verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from compliance_reports.artifacts.checksums import HashingWriter

MAGIC = b"CRENC1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES
SUFFIX = ".enc"
STREAM_THRESHOLD = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")
_B64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class EncryptionKeyError(ValueError):
    """The key variable is missing or does not hold a 32-byte key."""


class DecryptionError(ValueError):
    """The file is not ours, needs another key, or failed authentication."""


def parse_key(value: str, variable: str = "the key") -> bytes:
    """32 key bytes from 64 hex characters or base64; errors name `variable`, not the value.

    Decoded strictly: base64 (standard or URL-safe alphabet, padding optional) must consist of
    alphabet characters only and re-encode to itself, and must give exactly 32 bytes. A lenient
    decoder would skip the characters it does not know, so `"!!!!" + 43*"A" + "$$$"` would become
    an all-zero key.
    """
    text = value.strip()
    if _HEX_RE.fullmatch(text):
        return bytes.fromhex(text)
    raw = _strict_base64(text)
    if raw is not None and len(raw) == 32:
        return raw
    raise EncryptionKeyError(
        f"environment variable {variable} must hold a 32-byte AES-256 key written as 64 "
        f"hexadecimal characters or as base64 of 32 bytes (it holds {len(text)} characters "
        "that are neither); generate one with `openssl rand -hex 32`"
    )


def _strict_base64(text: str) -> bytes | None:
    for alphabet, encode, decode in (
        (_B64_RE, base64.b64encode, base64.b64decode),
        (_B64URL_RE, base64.urlsafe_b64encode, base64.urlsafe_b64decode),
    ):
        if not alphabet.fullmatch(text):
            continue
        padded = text + "=" * (-len(text) % 4)
        try:
            raw = decode(padded.encode("ascii"))
        except (binascii.Error, ValueError):
            continue
        if encode(raw).decode("ascii") == padded:  # canonical: no stray bits
            return raw
    return None


def key_id_for(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[: KEY_ID_BYTES * 2]


def load_key(variable: str, lookup: Callable[[str], str | None] = os.environ.get) -> tuple[bytes, str]:
    """(key, key id) from the environment variable `variable`."""
    if not variable:
        raise EncryptionKeyError("no environment variable is named for the encryption key")
    value = lookup(variable)
    if value is None or not value.strip():
        raise EncryptionKeyError(
            f"environment variable {variable} (named as the encryption key) is not set or empty"
        )
    key = parse_key(value, variable)
    return key, key_id_for(key)


def _aad(key_id: bytes, original_name: str) -> bytes:
    return MAGIC + key_id + original_name.encode("utf-8")


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise EncryptionKeyError("an AES-256 key is exactly 32 bytes")


def encrypt_bytes(data: bytes, key: bytes, original_name: str, *, nonce: bytes | None = None) -> bytes:
    """The encrypted-file bytes for `data` (named `original_name`)."""
    _check_key(key)
    key_id = bytes.fromhex(key_id_for(key))
    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError("the nonce is 12 bytes")
    return MAGIC + key_id + nonce + AESGCM(bytes(key)).encrypt(nonce, data, _aad(key_id, original_name))


def encrypt_file(path: Path, key: bytes, key_id: str | None = None, dest: Path | None = None,
                 digest=None) -> Path:
    """Encrypt `path` into `dest` (default `<path>.enc`); the original name is authenticated.
    `digest` (a hashlib object) is fed every byte written."""
    _check_key(key)
    path = Path(path)
    actual_id = key_id_for(key)
    if key_id is not None and key_id != actual_id:
        raise EncryptionKeyError(f"key id {key_id} does not belong to the given key ({actual_id})")
    dest = Path(dest) if dest is not None else path.with_name(path.name + SUFFIX)
    key_id_raw = bytes.fromhex(actual_id)
    nonce = os.urandom(NONCE_BYTES)
    aad = _aad(key_id_raw, path.name)
    if path.stat().st_size <= STREAM_THRESHOLD:
        payload = AESGCM(bytes(key)).encrypt(nonce, path.read_bytes(), aad)
        with open(dest, "wb") as raw:
            out = raw if digest is None else HashingWriter(raw, digest)
            out.write(MAGIC + key_id_raw + nonce)
            out.write(payload)
        return dest
    encryptor = Cipher(algorithms.AES(bytes(key)), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    with open(path, "rb") as fin, open(dest, "wb") as raw:
        out = raw if digest is None else HashingWriter(raw, digest)
        out.write(MAGIC + key_id_raw + nonce)
        while chunk := fin.read(_CHUNK):
            out.write(encryptor.update(chunk))
        out.write(encryptor.finalize())
        out.write(encryptor.tag)
    return dest


def read_header(head: bytes) -> tuple[str, bytes]:
    """(key id, nonce) of an encrypted file's first HEADER_BYTES bytes."""
    if len(head) < HEADER_BYTES or not head.startswith(MAGIC):
        raise DecryptionError("not an encrypted compliance report file (the CRENC1 header is missing)")
    key_id = head[len(MAGIC): len(MAGIC) + KEY_ID_BYTES]
    nonce = head[len(MAGIC) + KEY_ID_BYTES: HEADER_BYTES]
    return key_id.hex(), nonce


def _original_name(path: Path, original_name: str | None) -> str:
    if original_name:
        return original_name
    if path.name.endswith(SUFFIX) and len(path.name) > len(SUFFIX):
        return path.name[: -len(SUFFIX)]
    raise DecryptionError(
        f"{path.name} does not end in {SUFFIX}: give the original file name it was encrypted under"
    )


def _key_matches(file_key_id: str, key: bytes) -> None:
    own = key_id_for(key)
    if not hmac.compare_digest(file_key_id, own):
        raise DecryptionError(
            f"the file was encrypted with key id {file_key_id}, but the given key has id {own}"
        )


_AUTH_FAILED = (
    "authentication failed: the file was altered, truncated or renamed since it was encrypted "
    "(or was encrypted under another file name)"
)


def decrypt_bytes(data: bytes, key: bytes, original_name: str) -> bytes:
    """Plaintext of encrypted-file bytes; DecryptionError when anything does not verify."""
    _check_key(key)
    if len(data) < HEADER_BYTES + TAG_BYTES:
        raise DecryptionError("the file is too short to be an encrypted compliance report file")
    key_id, nonce = read_header(data[:HEADER_BYTES])
    _key_matches(key_id, key)
    try:
        return AESGCM(bytes(key)).decrypt(nonce, data[HEADER_BYTES:], _aad(bytes.fromhex(key_id), original_name))
    except InvalidTag:
        raise DecryptionError(_AUTH_FAILED) from None


def decrypt_file(
    path: Path, key: bytes, dest: Path | None = None, original_name: str | None = None
) -> Path:
    """Decrypt `path` (`name.enc`) into `dest` (default: `name` next to it); returns dest.

    Nothing is left at `dest` unless the whole file authenticates.
    """
    _check_key(key)
    path = Path(path)
    name = _original_name(path, original_name)
    dest = Path(dest) if dest is not None else path.with_name(name)
    size = path.stat().st_size
    if size < HEADER_BYTES + TAG_BYTES:
        raise DecryptionError("the file is too short to be an encrypted compliance report file")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        if size <= STREAM_THRESHOLD + HEADER_BYTES + TAG_BYTES:
            plain = decrypt_bytes(path.read_bytes(), key, name)
            tmp.write_bytes(plain)
        else:
            _decrypt_stream(path, key, name, size, tmp)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def _decrypt_stream(path: Path, key: bytes, name: str, size: int, tmp: Path) -> None:
    with open(path, "rb") as fin:
        key_id, nonce = read_header(fin.read(HEADER_BYTES))
        _key_matches(key_id, key)
        fin.seek(size - TAG_BYTES)
        tag = fin.read(TAG_BYTES)
        fin.seek(HEADER_BYTES)
        decryptor = Cipher(algorithms.AES(bytes(key)), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(_aad(bytes.fromhex(key_id), name))
        remaining = size - HEADER_BYTES - TAG_BYTES
        with open(tmp, "wb") as out:
            while remaining:
                chunk = fin.read(min(_CHUNK, remaining))
                if not chunk:
                    raise DecryptionError("the file ended early")
                remaining -= len(chunk)
                out.write(decryptor.update(chunk))
            try:
                out.write(decryptor.finalize())
            except InvalidTag:
                raise DecryptionError(_AUTH_FAILED) from None
