"""Drive the whole pipeline fast: what the fault drills and the pipeline benchmarks share."""
