"""Datasets: each builds a DataSource (see docs/architecture.md)."""
