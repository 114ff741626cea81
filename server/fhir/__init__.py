"""FHIR-generic helpers: no Flask, no SQL."""
