"""AES-256-GCM file encryption: round trip, tamper detection, keys, CLI."""

from __future__ import annotations

import base64
import json
import os

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from compliance_reports.artifacts import file_crypto
from compliance_reports.artifacts.file_crypto import DecryptionError, EncryptionKeyError
from compliance_reports.cli.files import decrypt

KEY = bytes(range(32))
KEY_HEX = KEY.hex()
OTHER = bytes(reversed(range(32)))
PLAIN = "id,principal\r\n1,Жук Ωμέγα é\r\n".encode() * 50


@pytest.fixture
def plain_file(tmp_path):
    path = tmp_path / "report_2026-11-01.csv.gz"
    path.write_bytes(PLAIN)
    return path


def test_round_trip_and_format(plain_file):
    enc = file_crypto.encrypt_file(plain_file, KEY, file_crypto.key_id_for(KEY))
    assert enc.name == "report_2026-11-01.csv.gz.enc"
    raw = enc.read_bytes()
    assert raw[:6] == b"CRENC1"
    assert raw[6:14].hex() == file_crypto.key_id_for(KEY)
    assert len(raw) == 6 + 8 + 12 + len(PLAIN) + 16
    assert PLAIN[:40] not in raw
    assert KEY not in raw and KEY_HEX.encode() not in raw
    plain_file.unlink()
    out = file_crypto.decrypt_file(enc, KEY)
    assert out == plain_file and out.read_bytes() == PLAIN


def test_fresh_nonce_per_file(plain_file):
    a = file_crypto.encrypt_file(plain_file, KEY, dest=plain_file.with_name("a.enc")).read_bytes()
    b = file_crypto.encrypt_file(plain_file, KEY, dest=plain_file.with_name("b.enc")).read_bytes()
    assert a[14:26] != b[14:26] and a != b


@pytest.mark.parametrize("offset", [0, 5, 20, 30, -1, -20])
def test_a_flipped_byte_fails(plain_file, offset):
    enc = file_crypto.encrypt_file(plain_file, KEY)
    data = bytearray(enc.read_bytes())
    data[offset] ^= 0x01
    enc.write_bytes(bytes(data))
    with pytest.raises(DecryptionError):
        file_crypto.decrypt_file(enc, KEY, dest=plain_file.with_name("out"))
    assert not plain_file.with_name("out").exists()


def test_wrong_key_and_renamed_file_fail(plain_file):
    enc = file_crypto.encrypt_file(plain_file, KEY)
    with pytest.raises(DecryptionError, match="key id"):
        file_crypto.decrypt_file(enc, OTHER, dest=plain_file.with_name("out"))
    renamed = enc.rename(enc.with_name("other_2026-11-01.csv.gz.enc"))
    with pytest.raises(DecryptionError, match="renamed"):
        file_crypto.decrypt_file(renamed, KEY)
    # the original name can be given explicitly
    out = file_crypto.decrypt_file(renamed, KEY, dest=plain_file.with_name("out"),
                                   original_name="report_2026-11-01.csv.gz")
    assert out.read_bytes() == PLAIN


def test_truncated_and_foreign_files(tmp_path):
    with pytest.raises(DecryptionError, match="too short"):
        file_crypto.decrypt_bytes(b"CRENC1", KEY, "x")
    with pytest.raises(DecryptionError, match="CRENC1"):
        file_crypto.decrypt_bytes(b"%PDF-1.7" + bytes(60), KEY, "x")


def test_streaming_path_is_the_same_format(plain_file, monkeypatch):
    monkeypatch.setattr(file_crypto, "STREAM_THRESHOLD", 100)
    monkeypatch.setattr(file_crypto, "_CHUNK", 64)
    enc = file_crypto.encrypt_file(plain_file, KEY)
    raw = enc.read_bytes()
    # the one-shot AESGCM API reads what the streaming encryptor wrote
    aad = b"CRENC1" + raw[6:14] + plain_file.name.encode()
    assert AESGCM(KEY).decrypt(raw[14:26], raw[26:], aad) == PLAIN
    out = file_crypto.decrypt_file(enc, KEY, dest=plain_file.with_name("streamed"))
    assert out.read_bytes() == PLAIN
    data = bytearray(raw)
    data[200] ^= 0x80
    enc.write_bytes(bytes(data))
    with pytest.raises(DecryptionError):
        file_crypto.decrypt_file(enc, KEY, dest=plain_file.with_name("bad"))
    assert not plain_file.with_name("bad").exists()


