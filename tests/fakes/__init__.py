"""In-memory stand-ins for what ingest, validator, evaluator and archiver call outside the
kernel, one module per service, for handler unit tests and the in-process runner.

The kernel itself is not faked here: `shared.registry.memory` holds the registry and
catalogue in memory, `shared.artifacts.LocalArtifactStore` and
`shared.coldstore.DirectoryColdStorage` are our own code and run on a temporary folder.
"""
