"""Read YAML configuration files (several documents each) into validated models.

Every problem is reported with the file, the document number, the id or name and the field,
and a file with any problem yields nothing: the caller writes a file all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from compliance_reports.config import strict_yaml
from compliance_reports.config.models import ReportConfig, ReportTemplate, parse_destination
from compliance_reports.config.validation import check_storable


class ConfigError(Exception):
    """Invalid configuration; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Document:
    source: str  # "<file> document <n>"
    data: dict[str, Any]

    @property
    def label(self) -> str:
        ident = self.data.get("id") or self.data.get("name")
        return f"{self.source} ({ident!r})" if ident else self.source


def read_documents(path: str | Path, kind: str) -> list[Document]:
    """YAML documents of one kind ('report', 'destination', 'template'); empty ones skipped.

    A document may say `kind: <kind>`; one that names another kind is an error, so a file of
    destinations cannot be applied as reports by mistake. The YAML is read strictly
    (config/strict_yaml.py): UTF-8 only, no duplicate keys, bounded aliases, plain tags only.
    """
    path = Path(path)
    try:
        if path.stat().st_size > strict_yaml.MAX_FILE_BYTES:
            raise ConfigError([
                f"{path}: the file is larger than {strict_yaml.MAX_FILE_BYTES // (1024 * 1024)} MB"
            ])
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except ValueError as exc:  # a NUL byte in the path
        raise ConfigError([f"{str(path)!r}: cannot read: {exc}"]) from None
    try:
        raw = strict_yaml.load_all(strict_yaml.decode_utf8(data))
    except strict_yaml.EncodingProblem as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError([
            f"{path}: character {exc.character!r} at character position {exc.position} is not "
            "allowed in YAML"
        ]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}:{where}: YAML error: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: YAML error: nested too deeply"]) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError([f"{path}: YAML error: {' '.join(str(exc).split())}"]) from None
    documents, problems = [], []
    for index, data in enumerate(raw, start=1):
        source = f"{path} document {index}"
        if data is None:
            continue
        if not isinstance(data, dict):
            problems.append(f"{source}: expected a mapping of fields, got {type(data).__name__}")
            continue
        data = dict(data)
        declared = data.pop("kind", kind)
        if declared != kind:
            problems.append(f"{source}: kind is {declared!r} but this command applies {kind!r}")
            continue
        found = _unstorable_text(data)
        if found:
            field, message = found
            problems.append(f"{Document(source, data).label}: {kind} field '{field}': {message}")
            continue
        documents.append(Document(source, data))
    if problems:
        raise ConfigError(problems)
    if not documents:
        raise ConfigError([f"{path}: no {kind} documents found"])
    return documents


def _unstorable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first key or string anywhere in a document that the database cannot hold."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                try:
                    check_storable(key, "the key")
                except ValueError as exc:
                    return where, str(exc)
            elif not isinstance(key, (int, bool)) and key is not None:
                return where, f"keys must be text, not {type(key).__name__}"
            found = _unstorable_text(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable_text(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    elif isinstance(value, str):
        try:
            check_storable(value, "the value")
        except ValueError as exc:
            return path or "(document)", str(exc)
    return None


def format_validation_error(label: str, kind: str, exc: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        # Drop the wrapper and discriminator parts pydantic adds for tagged unions.
        if loc[:1] == ["destination"]:
            loc = loc[2:] if len(loc) > 1 and loc[1] in ("email", "webhook", "storage") else loc[1:]
        field = prefix + (".".join(loc) or "(document)")
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "union_tag_invalid":
            field, message = "type", "type must be one of email, webhook, storage"
        elif err["type"] == "union_tag_not_found":
            field, message = "type", "missing: type (email, webhook or storage)"
        elif isinstance(err.get("input"), bool) and err["type"] in ("int_type", "float_type"):
            message = "must be a number, not true or false"
        lines.append(f"{label}: {kind} field '{field}': {message}")
    return lines


def parse_reports(
    documents: list[Document],
    templates: dict[str, ReportTemplate] | None = None,
    warnings: list[str] | None = None,
) -> list[ReportConfig]:
    """Validate report documents; `template: NAME` takes that template's defaults first.

    `created_by` is never taken from a file: it is dropped, with a line in `warnings`, and the
    store records the applying user instead.
    """
    templates = templates or {}
    reports, problems, seen = [], [], set()
    for doc in documents:
        data = dict(doc.data)
        if "created_by" in data:
            data.pop("created_by")
            if warnings is not None:
                warnings.append(
                    f"{doc.label}: report field 'created_by' is ignored: it is set from the "
                    "applying user (or `reports apply --as NAME`)"
                )
        template_name = data.pop("template", None)
        if template_name is not None:
            template = templates.get(template_name) if isinstance(template_name, str) else None
            if template is None:
                problems.append(
                    f"{doc.label}: report field 'template': unknown template {template_name!r}"
                )
                continue
            data = deep_merge(template.defaults, data)
        try:
            report = ReportConfig.model_validate(data)
        except ValidationError as exc:
            problems.extend(format_validation_error(doc.label, "report", exc))
            continue
        if report.id in seen:
            problems.append(f"{doc.label}: report field 'id': {report.id!r} appears twice in the file")
        seen.add(report.id)
        reports.append(report)
    if problems:
        raise ConfigError(problems)
    return reports


def parse_destinations(documents: list[Document]):
    destinations, problems, seen = [], [], set()
    for doc in documents:
        try:
            dest = parse_destination(doc.data)
        except ValidationError as exc:
            problems.extend(format_validation_error(doc.label, "destination", exc))
            continue
        if dest.name in seen:
            problems.append(
                f"{doc.label}: destination field 'name': {dest.name!r} appears twice in the file"
            )
        seen.add(dest.name)
        destinations.append(dest)
    if problems:
        raise ConfigError(problems)
    return destinations


def parse_templates(documents: list[Document]) -> list[ReportTemplate]:
    """Validate templates; their defaults must form a valid (partial) report."""
    templates, problems, seen = [], [], set()
    for doc in documents:
        try:
            template = ReportTemplate.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(format_validation_error(doc.label, "template", exc))
            continue
        try:
            ReportConfig.model_validate(template_probe(template.defaults))
        except ValidationError as exc:
            problems.extend(format_validation_error(doc.label, "template", exc, "defaults."))
            continue
        if template.name in seen:
            problems.append(
                f"{doc.label}: template field 'name': {template.name!r} appears twice in the file"
            )
        seen.add(template.name)
        templates.append(template)
    if problems:
        raise ConfigError(problems)
    return templates


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override wins; nested mappings merge, lists are replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def template_probe(defaults: dict[str, Any]) -> dict[str, Any]:
    """A report made of a template's defaults plus neutral values for what it leaves open.

    Validating it with ReportConfig checks the defaults with the same rules as the reports
    they feed. The frequency filled in agrees with the schedule fields the template sets.
    """
    schedule = defaults.get("schedule")
    schedule = dict(schedule) if isinstance(schedule, dict) else schedule
    if isinstance(schedule, dict) and "frequency" not in schedule:
        schedule["frequency"] = (
            "weekly" if "day_of_week" in schedule
            else "monthly" if "day_of_month" in schedule else "daily"
        )
    probe = {
        "id": "template-probe",
        "name": "template probe",
        "organization_id": "template-probe",
        "report_type": "custom",
        **defaults,
        "schedule": schedule if schedule is not None else {"frequency": "daily"},
    }
    return probe
