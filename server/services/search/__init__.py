"""Search: parameters parsed into a request, run against the storage indexes."""
