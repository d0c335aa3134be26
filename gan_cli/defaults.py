"""Choices the command line leaves open, filled from the options it names (no torch here).

A model that needs its own kind of data names it in its option file (``dataset_default`` in
conf/model/pix2pix.yaml, singan.yaml): ``gan-train model=pix2pix`` alone trains on that dataset,
and says so in the log. Hydra cannot do it itself: an option's defaults list may not override a
group chosen after it (train.yaml picks the model before the dataset).
"""

from __future__ import annotations

from omegaconf import OmegaConf

from gan_cli.config import CONF_DIR

#: Groups and keys that choose or configure a dataset themselves: with one of them on the command
#: line, nothing is picked (a dataset named explicitly is checked against the model as before).
_CHOOSE_DATA = {"dataset", "experiment", "hparams_search", "tiny", "resume"}

#: What was picked, for the run's log (gan_cli/cli.py logs it once Hydra has set logging up).
NOTES: list[str] = []


def model_dataset(argv: list[str]) -> list[str]:
    """``argv`` with ``dataset=<the model's dataset_default>`` added when it names a model (one,
    no sweep) that has one and nothing that chooses a dataset; the choice is noted in NOTES."""
    model = None
    for arg in argv:
        name, eq, value = arg.partition("=")
        root = name.lstrip("+~").split("@")[0].split(".")[0].split("/")[0]
        if eq and root in _CHOOSE_DATA:
            return argv
        if eq and name == "model":
            model = value
    path = CONF_DIR / "model" / f"{model}.yaml"
    if model is None or not model.isidentifier() or not path.is_file():
        return argv  # no model named, a sweep over models, or an unknown one (Hydra says so)
    picked = OmegaConf.load(path).get("dataset_default")
    if not picked:
        return argv
    NOTES.append(f"model={model} and no dataset named: training on its default dataset={picked} "
                 f"(another: dataset=...)")
    return [*argv, f"dataset={picked}"]
