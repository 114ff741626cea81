"""Services: the domain logic. Plain arguments in, results out, FhirError raised."""
