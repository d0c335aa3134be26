"""Hydra config groups shipped with the package (see train.yaml)."""
