"""The activator: canaries, analysis, activation and rollback, driving the serving replicas."""
