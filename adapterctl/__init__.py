"""`adapterctl`, the operator's and auditor's command line."""
