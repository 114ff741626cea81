"""Broken variants of the ILP Patient, Organization, Location and Encounter examples.

Each variant breaks one rule of docs/profiles.md and must get that rule's issue at the
element at fault (its parent for a missing element or slice).  Helpers: ilp_variants.py.
"""

from __future__ import annotations

import pytest

from tests.validation.ilp_variants import (
    VARIANT_ARGS,
    append,
    check_variant,
    drop,
    put,
    variants_of,
)

ibu = variants_of("Patient-ilp-patient-ibu-example")  # identifier: 0 nik, 1 kk; extension: 0 WNI
bayi = variants_of("Patient-ilp-patient-bayi-example")  # identifier: 0 nik-ibu; extension: 1 mother
pustu = variants_of("Organization-ilp-pustu-polindes-example")  # type: 0 ilpType, 1 asal
puskesmas = variants_of("Organization-ilp-puskesmas-example")
posyandu = variants_of("Organization-ilp-posyandu-example")
dinkes = variants_of("Organization-ilp-dinkes-example")
site = variants_of("Location-ilp-location-posyandu-example")
wilayah = variants_of("Location-ilp-wilayah-example")
# class FLD, participant: 0 kader, 1 bidan
visit = variants_of("Encounter-ilp-encounter-posyandu-example")

# administrativeCode parts of address[0], in order: province, city, district, village, rt, rw
ADM = "address.0.extension.0.extension"
PROVINCE, CITY, DISTRICT, VILLAGE, RT = (f"{ADM}.{i}.valueCode" for i in range(5))
NO_DESA = drop(f"{ADM}.5", f"{ADM}.4", f"{ADM}.3")  # the village with its RT and RW

NIK = "Patient.identifier[0].value"
ADM_EXT = "Patient.address[0].extension[0]"
MIN_1 = ": minimum required = 1"
VS = "https://fhir.ilp-gateway.id/ValueSet/"
MOTHER = "https://fhir.ilp-gateway.id/StructureDefinition/ilp-mother"
WARNING = "warning"


def nik(value):
    return put("identifier.0.value", value)


PATIENT = [
    ibu("nik-15-digits", nik("526001610894000"), "ilp-nik-1", NIK),
    ibu("nik-with-letter", nik("52600161089400A2"), "ilp-nik-1", NIK),
    ibu("nik-province-99", nik("9960016108940002"), "ilp-nik-2", NIK),
    ibu("nik-province-10", nik("1060016108940002"), "ilp-nik-2", NIK),
    ibu("nik-kabupaten-00", nik("5200016108940002"), "ilp-nik-3", NIK),
    ibu("nik-kecamatan-00", nik("5260006108940002"), "ilp-nik-3", NIK),
    ibu("nik-day-00", nik("5260010008940002"), "ilp-nik-4", NIK),
    ibu("nik-day-32", nik("5260013208940002"), "ilp-nik-4", NIK),
    ibu("nik-day-40", nik("5260014008940002"), "ilp-nik-4", NIK),
    ibu("nik-day-72", nik("5260017208940002"), "ilp-nik-4", NIK),
    ibu("nik-month-13", nik("5260016113940002"), "ilp-nik-5", NIK),
    ibu("nik-month-00", nik("5260016100940002"), "ilp-nik-5", NIK),
    ibu("nik-serial-0000", nik("5260016108940000"), "ilp-nik-6", NIK),
    ibu("nik-day-of-a-man", nik("5260012108940002"), "ilp-pat-4", "Patient", severity=WARNING),
    ibu("nik-other-year", nik("5260016108950002"), "ilp-pat-4", "Patient", severity=WARNING),
    bayi("nik-ibu-day-of-a-man", nik("5260010302980001"), "ilp-nikibu-1", NIK),
    bayi("nik-ibu-serial-0000", nik("5260014302980000"), "ilp-nikibu-1", NIK),
    bayi("nik-ibu-15-digits", nik("526001430298000"), "ilp-nikibu-1", NIK),
    ibu(
        "two-niks",
        append(
            "identifier",
            {"system": "https://fhir.kemkes.go.id/id/nik", "value": "5260016108940003"},
        ),
        "Patient.identifier:nik: max allowed = 1",
        "Patient",
    ),
    ibu(
        "kk-15-digits",
        put("identifier.1.value", "526001080723000"),
        "ilp-kk-1",
        "Patient.identifier[1].value",
    ),
    bayi("no-nik-nor-nik-ibu", drop("identifier.0"), "ilp-pat-1", "Patient"),
    bayi("nik-ibu-without-mother", drop("extension.1"), "ilp-pat-2", "Patient"),
    bayi(
        "mother-not-a-patient",
        put("extension.1.valueReference", {"reference": "Group/x"}),
        "Found Group, but expected one of (Patient)",
        "Patient.extension[1].value.ofType(Reference)",
    ),
    bayi(
        "mother-as-string",
        put("extension.1", {"url": MOTHER, "valueString": "Nurul Hidayah"}),
        "valueString",
        "Patient.extension[1].value.ofType(string)",
    ),
    ibu(
        "citizenship-XX",
        put("extension.0.valueCode", "XX"),
        VS + "ilp-citizenship-status",
        "Patient.extension[0].value.ofType(code)",
    ),
    ibu(
        "citizenship-without-value",
        drop("extension.0.valueCode"),
        "Extension.value[x]" + MIN_1,
        "Patient.extension[0]",
    ),
    ibu("no-name", drop("name"), "Patient.name" + MIN_1, "Patient"),
    ibu("no-gender", drop("gender"), "Patient.gender" + MIN_1, "Patient"),
    ibu("no-birthDate", drop("birthDate"), "Patient.birthDate" + MIN_1, "Patient"),
    ibu("no-address", drop("address"), "Patient.address" + MIN_1, "Patient"),
    ibu("address-without-desa", NO_DESA, "ilp-pat-3", "Patient"),
    ibu(
        "address-without-administrativeCode",
        drop("address.0.extension"),
        "extension:administrativeCode",
        "Patient.address[0]",
    ),
]

