"""Config composition: every option of every group composes, validates and builds; bad
overrides end with exit status 2 and a message that names the key and the valid choices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gan_cli.build import build, build_loss, build_network, build_optimizers
from gan_cli.cli import CONF_DIR
from gan_cli.config import GROUPS, SCHEMAS, register_configs, validate
from gan_cli.data.base import Batch
from gan_cli.errors import ConfigError
from tests.conftest import SMALL, run_cli

# datasets read from files in their own on-disk layouts, built here from tiny fixtures
# (tests/test_config.py's data_root): image i is flat gray with value FLAT[i], label i % 10
FROM_FIXTURES = {"mnist", "cifar10", "celeba", "lsun", "image_folder", "mnist_5k", "paired_folder"}
FLAT = [8 * i + 3 for i in range(20)]
# models with a network per scale of one image, whose shapes (and latent sizes) the data set
PER_SCALE = {"singan"}
# models conditioned on an input image (paired data: no labels, input_channels from the data)
IMAGE_TO_IMAGE = {"pix2pix"}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose_cfg(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    if "path" in cfg.dataset.keys() and OmegaConf.is_missing(cfg.dataset, "path"):  # image_folder
        cfg.dataset.path = "/nonexistent/images"
    return cfg


def assert_refused(overrides: list[str], match: str) -> None:
    """The config composed with ``overrides`` is refused, by composition (a value of the wrong type)
    or by ``validate``, with a message matching ``match``."""
    with pytest.raises((ConfigError, ConfigCompositionException), match=match):
        validate(compose_cfg(overrides))


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file: zero, zero, the type (0x08 = uint8), the rank, the sizes big-endian, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _flat_png(path: Path, value: int, size: tuple[int, int] = (20, 24)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Tiny copies of MNIST, MNIST-5k, CIFAR-10, CelebA, LSUN and an image folder, each in the
    layout its builder reads (torchvision's, or the documented folders): 16 or 20 flat images."""
    import gzip
    import pickle

    from PIL import Image

    root = tmp_path_factory.mktemp("data")
    (root / "pairs").mkdir()
    n = 16
    images = np.stack([np.full((28, 28), FLAT[i]) for i in range(n)])
    labels = np.arange(n) % 10
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    rows = np.concatenate([images.reshape(n, 784), labels[:, None]], 1)
    with gzip.open(root / "mnist_5k.csv.gz", "wt") as f:
        f.write("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir()
    for b, name in enumerate(["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                              "data_batch_5", "test_batch"]):
        index = [4 * b + j for j in range(4)] if b < 5 else list(range(4))
        batch = {"data": np.stack([np.full(3072, FLAT[i], dtype=np.uint8) for i in index]),
                 "labels": [i % 10 for i in index]}
        (cifar / name).write_bytes(pickle.dumps(batch))
    (cifar / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(c) for c in range(10)]}))
    names = [f"{i + 1:06d}.png" for i in range(n)]
    for i, name in enumerate(names):
        _flat_png(root / "celeba" / "img_align_celeba" / name, FLAT[i])
        _flat_png(root / "lsun" / "bedroom_train" / name, FLAT[i])
        _flat_png(root / "folder" / f"part{i % 2}" / name, FLAT[i])
        # a pix2pix pair A|B side by side: A (the input) flat FLAT[i], B (the target) 250 - FLAT[i]
        pair = Image.new("RGB", (48, 24), (FLAT[i],) * 3)
        pair.paste((250 - FLAT[i],) * 3, (24, 0, 48, 24))
        pair.save(root / "pairs" / name)
    (root / "celeba" / "list_eval_partition.txt").write_text(
        "".join(f"{name} {0 if i < n - 2 else 2}\n" for i, name in enumerate(names)))
    return root


def assert_from_fixture(x: torch.Tensor, y: torch.Tensor | None, flat: list[int] = FLAT) -> None:
    """Every image of the batch is one of the fixture's flat images (and has its label)."""
    values = ((x.double() + 1) * 127.5).round()
    for k in range(len(x)):
        seen = values[k].unique().tolist()
        assert len(seen) == 1 and seen[0] in flat, (k, seen[:5])
        if y is not None:
            assert int(y[k]) == flat.index(seen[0]) % 10


