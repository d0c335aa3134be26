"""One file per metric family; each defines its :class:`~gan_cli.metrics.context.Metric` records in
``DEFINES``. gan_cli/metrics/registry.py collects every module here, so adding a metric is adding
a file (the docstring of gan_cli/metrics/registry.py lists the options each one reads)."""
