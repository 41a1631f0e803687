"""XML export, written by a small streaming writer (every value goes through
xml.sax.saxutils escaping; nothing is concatenated into markup unescaped). The <events>
element, which can hold millions of rows, is streamed batch by batch and built with Arrow
kernels that apply the same escaping (a property test checks it against the writer).

Structure (UTF-8, no namespace, indented by two spaces):

    <?xml version="1.0" encoding="UTF-8"?>
    <complianceReport schemaVersion="1.0">
      <header>                                one child per header field, in HEADER_FIELDS
        <organization_id>acme</organization_id>  order, then any other field sorted by name
        <event_count type="integer">1234</event_count>
        <window_note type="null"/>
        <criteria type="object">
          <entry key="actions" type="array"><item>login</item></entry>
        </criteria>
        ...
      </header>
      <summary>
        <item label="Total events" type="integer">1234</item>
        <item label="Failed logins" type="integer" previous="321" change="22" changePct="6.85">343</item>
      </summary>                              (previous/change/changePct when compared)
      <executiveSummary type="object">...</executiveSummary>   page 1, same value encoding
      <comparison type="object">...</comparison>               the previous period's figures
      <charts type="array">...</charts>                        chart index (id, title, alt)
      <sections>
        <section id="access-by-user" kind="table" title="Access by user">
          <description>...</description>      (when the section has one)
          <columns><column key="user" title="User"/>...</columns>
          <rows count="25" totalRows="40">     (totalRows > count when the builder capped rows)
            <row><cell key="user">alice</cell><cell key="n" type="integer">12</cell></row>
          </rows>
          <note>...</note>                     (when present)
        </section>
        <section id="..." kind="facts" title="...">
          <fact label="Period">2026-11</fact>
        </section>
        <section id="..." kind="findings" title="...">
          <finding severity="warning" code="AFTER_HOURS">
            <title>...</title><detail>...</detail>
            <evidence><eventId type="integer">42</eventId></evidence>
          </finding>
        </section>
        <section id="..." kind="attestation" title="...">
          <statement>...</statement><fields><field>Reviewer name</field>...</fields>
        </section>
        <section id="..." kind="text" title="..."><paragraph>...</paragraph></section>
        <section id="..." kind="chart" title="...">
          <alt>...</alt><chart type="object">...</chart>   the chart's data (categories, series)
        </section>
        (a section with "appendix": true carries appendix="true"; a rolled-up finding carries
        <subjects type="object">...</subjects> after its evidence)
      </sections>
      <data type="object">...</data>          type-specific data, same value encoding
      <events count="1234">                    only when event rows are included
        <event>
          <id type="integer">1</id>
          <timestamp type="timestamp">2026-11-27T09:15:02.123Z</timestamp>
          <principal_id>u-17</principal_id>
          <details type="json">{"session_context":{...}}</details>
          ...one child per column of the events file; a null value is <name type="null"/>
        </event>
      </events>
    </complianceReport>

Value encoding: an element without a `type` attribute holds a string (empty element = empty
string); `type` is one of integer, number, boolean (true/false), null (empty element),
timestamp (ISO 8601 UTC text), json (JSON text), object (children
<entry key="...">) or array (children <item>). `read_value(element)` turns an element back
into the Python value. Header and event field names that are not XML names are written as
<field name="...">. Characters XML 1.0 cannot carry (control characters other than tab, LF and
CR, lone surrogates) are replaced by U+FFFD; a carriage return in text is written as &#13; so
it survives parsing.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, TextIO
from xml.sax.saxutils import escape, quoteattr

import pyarrow as pa
import pyarrow.compute as pc

from compliance_reports.exporters.events import event_count, iter_formatted_batches
from compliance_reports.reports.document import HEADER_FIELDS

_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
_TEXT_ENTITIES = {"\r": "&#13;"}
_EVENT_TYPES = {
    "integer": "integer", "number": "number", "boolean": "boolean", "timestamp": "timestamp",
    "json": "json", "date": "date",
}


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


def _text(value: str) -> str:
    return escape(_clean(value), _TEXT_ENTITIES)


def _attrs(attrs: list[tuple[str, Any]]) -> str:
    return "".join(f" {name}={quoteattr(_clean(str(value)))}" for name, value in attrs if value is not None)


def _is_name(tag: str) -> bool:
    return bool(_NAME_RE.fullmatch(tag)) and not tag.lower().startswith("xml")


class _Writer:
    def __init__(self, fh: TextIO) -> None:
        self.fh = fh
        self.depth = 0

    def _pad(self) -> str:
        return "  " * self.depth

    def start(self, tag: str, attrs: list[tuple[str, Any]] = ()) -> None:
        self.fh.write(f"{self._pad()}<{tag}{_attrs(list(attrs))}>\n")
        self.depth += 1

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.fh.write(f"{self._pad()}</{tag}>\n")

    def leaf(self, tag: str, text: str | None, attrs: list[tuple[str, Any]] = ()) -> None:
        self.fh.write(self.leaf_markup(tag, text, attrs, self._pad()) + "\n")

    @staticmethod
    def leaf_markup(tag: str, text: str | None, attrs, pad: str = "") -> str:
        if text is None or text == "":
            return f"{pad}<{tag}{_attrs(list(attrs))}/>"
        return f"{pad}<{tag}{_attrs(list(attrs))}>{_text(text)}</{tag}>"

    def value(self, tag: str, value: Any, attrs: list[tuple[str, Any]] = ()) -> None:
        """A document value with the module's type encoding (recursive for objects/arrays)."""
        attrs = list(attrs)
        if isinstance(value, dict):
            self.start(tag, attrs + [("type", "object")])
            for key, item in value.items():
                self.value("entry", item, [("key", key)])
            self.end(tag)
        elif isinstance(value, (list, tuple)):
            self.start(tag, attrs + [("type", "array")])
            for item in value:
                self.value("item", item)
            self.end(tag)
        else:
            text, kind = _scalar(value)
            self.leaf(tag, text, attrs + ([("type", kind)] if kind else []))

    def named(self, name: str, value: Any) -> None:
        if _is_name(name):
            self.value(name, value)
        else:
            self.value("field", value, [("name", name)])


