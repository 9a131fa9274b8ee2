"""Scenes, splits, transforms and streaming patches (the data layer)."""
