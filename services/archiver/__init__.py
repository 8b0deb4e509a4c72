"""The archiver: retention sweeps; archive manifest and hashes, verify, then delete weights."""
