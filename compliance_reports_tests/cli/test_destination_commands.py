"""`destinations apply` refuses folders outside the storage root and internal addresses;
`destinations delete` refuses while a report uses the destination. SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from compliance_reports.cli.main import main

GOOD = """\
name: archive
type: storage
provider: local
base_path: delivered
"""

REPORT = """\
id: {id}
name: Daily summary
organization_id: org-1
report_type: general_compliance
schedule: {{frequency: daily, time: "06:00", timezone: Europe/Berlin}}
formats: [csv]
destinations: {destinations}
notify_on_failure: {notify}
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cli(request, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COMPLIANCE_STORAGE_ROOT", raising=False)
    if request.param == "postgres":
        monkeypatch.setenv("COMPLIANCE_DB_URL", request.getfixturevalue("pg_database")())
    else:
        monkeypatch.delenv("COMPLIANCE_DB_URL", raising=False)
    monkeypatch.delenv("AUDIT_DB_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, expect: int = 0, input: str | None = None):
        result = runner.invoke(main, list(args), catch_exceptions=False, input=input)
        assert result.exit_code == expect, result.output
        return result

    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    run("db", "upgrade")
    run.write = write
    run.tmp_path = tmp_path
    return run


def _names(cli) -> list[str]:
    import json

    return [d["name"] for d in json.loads(cli("destinations", "list", "--json").output)]


@pytest.mark.parametrize("base", ["../x", "/etc/compliance", "~/reports", "a/../../x"])
def test_apply_refuses_a_base_path_outside_the_root(cli, base):
    path = cli.write("d.yaml", GOOD + f"---\nname: escape\ntype: storage\nprovider: local\nbase_path: '{base}'\n")
    result = cli("destinations", "apply", "-f", path, expect=2)
    assert "document 2 ('escape'): destination field 'base_path'" in result.output
    assert _names(cli) == []  # the good document of the same file is not written either


def test_apply_refuses_a_base_path_through_a_link_out_of_the_root(cli):
    root, outside = cli.tmp_path / "data", cli.tmp_path / "source-tree"
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir()
    (root / "exports").symlink_to(outside, target_is_directory=True)
    path = cli.write("d.yaml", "name: linked\ntype: storage\nprovider: local\nbase_path: exports/reports\n")
    result = cli("destinations", "apply", "-f", path, expect=2)
    assert "destination 'linked' field 'base_path'" in result.output and "symbolic link" in result.output
    assert _names(cli) == [] and list(outside.iterdir()) == []


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/in", "http://localhost/in", "http://[::1]/in", "http://[::ffff:127.0.0.1]/in",
    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.7:6379/", "http://0.0.0.0/in",
    "http://2130706433/in", "http://0177.0.0.1/in",
])
def test_apply_refuses_a_webhook_to_an_internal_address(cli, url):
    path = cli.write("d.yaml", f"name: hook\ntype: webhook\nurl: '{url}'\n")
    result = cli("destinations", "apply", "-f", path, expect=2)
    assert "destination 'hook' field 'url'" in result.output and "allow_private_network" in result.output
    assert _names(cli) == []


def test_apply_refuses_an_s3_endpoint_on_an_internal_address(cli):
    text = "name: bucket\ntype: storage\nprovider: s3\nbucket: evidence-b\nendpoint_url: http://192.168.0.10:9000\n"
    result = cli("destinations", "apply", "-f", cli.write("d.yaml", text), expect=2)
    assert "destination 'bucket' field 'endpoint_url'" in result.output and "private" in result.output
    cli("destinations", "apply", "-f", cli.write("ok.yaml", text + "allow_private_network: true\n"))
    assert _names(cli) == ["bucket"]


def test_allow_private_network_accepts_a_local_receiver(cli):
    path = cli.write("d.yaml", "name: hook\ntype: webhook\nurl: http://127.0.0.1:8080/in\nallow_private_network: true\n")
    cli("destinations", "apply", "-f", path)
    assert _names(cli) == ["hook"]


def test_allow_private_network_is_refused_where_it_means_nothing(cli):
    path = cli.write("d.yaml", GOOD + "allow_private_network: true\n")
    assert "only used by provider s3" in cli("destinations", "apply", "-f", path, expect=2).output


def test_delete_refuses_while_a_report_uses_the_destination(cli):
    mail = "---\nname: mail\ntype: email\nhost: smtp.example.org\nfrom: r@example.org\nto: [o@example.org]\n"
    cli("destinations", "apply", "-f", cli.write("d.yaml", GOOD + mail))
    cli("reports", "apply", "-f", cli.write("r.yaml", REPORT.format(id="uses-archive", destinations="[archive]", notify="[]")
                                           + "---\n" + REPORT.format(id="alerts-mail", destinations="[]", notify="[mail]")))
    refused = cli("destinations", "delete", "archive", "--yes", expect=2)
    assert "report(s) uses-archive (destinations)" in refused.output
    refused = cli("destinations", "delete", "mail", "--yes", expect=2)
    assert "alerts-mail (notify_on_failure)" in refused.output
    assert _names(cli) == ["archive", "mail"]

    cli("reports", "delete", "uses-archive", "--yes")
    cli("destinations", "delete", "archive", expect=1, input="n\n")  # declined at the prompt
    assert _names(cli) == ["archive", "mail"]
    done = cli("destinations", "delete", "archive", "--yes")
    assert "destination archive: deleted" in done.output
    assert _names(cli) == ["mail"]
    assert "does not exist" in cli("destinations", "delete", "archive", "--yes", expect=2).output
    # a report cannot name it any more
    bad = cli("reports", "apply", "-f", cli.write("r2.yaml", REPORT.format(id="late", destinations="[archive]", notify="[]")),
              expect=2)
    assert "unknown destination 'archive'" in bad.output


def test_an_artifact_folder_outside_the_storage_root_stops_the_start(cli, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_ARTIFACT_DIR", str(cli.tmp_path / "elsewhere"))
    result = cli("destinations", "list", expect=2)
    assert result.output.count("\n") == 1
    assert result.output.startswith("configuration error: COMPLIANCE_ARTIFACT_DIR ")
    assert "outside the storage root" in result.output
    from compliance_reports.orchestration.resources import default_resources

    with pytest.raises(ValueError, match="outside the storage root"):
        default_resources()  # what the code location calls when it loads
    monkeypatch.setenv("COMPLIANCE_STORAGE_ROOT", str(cli.tmp_path))
    cli("destinations", "list")
