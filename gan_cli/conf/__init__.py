"""Hydra config groups shipped with the package (see train.yaml)."""

from pathlib import Path

#: The folder of the shipped config groups (train.yaml, eval.yaml, sample.yaml, model/, ...).
CONF_DIR = Path(__file__).resolve().parent
