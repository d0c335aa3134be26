"""The study scripts the README runs, importable from an installed package:
``python -m gan_cli.scripts.loss_study`` (also metric_sanity, real_data_floor). studies.py is what
loss_study.py shares with scripts/reproduce_toy.py."""
