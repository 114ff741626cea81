"""FHIR operations (``$name``), one module each; see https://hl7.org/fhir/R4/operations.html."""
