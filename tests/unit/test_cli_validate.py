"""``ilp validate``: offline validation of files, its output and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.cli import main
from tests.conftest import PACKAGE_CACHE, ROOT

EXAMPLES = ROOT / "profiles" / "examples"
ILP = "https://fhir.ilp-gateway.id/StructureDefinition/"
LOCAL = "https://example.org/fhir/StructureDefinition/patient-with-gender"


@pytest.fixture(autouse=True)
def _definitions(monkeypatch):
    monkeypatch.setenv("ILP_PROFILES_DIR", str(ROOT / "profiles"))
    monkeypatch.setenv("ILP_PACKAGE_CACHE", str(PACKAGE_CACHE))


def example(name):
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def write(folder: Path, name, resource):
    path = folder / name
    path.write_text(json.dumps(resource))
    return str(path)


def short_nik_patient():
    patient = example("Patient-ilp-patient-example")
    patient["identifier"][0]["value"] = "526001120125000"
    return patient


def test_valid_examples_exit_0_with_a_summary(capsys):
    files = [str(EXAMPLES / "Patient-ilp-patient-example.json")]
    files.append(str(EXAMPLES / "Observation-ilp-obs-bp-panel-example.json"))

    assert main(["validate", *files]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out == ["2 file(s): 0 with errors; 0 error(s), 0 warning(s), 0 information"]


def test_an_error_exits_1_with_one_line_per_issue(tmp_path, capsys):
    broken = write(tmp_path, "patient.json", short_nik_patient())

    assert main(["validate", broken]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{broken}: error Patient.identifier[0].value: Constraint failed")
    assert "ilp-nik-1" in lines[0]
    assert lines[-1] == "1 file(s): 1 with errors; 1 error(s), 0 warning(s), 0 information"


def test_json_prints_the_operation_outcome(tmp_path, capsys):
    broken = write(tmp_path, "patient.json", short_nik_patient())

    assert main(["validate", "--json", broken]) == 1

    outcome = json.loads(capsys.readouterr().out)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Patient.identifier[0].value"]


def test_json_of_several_files_is_a_bundle_of_outcomes(tmp_path, capsys):
    valid = str(EXAMPLES / "Location-ilp-wilayah-example.json")
    broken = write(tmp_path, "patient.json", short_nik_patient())

    assert main(["validate", "--json", valid, broken]) == 1

    bundle = json.loads(capsys.readouterr().out)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    first, second = bundle["entry"]
    assert first["fullUrl"] == Path(valid).as_uri()
    assert first["resource"]["issue"][0]["diagnostics"] == "No issues detected"
    assert second["resource"]["issue"][0]["severity"] == "error"


def test_profile_option(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ILP_ENFORCE_PROFILES", "")  # only what is asked for
    patient = example("Patient-ilp-patient-example")
    del patient["meta"], patient["name"]
    path = write(tmp_path, "patient.json", patient)

    assert main(["validate", path]) == 0
    assert main(["validate", path, "--profile", ILP + "ilp-patient"]) == 1

    assert "Patient.name" in capsys.readouterr().out


def test_with_loads_supporting_definitions(tmp_path, capsys):
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    write(
        definitions,
        "StructureDefinition-patient-with-gender.json",
        {
            "resourceType": "StructureDefinition",
            "url": LOCAL,
            "name": "PatientWithGender",
            "status": "draft",
            "kind": "resource",
            "abstract": False,
            "type": "Patient",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "derivation": "constraint",
            "differential": {
                "element": [{"id": "Patient.gender", "path": "Patient.gender", "min": 1}]
            },
        },
    )
    patient = write(tmp_path, "patient.json", {"resourceType": "Patient", "active": True})

    assert main(["validate", patient, "--profile", LOCAL]) == 1
    assert "is not known" in capsys.readouterr().out
    assert main(["validate", patient, "--profile", LOCAL, "--with", str(definitions)]) == 1
    assert "Patient.gender: minimum required = 1" in capsys.readouterr().out
    fixed = write(tmp_path, "fixed.json", {"resourceType": "Patient", "gender": "female"})
    assert main(["validate", fixed, "--profile", LOCAL, "--with", str(definitions)]) == 0


def test_a_bundle_is_validated_with_its_entries(tmp_path, capsys):
    patient = short_nik_patient()
    del patient["meta"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": patient, "request": {"method": "POST", "url": "Patient"}}],
    }
    path = write(tmp_path, "bundle.json", bundle)

    assert main(["validate", path]) == 1

    assert "error Bundle.entry[0].resource.identifier[0].value" in capsys.readouterr().out


def test_unreadable_files_are_errors(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")

    assert main(["validate", str(tmp_path / "bad.json"), str(tmp_path / "missing.json")]) == 1

    out = capsys.readouterr().out
    assert "bad.json: fatal: The file is not valid JSON" in out
    assert "missing.json: fatal: Cannot read the file" in out


def test_missing_definitions_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ILP_PACKAGE_CACHE", str(tmp_path))

    assert main(["validate", str(EXAMPLES / "Patient-ilp-patient-example.json")]) == 2

    assert "ilp package fetch" in capsys.readouterr().err
