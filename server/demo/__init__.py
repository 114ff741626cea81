"""A synthetic ILP district: FHIR R4 resources for demos and benchmarks.

Pure Python (no Flask, no SQL): ``district.generate`` yields resources in dependency order from
a seeded generator, so the same seed and size always give the same resources under the same ids.
See docs/demo.md for what the district holds and how it is loaded.
"""
