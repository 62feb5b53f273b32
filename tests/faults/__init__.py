"""The fault suite of SPEC §14: what no input can do. Shared pieces live in ``poison``."""
