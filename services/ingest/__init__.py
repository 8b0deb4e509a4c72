"""Ingest: from a training cluster's AdapterTrained to a stored, manifest-bound revision."""
