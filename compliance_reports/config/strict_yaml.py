"""YAML for configuration files: PyYAML's safe loader, stricter.

- input must be UTF-8 (a byte order mark of UTF-8 is allowed, UTF-16 and UTF-32 are not);
  the error names the byte offset of the first bad byte;
- a key given twice in one mapping is an error (PyYAML keeps the last one silently, so
  `organization_id` given twice would move a report to another organization); keys brought in
  by a merge (`<<: *base`) may be overridden, as YAML intends;
- aliases may not expand a document beyond MAX_NODES nodes (a 512-byte "billion laughs" file
  otherwise becomes megabytes of configuration), and nothing may nest deeper than MAX_DEPTH;
- only the plain tags are constructed: null, bool, int, float, str, timestamp, seq, map and
  merge. `!!binary`, `!!set`, `!!omap`, `!!pairs` and every application tag (`!!python/...`,
  `!custom`) are refused.

Every problem raises yaml.YAMLError (or UnicodeDecodeError for the encoding), which the loader
reports with the file name.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_NODES = 20_000
MAX_DEPTH = 64
MAX_FILE_BYTES = 2 * 1024 * 1024
_MERGE_TAG = "tag:yaml.org,2002:merge"
_REFUSED_TAGS = ("binary", "set", "omap", "pairs")
_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16",
}


class EncodingProblem(ValueError):
    """The bytes are not UTF-8; the message names the offset."""


def decode_utf8(data: bytes) -> str:
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            raise EncodingProblem(
                f"the file is {name} (byte order mark at byte offset 0); save it as UTF-8"
            )
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        raise EncodingProblem(
            f"not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset}; "
            "save the file as UTF-8"
        ) from None


def _expanded_size(node: Node, memo: dict[int, int], depth: int = 0) -> int:
    """How many nodes the document has once every alias is expanded (shared nodes counted
    each time they are used)."""
    if depth > MAX_DEPTH:
        raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", node.start_mark)
    key = id(node)
    if key in memo:
        if memo[key] < 0:
            raise ComposerError(None, None, "an alias refers to itself (recursive structure)",
                                node.start_mark)
        return memo[key]
    memo[key] = -1
    size = 1
    if isinstance(node, SequenceNode):
        for child in node.value:
            size += _expanded_size(child, memo, depth + 1)
    elif isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            size += _expanded_size(key_node, memo, depth + 1)
            size += _expanded_size(value_node, memo, depth + 1)
    if size > MAX_NODES:
        raise ComposerError(
            None, None,
            f"the document has more than {MAX_NODES} values once its aliases are expanded",
            node.start_mark,
        )
    memo[key] = size
    return size


class StrictLoader(yaml.SafeLoader):
    def compose_document(self) -> Node | None:
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, {})
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        "found an unhashable key", key_node.start_mark,
                    ) from None
                if first is not None:
                    raise ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"duplicate key {key!r} (first given on line {first + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _refuse_tag(loader: StrictLoader, node: Node) -> Any:
    raise ConstructorError(
        None, None, f"the tag {node.tag} is not allowed in configuration files", node.start_mark
    )


for _tag in _REFUSED_TAGS:
    StrictLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse_tag)
StrictLoader.add_constructor(None, _refuse_tag)


def load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=StrictLoader))
