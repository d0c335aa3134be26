"""Dataclass schemas for every config group, registered in Hydra's ConfigStore.

Each YAML option under ``conf/<group>/`` starts from one of these schemas
(``defaults: [/schema/<group>@_here_: <name>]``), so Hydra rejects an unknown key or a value of the
wrong type while it composes the config. Values that are of the right type but impossible
(a negative learning rate, a zero batch) are rejected by ``validate`` before anything is built:
each schema's ``__post_init__`` checks its own fields and names the one that is wrong.

Every key is documented where it is defined, with its unit and what ``null`` or 0 means. One module
per group (data, model, loss, optimizer, hardware, logger), train.py for conf/train.yaml's own keys,
commands.py for gan-eval and gan-sample, schemas.py for the table of options and ``validate``,
trust.py for configs read back from files. Nothing here imports torch.
"""

from gan_cli.config.checks import CONF_DIR, DATA_ROOT_DEFAULT, FieldError, default_data_root  # noqa: F401
from gan_cli.config.schemas import (  # noqa: F401
    GROUPS,
    IS_SPLITS,
    SCHEMAS,
    register_configs,
    validate,
    validate_eval,
    validate_sample,
)
from gan_cli.config.trust import (  # noqa: F401
    check_saved_config,
    refuse_untrusted,
    trusted_targets,
    validate_saved_config,
)
