"""The approval service: approvers decide on evidence, with separation of duties, signed."""