def test_every_group_has_options_and_schemas():
    for group in GROUPS:
        assert options(group), group
    # every YAML option names a schema that exists
    for group in GROUPS:
        for name in options(group):
            text = (CONF_DIR / group / f"{name}.yaml").read_text()
            schema = text.split(f"/schema/{group}@_here_:")[1].split()[0]
            assert schema in SCHEMAS[group], (group, name)


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
@pytest.mark.slow
def test_every_option_composes_validates_and_builds(group, option, request, monkeypatch):
    cfg = compose_cfg([f"{group}={option}"])
    validate(cfg)
    assert OmegaConf.get_type(cfg[group]) is not dict  # typed by its schema
    if group == "dataset":
        if option in FROM_FIXTURES:
            root = request.getfixturevalue("data_root")
            if option in ("image_folder", "paired_folder"):
                cfg.dataset.path = str(root / ("folder" if option == "image_folder" else "pairs"))
            else:
                cfg.dataset.root = str(root)
            if "num_workers" in cfg.dataset:
                cfg.dataset.num_workers = 0
            # the fixture's CIFAR-10 files cannot have the real files' MD5 sums
            import torchvision.datasets.cifar as tv_cifar

            monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
        data = build(cfg.dataset, "dataset", batch_size=8, device="cpu", seed=0)
        batch = Batch.of(data.next())
        x, y = batch.x, batch.y
        assert x.shape == (8, *data.info.shape)
        if option == "paired_folder":  # the target is B = 250 - A, the condition is A
            assert_from_fixture(x, None, flat=[250 - v for v in FLAT])
            assert_from_fixture(y, None)
            assert torch.equal(((x + 1) * 127.5).round(), 250 - ((y + 1) * 127.5).round())
        elif option in FROM_FIXTURES:
            assert data.num_samples == (20 if option == "cifar10" else
                                        14 if option == "celeba" else 16)
            assert_from_fixture(x, y)
            assert (y is not None) == (option in ("mnist", "mnist_5k", "cifar10"))
    elif group == "loss":
        loss = build_loss(cfg.loss)  # the R1/R2 keys configure regularisers, built apart
        assert loss.n_critic == cfg.loss.n_critic
    elif group == "model" and option in PER_SCALE:
        # one network per scale, shaped by the image (no z_dim): build the coarsest scale's pair
        G = build_network(cfg.model.generator, "model.generator", data_shape=(3, 25, 25),
                          num_classes=10, bounded=True)
        D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=(3, 25, 25),
                          num_classes=10, output="score")
        assert G.num_classes == D.num_classes == 0
        assert D(G(torch.randn(3, G.z_dim))).shape == (3,)
    elif group == "model" and option in IMAGE_TO_IMAGE:
        shape = (1, 16, 16)
        G = build_network(cfg.model.generator, "model.generator", z_dim=cfg.model.z_dim,
                          data_shape=shape, num_classes=0, bounded=True, input_channels=2)
        D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=shape,
                          num_classes=0, output="score", input_channels=2,
                          receptive_field=16)  # the default 70 px needs at least 32 px
        y = torch.randn(3, 2, 16, 16)  # the input images
        assert D(G(torch.randn(3, cfg.model.z_dim), y), y).shape == (3 * D.patches,)
    elif group == "model":
        shape = (2,) if option == "mlp" else (1, 16, 16)
        G = build_network(cfg.model.generator, "model.generator", z_dim=cfg.model.z_dim,
                          data_shape=shape, num_classes=10, bounded=False)
        D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=shape,
                          num_classes=10, output="score")
        assert G.num_classes == D.num_classes
        z, y = torch.randn(3, cfg.model.z_dim), torch.tensor([0, 1, 2])
        assert D(G(z, y), y).shape == (3,)
    elif group == "optimizer":
        G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
        opt_g, opt_d = build_optimizers(cfg.optimizer, G, D)
        assert opt_g.param_groups[0]["lr"] == cfg.optimizer.lr_g
        assert opt_d.param_groups[0]["lr"] == cfg.optimizer.lr_d
    elif group == "logger":
        assert hasattr(instantiate(cfg.logger), "log")


@pytest.mark.parametrize("optimizer,auto", [("adam", "fused"), ("sgd", "fused"),
                                            ("rmsprop", "foreach")])