def _scalar(value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return None, "null"
    if isinstance(value, bool):
        return ("true" if value else "false"), "boolean"
    if isinstance(value, int):
        return str(value), "integer"
    if isinstance(value, float):
        return json.dumps(value), "number"
    return str(value), None


def read_value(element: ET.Element) -> Any:
    """The Python value an element of this format holds (the inverse of the writer)."""
    kind = element.get("type")
    text = element.text or ""
    if kind is None or kind in ("timestamp", "json", "date"):
        return text
    if kind == "null":
        return None
    if kind == "boolean":
        return text == "true"
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "object":
        return {child.get("key"): read_value(child) for child in element}
    if kind == "array":
        return [read_value(child) for child in element]
    raise ValueError(f"unknown value type {kind!r} in <{element.tag}>")


# Comparison keys of a summary item, written as attributes (absent when None).
_COMPARED = (("previous", "previous"), ("change", "change"), ("change_pct", "changePct"))
# Top-level document keys after the summary, in this order.
_TOP_LEVEL = (("executive_summary", "executiveSummary"), ("comparison", "comparison"),
              ("charts", "charts"))


def _header_items(header: dict[str, Any]):
    for name in HEADER_FIELDS:
        if name in header:
            yield name, header[name]
    for name in sorted(set(header) - set(HEADER_FIELDS)):
        yield name, header[name]


def _section(w: _Writer, section: dict[str, Any]) -> None:
    kind = section.get("kind")
    w.start("section", [("id", section.get("id")), ("kind", kind), ("title", section.get("title")),
                        ("appendix", "true" if section.get("appendix") else None)])
    if section.get("description") is not None:
        w.leaf("description", section["description"])
    if kind == "facts":
        for item in section.get("facts") or []:
            w.value("fact", item.get("value"), [("label", item.get("label"))])
    elif kind == "table":
        columns = section.get("columns") or []
        w.start("columns")
        for column in columns:
            w.leaf("column", None, [("key", column["key"]), ("title", column.get("title"))])
        w.end("columns")
        rows = section.get("rows") or []
        w.start("rows", [("count", len(rows)), ("totalRows", section.get("total_rows", len(rows)))])
        for row in rows:
            w.start("row")
            for column in columns:
                w.value("cell", row.get(column["key"]), [("key", column["key"])])
            w.end("row")
        w.end("rows")
        if section.get("note") is not None:
            w.leaf("note", section["note"])
    elif kind == "findings":
        for item in section.get("findings") or []:
            w.start("finding", [("severity", item.get("severity")), ("code", item.get("code"))])
            w.leaf("title", item.get("title"))
            w.leaf("detail", item.get("detail"))
            w.start("evidence")
            for event_id in item.get("evidence_event_ids") or []:
                w.value("eventId", event_id)
            w.end("evidence")
            if item.get("subjects") is not None:
                w.value("subjects", item["subjects"])
            w.end("finding")
    elif kind == "attestation":
        w.leaf("statement", section.get("statement"))
        w.start("fields")
        for name in section.get("fields") or []:
            w.leaf("field", name)
        w.end("fields")
    elif kind == "text":
        for paragraph in section.get("paragraphs") or []:
            w.leaf("paragraph", paragraph)
    elif kind == "chart":
        w.leaf("alt", section.get("alt"))
        w.value("chart", section.get("chart"))
    else:  # a kind this version does not know: keep its content, generically
        rest = {k: v for k, v in section.items() if k not in ("id", "kind", "title", "description")}
        w.value("content", rest)
    w.end("section")


# XML 1.0 forbids these code points (lone surrogates cannot occur in Arrow's UTF-8 strings).
_INVALID_XML_RE2 = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"


_SPECIAL_RE2 = r"[&<>\r\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]"


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(pc.fill_null(mask, False)).as_py())