ADMINISTRATIVE_CODE = [  # on the Patient's address; the rules are the extension's own
    ibu("province-3-digits", put(PROVINCE, "520"), "adm-1", ADM_EXT),
    ibu("province-99", put(PROVINCE, "99"), "adm-1", ADM_EXT),
    ibu("city-5-digits", put(CITY, "52600"), "adm-2", ADM_EXT),
    ibu("city-kota-70", put(CITY, "5270"), "adm-2", ADM_EXT),
    ibu("district-7-digits", put(DISTRICT, "5260010"), "adm-3", ADM_EXT),
    ibu("village-8-digits", put(VILLAGE, "52600120"), "adm-4", ADM_EXT),
    ibu("village-of-other-kecamatan", put(VILLAGE, "5260022003"), "adm-5", ADM_EXT),
    ibu("city-of-other-province", put(CITY, "5160"), "adm-5", ADM_EXT),
    ibu("rt-4-digits", put(RT, "0003"), "adm-6", ADM_EXT),
    ibu("rt-without-village", drop(f"{ADM}.3"), "adm-7", ADM_EXT),
    ibu("village-digit-7-is-3", put(VILLAGE, "5260013003"), "adm-8", ADM_EXT, severity=WARNING),
    ibu("no-province", drop(f"{ADM}.0"), "Extension.extension:province", ADM_EXT),
    ibu(
        "two-provinces",
        append(ADM, {"url": "province", "valueCode": "52"}),
        "province: max allowed = 1",
        ADM_EXT,
    ),
    ibu(
        "unknown-part-desa",
        append(ADM, {"url": "desa", "valueCode": "5260012003"}),
        "desa",
        f"{ADM_EXT}.extension[6]",
    ),
]

ORGANIZATION = [
    pustu("pustu-without-partOf", drop("partOf"), "Organization.partOf" + MIN_1, "Organization"),
    pustu(
        "pustu-partOf-a-location",
        put("partOf", {"reference": "Location/x"}),
        "Found Location",
        "Organization.partOf",
    ),
    pustu("pustu-without-asal", drop("type.1"), "Organization.type:asal", "Organization"),
    pustu(
        "pustu-asal-klinik",
        put("type.1.coding.0.code", "klinik"),
        VS + "ilp-pustu-origin",
        "Organization.type[1]",
    ),
    pustu(
        "pustu-typed-puskesmas",
        put("type.0.coding.0.code", "puskesmas"),
        "Organization.type:ilpType",
        "Organization",
    ),
    pustu("pustu-without-desa", drop(f"{ADM}.3"), "ilp-pustu-1", "Organization"),
    puskesmas("puskesmas-without-desa", drop(f"{ADM}.3"), "ilp-puskesmas-1", "Organization"),
    posyandu("posyandu-without-desa", NO_DESA, "ilp-posyandu-1", "Organization"),
    posyandu(
        "posyandu-without-partOf", drop("partOf"), "Organization.partOf" + MIN_1, "Organization"
    ),
    dinkes(
        "dinkes-type-rs",
        put("type.0.coding.0.code", "rs"),
        VS + "ilp-facility-type",
        "Organization.type[0]",
    ),
    pustu(
        "kode-of-other-system",
        put("identifier.0.system", "http://sys-ids.kemkes.go.id/organization/10526001"),
        "Organization.identifier:kode",
        "Organization",
    ),
    pustu(
        "kode-with-space",
        put("identifier.0.value", "pustu 1"),
        "ilp-org-1",
        "Organization.identifier[0].value",
    ),
    pustu("no-active", drop("active"), "Organization.active" + MIN_1, "Organization"),
    pustu("no-name", drop("name"), "Organization.name" + MIN_1, "Organization"),
    pustu("no-address", drop("address"), "Organization.address" + MIN_1, "Organization"),
]