@pytest.mark.slow
def test_optimizer_implementations_take_the_same_steps(optimizer, auto):
    """optimizer.implementation picks torch's update kernel: auto is fused where the class has
    one for CPU tensors (Adam, SGD), else foreach (RMSprop); every kernel takes the same steps as
    the single-tensor loop (torch's CPU default), to float rounding."""
    weights, kernels = {}, {}
    for implementation in ("single", "foreach", "fused", "auto"):
        if implementation == "fused" and auto != "fused":
            continue
        cfg = compose_cfg([f"optimizer={optimizer}", f"optimizer.implementation={implementation}"])
        torch.manual_seed(0)
        G, D = torch.nn.Linear(3, 4), torch.nn.Linear(4, 1)
        opt_g, opt_d = build_optimizers(cfg.optimizer, G, D)
        group = opt_g.param_groups[0]
        kernels[implementation] = ("fused" if group.get("fused") else
                                   "foreach" if group.get("foreach") else "single")
        g = torch.Generator().manual_seed(1)
        for _ in range(5):
            for p in (*G.parameters(), *D.parameters()):
                p.grad = torch.randn(p.shape, generator=g)
            opt_g.step()
            opt_d.step()
        weights[implementation] = torch.cat([p.detach().flatten() for p in
                                             (*G.parameters(), *D.parameters())])
    assert kernels["auto"] == auto
    assert {k: v for k, v in kernels.items() if k != "auto"} == {
        k: k for k in kernels if k != "auto"}
    torch.manual_seed(0)
    start = torch.cat([p.detach().flatten() for p in
                       (*torch.nn.Linear(3, 4).parameters(), *torch.nn.Linear(4, 1).parameters())])
    assert (weights["single"] - start).abs().min() > 1e-6  # every weight took the steps
    for implementation, w in weights.items():
        torch.testing.assert_close(w, weights["single"], rtol=1e-6, atol=1e-6,
                                   msg=f"{optimizer} {implementation}")


@pytest.mark.slow
def test_paper_defaults_for_n_critic():
    n_critic = {o: compose_cfg([f"loss={o}"]).loss.n_critic for o in options("loss")}
    assert n_critic == {"began": 1, "dragan": 1, "fgan": 1, "hinge": 1, "lsgan": 1, "minimax": 1,
                        "mmd": 5, "ns": 1, "ns_r1": 1, "wgan": 5, "wgan_gp": 5,
                        "singan_wgan_gp": 3, "none": 1}


@pytest.mark.parametrize("override,key", [
    (["optimizer.lr_d=-1e-4"], "optimizer.lr_d"),
    (["optimizer.lr_g=0"], "optimizer.lr_g"),
    (["train.reset_d_at=[100,0]"], "train.reset_d_at"),
    (["train.batch_size=0"], "train.batch_size"),
    (["train.steps=-5"], "train.steps"),
    (["loss=wgan", "loss.clip_value=0"], "loss.clip_value"),
    (["loss=wgan_gp", "loss.n_critic=0"], "loss.n_critic"),
    (["dataset=ring8", "dataset.std=-0.1"], "dataset.std"),
    (["model=mlp", "model.generator.hidden=[]"], "model.generator.hidden"),
    (["hardware.precision=fp8"], "hardware.precision"),
    (["optimizer.implementation=fast"], "optimizer.implementation"),
    (["optimizer.lr_decay_start=-1"], "optimizer.lr_decay_start"),
    (["optimizer.lr_decay_steps=100", "optimizer.lr_decay_start=100"], "optimizer.lr_decay_start"),
    (["optimizer.lr_decay=linear", "train.steps=50", "optimizer.lr_decay_start=50"],
     "optimizer.lr_decay_start"),
    (["dataset=image_folder"], "dataset.path"),
    (["model=dcgan", "model.discriminator.conditioning=both"], "model.discriminator.conditioning"),
])
def test_impossible_values_are_config_errors_naming_the_key(override, key):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=override)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


# --- through the real CLI ----------------------------------------------------------------------

