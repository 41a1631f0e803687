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

from compliance_reports.config.models import (
    ReportConfig,
    ReportTemplate,
    deep_merge,
    parse_destination,
)


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
    destinations cannot be applied as reports by mistake.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        raw = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{path}:{where}: YAML error: {problem}"]) from None
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
        documents.append(Document(source, data))
    if problems:
        raise ConfigError(problems)
    if not documents:
        raise ConfigError([f"{path}: no {kind} documents found"])
    return documents


def format_validation_error(label: str, kind: str, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        # Drop the wrapper and discriminator parts pydantic adds for tagged unions.
        if loc[:1] == ["destination"]:
            loc = loc[2:] if len(loc) > 1 and loc[1] in ("email", "webhook", "storage") else loc[1:]
        field = ".".join(loc) or "(document)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "union_tag_invalid":
            field, message = "type", "type must be one of email, webhook, storage"
        elif err["type"] == "union_tag_not_found":
            field, message = "type", "missing: type (email, webhook or storage)"
        lines.append(f"{label}: {kind} field '{field}': {message}")
    return lines


def parse_reports(
    documents: list[Document], templates: dict[str, ReportTemplate] | None = None
) -> list[ReportConfig]:
    """Validate report documents; `template: NAME` takes that template's defaults first."""
    templates = templates or {}
    reports, problems, seen = [], [], set()
    for doc in documents:
        data = dict(doc.data)
        template_name = data.pop("template", None)
        if template_name is not None:
            template = templates.get(template_name)
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
    templates, problems = [], []
    for doc in documents:
        try:
            templates.append(ReportTemplate.model_validate(doc.data))
        except ValidationError as exc:
            problems.extend(format_validation_error(doc.label, "template", exc))
    if problems:
        raise ConfigError(problems)
    return templates
