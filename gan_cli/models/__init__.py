"""Generators and discriminators; shape facts come from the data (docs/architecture.md)."""