def _escape_column(arr: pa.Array) -> pa.Array:
    """Arrow-kernel version of `_text`: invalid characters to U+FFFD, then &, <, > and CR."""
    if not _any(pc.match_substring_regex(arr, _SPECIAL_RE2)):
        return arr  # the common case: nothing to escape in the whole batch
    if _any(pc.match_substring_regex(arr, _INVALID_XML_RE2)):
        arr = pc.replace_substring_regex(arr, pattern=_INVALID_XML_RE2, replacement="\ufffd")
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        arr = pc.replace_substring(arr, raw, entity)
    return arr


def _event_cells(arr: pa.Array, column, inner: str) -> pa.Array:
    """`<name type="...">escaped value</name>` for each row (never null), as the writer
    would write it: a null is <name type="null"/>, an empty string <name/>."""
    if _is_name(column.name):
        tag, name_attr = column.name, ""
    else:
        tag, name_attr = "field", _attrs([("name", column.name)])
    kind = _EVENT_TYPES.get(column.kind)
    type_attr = _attrs([("type", kind)]) if kind else ""
    null_cell = f"{inner}<{tag}{name_attr} type=\"null\"/>"
    empty_cell = f"{inner}<{tag}{name_attr}{type_attr}/>"
    if column.kind in ("integer", "number", "boolean", "timestamp", "date"):
        escaped = arr  # digits, signs, dots, letters, ':' and '-' only
    else:
        escaped = _escape_column(arr)
    full = pc.binary_join_element_wise(f"{inner}<{tag}{name_attr}{type_attr}>", escaped, f"</{tag}>", "")
    full = pc.if_else(pc.fill_null(pc.equal(arr, ""), False), empty_cell, full)
    return pc.fill_null(full, null_cell)


def _events(w: _Writer, events_path: Path) -> None:
    """The <events> element, built batch by batch with Arrow kernels (no Python object per
    cell); the same markup the writer's `value` would give for each field."""
    w.start("events", [("count", event_count(events_path))])
    pad = w._pad()
    inner = pad + "  "
    for columns, arrays in iter_formatted_batches(events_path):
        if not len(arrays[0]):
            continue
        cells = [_event_cells(arr, column, inner) for column, arr in zip(columns, arrays)]
        body = pc.binary_join_element_wise(*cells, "\n") if len(cells) > 1 else cells[0]
        lines = pc.binary_join_element_wise(f"{pad}<event>\n", body, f"\n{pad}</event>\n", "")
        offsets = memoryview(lines.buffers()[1]).cast("i")
        first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
        w.fh.flush()
        w.fh.buffer.write(lines.buffers()[2].slice(first, last - first))
        del cells, body, lines, arrays  # free this batch before the next one is read
    w.end("events")


def write_xml(
    document: dict[str, Any], events_path: Path | None, out_path: Path, include_events: bool = True
) -> Path:
    with open(out_path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        w = _Writer(fh)
        w.start("complianceReport", [("schemaVersion", document.get("schema_version"))])
        w.start("header")
        for name, value in _header_items(document.get("header") or {}):
            w.named(name, value)
        w.end("header")
        w.start("summary")
        for item in document.get("summary") or []:
            w.value("item", item.get("value"), [("label", item.get("label"))] + [
                (attr, _scalar(item[key])[0]) for key, attr in _COMPARED if key in item])
        w.end("summary")
        for key, tag in _TOP_LEVEL:
            if key in document:
                w.value(tag, document[key])
        w.start("sections")
        for section in document.get("sections") or []:
            _section(w, section)
        w.end("sections")
        if "data" in document:
            w.value("data", document.get("data"))
        if include_events and events_path is not None:
            _events(w, events_path)
        w.end("complianceReport")
    return out_path
