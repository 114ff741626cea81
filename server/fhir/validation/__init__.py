"""Profile validation: base R4 and ILP profiles from StructureDefinitions, ValueSets, CodeSystems.

``ConformanceSet`` holds the definitions, ``Validator`` checks instances against them.
See https://hl7.org/fhir/R4/validation.html.
"""

from server.fhir.validation.conformance import ConformanceSet
from server.fhir.validation.validator import Validator

__all__ = ["ConformanceSet", "Validator"]
