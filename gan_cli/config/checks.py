"""The helpers every schema checks its values with, and the paths the configs share."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from gan_cli.errors import cut, shown

#: Where datasets are looked for (and unpacked) unless dataset.root or $GAN_CLI_DATA says otherwise.
DATA_ROOT_DEFAULT = "~/.cache/gan-cli/data"


def default_data_root() -> str:
    """The data root a dataset uses when none is given: $GAN_CLI_DATA, else DATA_ROOT_DEFAULT."""
    return os.environ.get("GAN_CLI_DATA", DATA_ROOT_DEFAULT)


class FieldError(ValueError):
    """A value of the right type that is impossible; ``field`` names the key inside its group."""

    def __init__(self, field_name: str, message: str):
        message = cut(message, 300)  # a value it quotes may come from a file: a few hundred characters
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


def _require(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise FieldError(field_name, message)


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(value > 0, name, f"must be > 0, got {value}")


def _non_negative(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(value >= 0, name, f"must be >= 0, got {value}")


def _finite(obj: Any, *names: str) -> None:
    """Each of ``names`` a finite number (or null): no inf or nan."""
    for name in names:
        value = getattr(obj, name)
        _require(value is None or math.isfinite(value), name, f"must be a finite number, got {value}")


def _jacobian_threshold(obj: Any) -> None:
    """``obj.jacobian_threshold``: null, or a multiple (>= 1) of the batch's median Jacobian norm."""
    value = obj.jacobian_threshold
    _require(value is None or value >= 1, "jacobian_threshold",
             f"must be >= 1 (a multiple of the median) or null, got {value}")


def _inception_keys(obj: Any) -> None:
    """``obj.inception_resize`` (tf1 | antialias) and ``obj.inception_sha256`` (null or hex)."""
    _one_of(obj, "inception_resize", ("tf1", "antialias"))
    digest = obj.inception_sha256
    _require(digest is None or (0 < len(digest) <= 64 and all(c in "0123456789abcdefABCDEF" for c in digest)),
             "inception_sha256", f"must be a hex SHA-256 (or a prefix of one) or null, got {digest!r}")


def _one_of(obj: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    _require(value in choices, name, f"must be one of {', '.join(choices)}; got {shown(value)}")


#: gan-cli's config folder (conf/): the command line's, resume's and the trust checks' one place.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
