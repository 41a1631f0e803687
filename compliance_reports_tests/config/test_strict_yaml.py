"""The strict YAML reader: what it still accepts, and the exact limits of what it refuses."""

from __future__ import annotations

import pytest
import yaml

from compliance_reports.config import strict_yaml


def test_merge_keys_may_be_overridden_but_plain_keys_not_twice():
    text = "base: &base {time: '06:00', timezone: UTC}\nschedule:\n  <<: *base\n  time: '07:00'\n"
    (doc,) = strict_yaml.load_all(text)
    assert doc["schedule"] == {"time": "07:00", "timezone": "UTC"}
    with pytest.raises(yaml.YAMLError, match="duplicate key 'time'"):
        strict_yaml.load_all("schedule:\n  time: '06:00'\n  time: '07:00'\n")


def test_keys_that_collide_after_construction_are_duplicates():
    # `1` and `1.0` are the same dict key: PyYAML would silently keep the last.
    with pytest.raises(yaml.YAMLError, match="duplicate key"):
        strict_yaml.load_all("{1: a, 1.0: b}\n")


def test_aliases_within_the_bound_are_fine_and_just_beyond_it_are_not():
    items = ", ".join(["x"] * 99)
    # a 100-value list used 150 times is about 15,000 values once expanded; 250 times, 25,000
    small = f"a: &a [{items}]\nb: [" + ", ".join(["*a"] * 150) + "]\n"
    (doc,) = strict_yaml.load_all(small)
    assert len(doc["b"]) == 150
    big = f"a: &a [{items}]\nb: [" + ", ".join(["*a"] * 250) + "]\n"
    with pytest.raises(yaml.YAMLError, match=f"more than {strict_yaml.MAX_NODES} values"):
        strict_yaml.load_all(big)


def test_each_document_has_its_own_bound():
    items = ", ".join(["x"] * 99)
    one = f"a: &a [{items}]\nb: [" + ", ".join(["*a"] * 150) + "]\n"
    docs = strict_yaml.load_all("---\n".join([one] * 3))
    assert len(docs) == 3


@pytest.mark.parametrize("tag", ["!!binary aGk=", "!!set {a: null}", "!!omap [a: 1]", "!!pairs [a: 1]",
                                 "!!python/name:os.system", "!custom x"])
def test_only_plain_tags_are_constructed(tag):
    with pytest.raises(yaml.YAMLError):
        strict_yaml.load_all(f"value: {tag}\n")


def test_plain_tags_and_dates_still_work():
    (doc,) = strict_yaml.load_all("a: !!str 123\nb: 2026-01-01\nc: !!float 1\nd: ~\ne: yes\n")
    assert doc["a"] == "123" and str(doc["b"]) == "2026-01-01" and doc["c"] == 1.0
    assert doc["d"] is None and doc["e"] is True


def test_safe_loader_itself_is_left_alone():
    # The refusals are registered on the subclass only.
    assert yaml.safe_load("value: !!binary aGk=\n") == {"value": b"hi"}


@pytest.mark.parametrize("data, needle", [
    (b"id: caf\xe9\n", "byte 0xe9 at byte offset 7"),
    ("id: x\n".encode("utf-16"), "UTF-16"),
    ("id: x\n".encode("utf-32"), "UTF-32"),
    (b"\xef\xbb\xbfid: \xff\n", "byte 0xff at byte offset 7"),
])
def test_encoding_problems_name_the_byte_offset(data, needle):
    with pytest.raises(strict_yaml.EncodingProblem, match=needle):
        strict_yaml.decode_utf8(data)


def test_utf8_with_byte_order_mark_is_read():
    assert strict_yaml.decode_utf8(b"\xef\xbb\xbfid: caf\xc3\xa9\n") == "id: caf\u00e9\n"
