"""Declarative studies: a YAML recipe → validated schema → staged, resumable runner → report."""