LOCATION = [
    site(
        "position-swapped",
        put("position", {"longitude": -8.6, "latitude": 116.5}),
        "ilp-loc-2",
        "Location.position",
    ),
    site("position-latitude-10", put("position.latitude", 10), "ilp-loc-2", "Location.position"),
    site(
        "physicalType-jdn",
        put("physicalType.coding.0.code", "jdn"),
        VS + "ilp-location-physical-type",
        "Location.physicalType",
    ),
    site("no-physicalType", drop("physicalType"), "Location.physicalType" + MIN_1, "Location"),
    site(
        "no-managingOrganization",
        drop("managingOrganization"),
        "Location.managingOrganization" + MIN_1,
        "Location",
    ),
    site("no-name", drop("name"), "Location.name" + MIN_1, "Location"),
    site("no-status", drop("status"), "Location.status" + MIN_1, "Location"),
    site("no-address", drop("address"), "Location.address" + MIN_1, "Location"),
    site(
        "address-without-desa",
        drop(*(f"address.extension.0.extension.{i}" for i in (5, 4, 3))),
        "ilp-loc-1",
        "Location",
    ),
    wilayah(
        "wilayah-physicalType-bu",
        put("physicalType.coding.0.code", "bu"),
        "does not match the pattern",
        "Location.physicalType",
    ),
    wilayah(
        "wilayah-without-administrativeCode",
        drop("address.extension"),
        "extension:administrativeCode",
        "Location.address",
    ),
]

ENCOUNTER = [
    visit("class-VR", put("class.code", "VR"), VS + "ilp-encounter-class", "Encounter.class"),
    visit("no-class", drop("class"), "Encounter.class" + MIN_1, "Encounter"),
    visit("no-klaster", drop("serviceType"), "Encounter.serviceType" + MIN_1, "Encounter"),
    visit(
        "klaster-7",
        put("serviceType.coding.0.code", "7"),
        VS + "ilp-klaster",
        "Encounter.serviceType",
    ),
    visit("no-siklus-hidup", drop("type.0"), "Encounter.type:siklusHidup", "Encounter"),
    visit(
        "siklus-hidup-remaja",
        put("type.0.coding.0.code", "remaja"),
        VS + "ilp-siklus-hidup",
        "Encounter.type[0]",
    ),
    visit(
        "klaster-3-for-balita",
        put("serviceType.coding.0.code", "3"),
        "ilp-enc-2",
        "Encounter",
        severity=WARNING,
    ),
    visit(
        "field-visit-without-location", drop("location"), "ilp-enc-1", "Encounter", severity=WARNING
    ),
    visit("finished-without-end", drop("period.end"), "ilp-enc-3", "Encounter"),
    visit(
        "no-period-start",
        drop("period.start"),
        "Encounter.period.start" + MIN_1,
        "Encounter.period",
    ),
    visit(
        "no-serviceProvider",
        drop("serviceProvider"),
        "Encounter.serviceProvider" + MIN_1,
        "Encounter",
    ),
    visit("no-subject", drop("subject"), "Encounter.subject" + MIN_1, "Encounter"),
    visit(
        "subject-a-group",
        put("subject", {"reference": "Group/x"}),
        "Found Group",
        "Encounter.subject",
    ),
    visit("no-participant", drop("participant"), "Encounter.participant" + MIN_1, "Encounter"),
    visit(
        "participant-without-individual",
        drop("participant.0.individual"),
        "individual" + MIN_1,
        "Encounter.participant[0]",
    ),
    visit(
        "participant-without-ilp-role",
        drop("participant.1.type.0.coding.1"),
        "coding:ilpRole",
        "Encounter.participant[1].type[0]",
    ),
    visit(
        "participant-without-v3-type",
        drop("participant.1.type.0.coding.0"),
        "coding:participationType",
        "Encounter.participant[1].type[0]",
    ),
    visit(
        "participant-role-dukun",
        put("participant.0.type.0.coding.1.code", "dukun"),
        VS + "ilp-participant-role",
        "Encounter.participant[0].type[0].coding[1]",
    ),
    visit(
        "participant-two-types",
        append("participant.0.type", {"text": "x"}),
        "type: max allowed = 1",
        "Encounter.participant[0]",
    ),
]


@pytest.mark.parametrize(VARIANT_ARGS, PATIENT)
def test_broken_patient(ilp_validator, name, mutation, words, expression, severity):
    check_variant(ilp_validator, name, mutation, words, expression, severity)


@pytest.mark.parametrize(VARIANT_ARGS, ADMINISTRATIVE_CODE)
def test_broken_administrative_code(ilp_validator, name, mutation, words, expression, severity):
    check_variant(ilp_validator, name, mutation, words, expression, severity)


@pytest.mark.parametrize(VARIANT_ARGS, ORGANIZATION)
def test_broken_organization(ilp_validator, name, mutation, words, expression, severity):
    check_variant(ilp_validator, name, mutation, words, expression, severity)


@pytest.mark.parametrize(VARIANT_ARGS, LOCATION)
def test_broken_location(ilp_validator, name, mutation, words, expression, severity):
    check_variant(ilp_validator, name, mutation, words, expression, severity)


@pytest.mark.parametrize(VARIANT_ARGS, ENCOUNTER)
def test_broken_encounter(ilp_validator, name, mutation, words, expression, severity):
    check_variant(ilp_validator, name, mutation, words, expression, severity)