BAD = [
    # (overrides, words the message must contain)
    (["loss=wgangp"], ["loss=wgangp: no such option", "Did you mean 'loss=wgan_gp'?", "hinge", "began"]),
    (["dataset=ring9"], ["dataset=ring9", "Did you mean 'dataset=ring8'?", "grid25", "sine", "swissroll"]),
    (["loss=wgan_gp", "loss.gp_lamda=5"], ["unknown key 'loss.gp_lamda'", "loss.gp_lambda",
                                           "gp_lambda", "n_critic"]),
    (["train.step=10"], ["unknown key 'train.step'", "train.steps"]),
    (["optimizer.lr_d=-1e-4"], ["optimizer.lr_d", "must be >= 0"]),
    (["train.batch_size=0"], ["train.batch_size", "must be > 0"]),
    (["optimizer.lr_g=fast"], ["lr_g", "fast"]),
    (["hardware.device=tpu"], ["hardware.device", "cpu, cuda"]),
    (["los=ns"], ["unknown key 'los'", "loss"]),
]


@pytest.mark.parametrize("overrides,words", BAD, ids=[" ".join(b[0]) for b in BAD])
@pytest.mark.slow
def test_bad_overrides_exit_2_with_one_clear_message(tmp_path: Path, overrides, words):
    proc = run_cli([*SMALL, *overrides], tmp_path / "run")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before training


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.slow
def test_gpu_asked_for_and_absent_is_a_clear_error(tmp_path: Path):
    proc = run_cli([*SMALL, "hardware=gpu"], tmp_path / "run")
    assert proc.returncode == 2
    assert "no CUDA GPU" in proc.stderr and "hardware=cpu" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("dataset", ["ring8", "grid25"])
@pytest.mark.slow
def test_the_mixtures_tuned_mlp_applies_to_the_mlp_only(dataset):
    """conf/tuned/<dataset>_mlp.yaml joins `model=mlp dataset=<mixture>` (and the dataset alone,
    whose recipe picks the MLP); another model on the same data keeps its own keys, and the
    command line and experiment files still win over the tuning."""
    tuned = OmegaConf.load(CONF_DIR / "tuned" / "ring8_mlp.yaml")  # grid25's includes it
    steps = OmegaConf.load(CONF_DIR / "tuned" / f"{dataset}_mlp.yaml").train.steps
    for overrides in ([f"dataset={dataset}"], ["model=mlp", f"dataset={dataset}"]):
        cfg = compose_cfg(overrides)
        validate(cfg)
        assert cfg.train.steps == steps
        tuned_model = tuned.model
        assert cfg.model.z_dim == tuned_model.z_dim
        assert cfg.model.generator.activation == tuned_model.generator.activation
        assert list(cfg.model.generator.hidden) == list(tuned_model.generator.hidden)
        assert list(cfg.model.discriminator.hidden) == list(tuned_model.discriminator.hidden)
    dcgan = compose_cfg(["model=dcgan", f"dataset={dataset}"])
    assert "hidden" not in dcgan.model.generator and dcgan.model.z_dim == 100
    assert dcgan.train.steps not in (steps, tuned.train.steps)  # the mixtures' own schedule
    mine = compose_cfg(["model=mlp", f"dataset={dataset}", "model.z_dim=7",
                        "model.generator.activation=relu"])
    assert mine.model.z_dim == 7 and mine.model.generator.activation == "relu"
    # tiny=toy (the suite's smoke runs) keeps the plain MLP, and so does the MLP elsewhere
    smoke = compose_cfg(["tiny=toy", f"dataset={dataset}"])
    assert smoke.model.z_dim == 64 and smoke.model.generator.activation == "relu"
    plain = compose_cfg(["model=mlp", "dataset=sine"])
    assert plain.model.z_dim == 64 and plain.model.generator.activation == "relu"
    # grid25 only: D sees x / 2.83 and Adam runs with betas 0 / 0.99 (its recipe picks adam_r1);
    # another optimizer on the command line replaces the whole group
    grid = dataset == "grid25"
    assert cfg.model.discriminator.input_scale == (2.83 if grid else 1.0)
    assert list(cfg.optimizer.betas) == ([0.0, 0.99] if grid else [0.5, 0.999])
    sgd = compose_cfg([f"dataset={dataset}", "optimizer=sgd"])
    validate(sgd)
    assert "betas" not in sgd.optimizer and sgd.optimizer.lr_g == cfg.optimizer.lr_g