def test_key_parsing():
    assert file_crypto.parse_key(KEY_HEX, "K") == KEY
    assert file_crypto.parse_key(KEY_HEX.upper(), "K") == KEY
    assert file_crypto.parse_key(base64.b64encode(KEY).decode(), "K") == KEY
    assert file_crypto.parse_key(base64.urlsafe_b64encode(OTHER).decode().rstrip("="), "K") == OTHER
    for bad in ("", "abcd", "zz" * 32, base64.b64encode(bytes(16)).decode(), KEY_HEX + "00"):
        with pytest.raises(EncryptionKeyError, match="REPORT_KEY") as info:
            file_crypto.parse_key(bad, "REPORT_KEY")
        assert bad not in str(info.value) or bad == ""
    with pytest.raises(EncryptionKeyError, match="NOT_SET_KEY"):
        file_crypto.load_key("NOT_SET_KEY", {}.get)
    key, key_id = file_crypto.load_key("K", {"K": KEY_HEX}.get)
    assert key == KEY and key_id == file_crypto.key_id_for(KEY) and len(key_id) == 16


@pytest.mark.parametrize("lenient", [
    "!!!!" + 43 * "A" + "$$$",                       # a lenient decoder skips ! and $: 32 zero bytes
    " ".join(base64.b64encode(KEY).decode()),        # spaces between the characters
    base64.b64encode(KEY).decode()[:-2] + "B=",      # stray bits in the last character
    base64.b64encode(KEY).decode() + "AAAA",         # 35 bytes
    "+" + base64.b64encode(KEY).decode()[1:-2] + "_=",  # both alphabets at once
])
def test_base64_keys_are_decoded_strictly(lenient):
    with pytest.raises(EncryptionKeyError, match="REPORT_KEY"):
        file_crypto.parse_key(lenient, "REPORT_KEY")


def test_cli_decrypt(plain_file, monkeypatch):
    enc = file_crypto.encrypt_file(plain_file, KEY)
    plain_file.unlink()
    runner = CliRunner()
    monkeypatch.setenv("MY_REPORT_KEY", KEY_HEX)
    result = runner.invoke(decrypt, [str(enc), "--key-env", "MY_REPORT_KEY"])
    assert result.exit_code == 0, result.output
    assert plain_file.read_bytes() == PLAIN
    # output exists -> bad input
    assert runner.invoke(decrypt, [str(enc), "--key-env", "MY_REPORT_KEY"]).exit_code == 2
    out = plain_file.with_name("copy.csv.gz")
    result = runner.invoke(decrypt, [str(enc), "--key-env", "MY_REPORT_KEY", "-o", str(out), "--json"])
    assert result.exit_code == 0 and out.read_bytes() == PLAIN
    assert json.loads(result.stdout) == {"file": str(enc), "key_id": file_crypto.load_key("MY_REPORT_KEY")[1],
                                         "output": str(out)}
    # wrong key -> problem (1); unset or malformed key -> bad input (2)
    monkeypatch.setenv("WRONG_KEY", OTHER.hex())
    result = runner.invoke(decrypt, [str(enc), "--key-env", "WRONG_KEY", "-o", str(out), "--force"])
    assert result.exit_code == 1 and "key id" in result.output
    assert runner.invoke(decrypt, [str(enc), "--key-env", "UNSET_KEY_VARIABLE"]).exit_code == 2
    monkeypatch.setenv("BAD_KEY", "short")
    result = runner.invoke(decrypt, [str(enc), "--key-env", "BAD_KEY", "-o", str(out), "--force"])
    assert result.exit_code == 2 and "BAD_KEY" in result.output and "short" not in result.output
    assert runner.invoke(decrypt, [os.fspath(enc) + ".missing"]).exit_code == 2
    # tampered -> 1
    data = bytearray(enc.read_bytes())
    data[-5] ^= 1
    enc.write_bytes(bytes(data))
    result = runner.invoke(decrypt, [str(enc), "--key-env", "MY_REPORT_KEY", "-o", str(out), "--force"])
    assert result.exit_code == 1 and "authentication failed" in result.output
