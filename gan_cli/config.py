"""Dataclass schemas for every config group, registered in Hydra's ConfigStore.

Each YAML option under ``conf/<group>/`` starts from one of these schemas
(``defaults: [/schema/<group>@_here_: <name>]``), so Hydra rejects an unknown key or a value of the
wrong type while it composes the config. Values that are of the right type but impossible
(a negative learning rate, a zero batch) are rejected by ``validate`` before anything is built:
each schema's ``__post_init__`` checks its own fields and names the one that is wrong.

Every key is documented where it is defined, with its unit and what ``null`` or 0 means.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_cli.errors import ConfigError, cut, shown

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


def _jacobian_threshold(obj: Any) -> None:
    """``obj.jacobian_threshold``: null, or a multiple (>= 1) of the batch's median Jacobian norm."""
    value = obj.jacobian_threshold
    _require(value is None or value >= 1, "jacobian_threshold",
             f"must be >= 1 (a multiple of the median) or null, got {value}")


def _one_of(obj: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    _require(value in choices, name, f"must be one of {', '.join(choices)}; got {shown(value)}")


# --------------------------------------------------------------------------------------------
# dataset: 2D toy distributions (image datasets register their schemas below as they land)


@dataclass
class ToyFigureConfig:
    """The layers of a 2D sample figure, the training view of GAN Lab (Kahng et al. 2018):
    gan_cli/data/toy_view.py. Everything is drawn only at sample intervals (train.sample_every_steps)."""

    field: bool = True  # D's score on a grid over the plot as a background (diverging colours)
    field_points: int = 64  # grid points per side of that background
    arrows: int = 64  # generated points that get an arrow along the gradient of D; 0 = none
    manifold: bool = True  # G's manifold: the image of a grid of z (a slice of it when z_dim > 2)
    gif: bool = True  # samples/training.gif over all figures of the run (and a W&B video at the end)

    def __post_init__(self) -> None:
        _require(self.field_points >= 2, "field_points", f"must be >= 2, got {self.field_points}")
        _non_negative(self, "arrows")


@dataclass
class ToyDataConfig:
    _target_: str = MISSING
    noise_std: float = 0.0  # std of Gaussian noise added to every point (data units); 0 = none
    figure: ToyFigureConfig = field(default_factory=ToyFigureConfig)  # the 2D training view

    def __post_init__(self) -> None:
        _non_negative(self, "noise_std")


@dataclass
class RingConfig(ToyDataConfig):
    """Gaussians with equal weight, centred evenly on a circle."""

    _target_: str = "gan_cli.data.toy.ring_of_gaussians"
    num_modes: int = 8  # number of Gaussians on the circle
    radius: float = 2.0  # circle radius (data units)
    std: float = 0.02  # std of each Gaussian (data units)

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "num_modes", "radius", "std")


@dataclass
class GridConfig(ToyDataConfig):
    """Gaussians with equal weight on a square grid centred at the origin."""

    _target_: str = "gan_cli.data.toy.grid_of_gaussians"
    per_side: int = 5  # grid is per_side x per_side modes
    spacing: float = 2.0  # distance between neighbouring modes (data units)
    std: float = 0.05  # std of each Gaussian (data units)

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "per_side", "spacing", "std")


@dataclass
class SineConfig(ToyDataConfig):
    """x1 ~ U[x_min, x_max], x2 = amplitude * sin(x1) (+ noise)."""

    _target_: str = "gan_cli.data.toy.sine"
    x_min: float = 0.0  # lower end of x1 (radians)
    x_max: float = 6.283185307179586  # upper end of x1 (radians); default 2 pi
    amplitude: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.x_max > self.x_min, "x_max", f"must be > x_min ({self.x_min}), got {self.x_max}")


@dataclass
class SwissRollConfig(ToyDataConfig):
    """The 2D Swiss roll: t ~ U[t_min, t_max] (radians), x = (t cos t, t sin t) * scale (+ noise)."""

    _target_: str = "gan_cli.data.toy.swiss_roll"
    t_min: float = 4.71238898038469  # 1.5 pi
    t_max: float = 14.137166941154069  # 4.5 pi
    scale: float = 0.2  # multiplies both coordinates, so the roll spans about [-3, 3]
    noise_std: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "scale")
        _require(self.t_max > self.t_min, "t_max", f"must be > t_min ({self.t_min}), got {self.t_max}")


@dataclass
class ImageDataConfig:
    """A dataset of labelled images found offline first (see gan_cli/data/images.py)."""

    _target_: str = MISSING
    root: str = "${oc.env:GAN_CLI_DATA,'" + DATA_ROOT_DEFAULT + "'}"  # where datasets are (unpacked)
    download: bool = False  # let torchvision download it when no local source works
    resolution: int = 28  # side of the square images the models see (px); resized once at load
    split: str = "train"
    limit: Optional[int] = None  # use only the first N images; null = all
    channels: Optional[int] = None  # 1 or 3 to convert; null = the dataset's own
    in_memory: bool = True  # the whole dataset as one uint8 tensor on the training device
    num_workers: int = 0  # DataLoader workers when in_memory is false
    # an image file that cannot be decoded: stop (exit 1, naming it) | skip (the next readable
    # file takes its place, with a warning naming it); folders of files only (CelebA, LSUN, ...)
    on_bad_file: str = "stop"

    def __post_init__(self) -> None:
        _positive(self, "resolution")
        _non_negative(self, "num_workers")
        _one_of(self, "on_bad_file", ("stop", "skip"))
        _require(self.limit is None or self.limit > 0, "limit", f"must be > 0 or null, got {self.limit}")
        _require(self.channels in (None, 1, 3), "channels", f"must be 1, 3 or null, got {self.channels}")


@dataclass
class FashionMNISTConfig(ImageDataConfig):
    _target_: str = "gan_cli.data.images.fashion_mnist"


@dataclass
class MNISTConfig(ImageDataConfig):
    _target_: str = "gan_cli.data.images.mnist"


@dataclass
class MNIST5kConfig(ImageDataConfig):
    _target_: str = "gan_cli.data.images.mnist_5k"


@dataclass
class CIFAR10Config(ImageDataConfig):
    _target_: str = "gan_cli.data.images.cifar10"
    resolution: int = 32


@dataclass
class CelebAConfig(ImageDataConfig):
    _target_: str = "gan_cli.data.images.celeba"
    resolution: int = 64
    channels: Optional[int] = 3
    in_memory: bool = False
    num_workers: int = 2


@dataclass
class LSUNConfig(CelebAConfig):
    _target_: str = "gan_cli.data.images.lsun"
    category: str = "bedroom"  # LSUN scene category, e.g. bedroom, church_outdoor


@dataclass
class ImageFolderConfig:
    """Any folder of images, searched recursively; unlabelled."""

    _target_: str = "gan_cli.data.images.image_folder"
    path: str = MISSING  # the folder
    resolution: int = 64  # shorter side resized to this, then centre-cropped (px)
    channels: int = 3  # 1 (gray) or 3 (RGB)
    limit: Optional[int] = None
    in_memory: bool = False
    num_workers: int = 2
    on_bad_file: str = "stop"  # an undecodable file: stop (naming it) | skip (with a warning)

    def __post_init__(self) -> None:
        _positive(self, "resolution")
        _non_negative(self, "num_workers")
        _require(self.channels in (1, 3), "channels", f"must be 1 or 3, got {self.channels}")
        _one_of(self, "on_bad_file", ("stop", "skip"))


@dataclass
class FashionPairsConfig:
    """Fashion-MNIST items paired with an input computed from them (gan_cli/data/paired.py)."""

    _target_: str = "gan_cli.data.paired.fashion_pairs"
    task: str = "edges"  # edges (Sobel edge map -> item) | silhouette (filled mask -> item)
    split: str = "train"  # train (60,000) | test (10,000, the held-out split the metrics use)
    limit: Optional[int] = None  # use only the first N items (the held-out split: all); null = all
    resolution: int = 32  # the 28x28 images are zero-padded (centred) to this side (px), not resized
    # edges: of the Sobel magnitude (1 = a unit step); silhouette: of the intensity in [0, 1];
    # null = the task's default (0.25, 0.05)
    threshold: Optional[float] = None
    root: str = "/usr/share/datasets/fashion-mnist"  # folder of the IDX files (Debian's package)

    def __post_init__(self) -> None:
        _one_of(self, "task", ("edges", "silhouette"))
        _one_of(self, "split", ("train", "test"))
        _require(self.limit is None or self.limit > 0, "limit", f"must be > 0 or null, got {self.limit}")
        _require(self.resolution >= 28, "resolution",
                 f"must be >= 28 (padded, not resized), got {self.resolution}")
        _require(self.threshold is None or self.threshold >= 0, "threshold",
                 f"must be >= 0 or null, got {self.threshold}")


@dataclass
class PairedFolderConfig:
    """A folder of image pairs, e.g. a pix2pix dataset (gan_cli/data/paired.py)."""

    _target_: str = "gan_cli.data.paired.paired_folder"
    path: str = MISSING  # the dataset folder
    split: Optional[str] = None  # a sub-folder of path (train, val, test); null = path itself
    layout: str = "side_by_side"  # side_by_side (each file A|B) | two_folders (A/ and B/, same names)
    direction: str = "AtoB"  # AtoB: input A, target B | BtoA
    resolution: int = 256  # both images: shorter side resized to this, then centre-cropped (px)
    channels: int = 3  # of the target: 1 (gray) or 3 (RGB)
    input_channels: Optional[int] = None  # of the input: 1 or 3; null = channels
    limit: Optional[int] = None  # use only the first N pairs (sorted by name); null = all
    in_memory: bool = True  # decode every pair once; false = read each batch's files
    # the sub-folder of path with the held-out pairs the image-to-image metrics judge G on
    # (val or test in the pix2pix datasets); null = they judge it on the training pairs
    held_out_split: Optional[str] = None

    def __post_init__(self) -> None:
        _positive(self, "resolution")
        _one_of(self, "layout", ("side_by_side", "two_folders"))
        _one_of(self, "direction", ("AtoB", "BtoA"))
        _require(self.channels in (1, 3), "channels", f"must be 1 or 3, got {self.channels}")
        _require(self.input_channels in (None, 1, 3), "input_channels",
                 f"must be 1, 3 or null, got {self.input_channels}")
        _require(self.limit is None or self.limit > 0, "limit", f"must be > 0 or null, got {self.limit}")


@dataclass
class SingleImageConfig:
    """One image at SinGAN's scales (gan_cli/data/single_image.py); batches are copies of it."""

    _target_: str = "gan_cli.data.single_image.single_image"
    path: Optional[str] = None  # an image file (any format PIL reads); null = scikit-image's `name`
    name: str = "rocket"  # a photograph shipped inside scikit-image: astronaut | camera | chelsea |
    #                       coffee | rocket (used when path is null; no download)
    max_size: int = 250  # the finest scale's longer side at most (px); smaller images are not enlarged
    min_size: int = 25  # the coarsest scale's shorter side (px)
    scale_factor: float = 0.75  # nominal ratio between neighbouring scales, adjusted so that the
    #                             coarsest shorter side is min_size exactly
    channels: int = 3  # 3 (RGB) or 1 (grey: the mean of R, G, B)

    def __post_init__(self) -> None:
        _positive(self, "max_size", "min_size")
        _require(self.min_size <= self.max_size, "min_size",
                 f"must be <= max_size ({self.max_size}), got {self.min_size}")
        _require(0 < self.scale_factor < 1, "scale_factor", f"must be in (0, 1), got {self.scale_factor}")
        _require(self.channels in (1, 3), "channels", f"must be 1 or 3, got {self.channels}")


# --------------------------------------------------------------------------------------------
# model


@dataclass
class NetworkConfig:
    """What every generator and discriminator config has."""

    _target_: str = MISSING
    # torch's spectral norm on every Conv/Linear/Embedding weight (Miyato et al. 2018), one power
    # iteration per training forward; its u, v vectors are saved in checkpoints
    spectral_norm: bool = False


@dataclass
class ModelConfig:
    """What every model config has besides its networks."""

    # Extra loss terms the model trains with, name -> a regulariser config with a _target_ in
    # gan_cli/regularizers.py (its net, interval and weights): pix2pix's L1 term, StyleGAN2's path
    # length, ProGAN's drift. Empty for the classic GANs; R1/R2 are options of every loss.
    regularizers: dict[str, Any] = field(default_factory=dict)
    # Several (G, D) pairs trained one after another (LAPGAN levels, SinGAN scales): a node with a
    # _target_ (gan_cli/training/curriculum.py); null = one pair
    stages: Optional[Any] = None
    # Networks that grow while they train (progressive growing): a phase schedule with a _target_
    # (gan_cli/training/curriculum.py); null = fixed networks
    schedule: Optional[Any] = None


@dataclass
class DiscriminatorConfig(NetworkConfig):
    """What every discriminator config has."""

    # PacGAN (Lin et al. 2018): D judges `pack` samples at once (concatenated along channels or
    # features); 1 = off. The batch per device must be a multiple of it; unconditional D only.
    pack: int = 1

    def __post_init__(self) -> None:
        _positive(self, "pack")


@dataclass
class MLPGeneratorConfig(NetworkConfig):
    _target_: str = "gan_cli.models.mlp.Generator"
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256])  # widths of hidden layers
    activation: str = "relu"  # relu | leaky_relu | tanh
    batch_norm: bool = False  # BatchNorm1d after each hidden layer
    conditional: bool = False  # use the dataset's labels (label embedding concatenated to z)
    # what the first layer sees of z ~ N(0, I): normal (z itself) | uniform (2 Phi(z) - 1, uniform
    # on (-1, 1) per component, DCGAN's U(-1, 1) latent: bounded, no tails for G to saturate on)
    latent: str = "normal"

    def __post_init__(self) -> None:
        _require(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "hidden",
                 f"must be a non-empty list of positive widths, got {list(self.hidden)}")
        _one_of(self, "activation", ("relu", "leaky_relu", "tanh"))
        _one_of(self, "latent", ("normal", "uniform"))


@dataclass
class MLPDiscriminatorConfig(DiscriminatorConfig):
    _target_: str = "gan_cli.models.mlp.Discriminator"
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256])
    activation: str = "leaky_relu"  # relu | leaky_relu | tanh (leaky slope 0.2)
    dropout: float = 0.0  # dropout probability after each hidden layer; 0 = none
    conditional: bool = False  # use the dataset's labels (label embedding concatenated to x)
    # for a loss on D's features (loss=mmd): a linear head to this many features; null = the last
    # hidden layer's output is the features
    feature_dim: Optional[int] = None
    # D sees x / input_scale: a spread-out 2D dataset divided down to about unit size, where the
    # first layer's units, initialised with their kinks within about 1 of the origin, can resolve
    # it (conf/tuned/grid25_mlp.yaml measures it); 1 = x as given
    input_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "hidden",
                 f"must be a non-empty list of positive widths, got {list(self.hidden)}")
        _one_of(self, "activation", ("relu", "leaky_relu", "tanh"))
        _require(0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout}")
        _positive(self, "input_scale")
        _require(self.feature_dim is None or self.feature_dim > 0, "feature_dim",
                 f"must be > 0 or null, got {self.feature_dim}")


@dataclass
class MLPModelConfig(ModelConfig):
    """Fully connected G and D (Goodfellow et al. 2014); images are flattened."""

    z_dim: int = 64  # latent size; z ~ N(0, I)
    generator: MLPGeneratorConfig = field(default_factory=MLPGeneratorConfig)
    discriminator: MLPDiscriminatorConfig = field(default_factory=MLPDiscriminatorConfig)

    def __post_init__(self) -> None:
        _positive(self, "z_dim")


@dataclass
class DCGANGeneratorConfig(NetworkConfig):
    _target_: str = "gan_cli.models.dcgan.Generator"
    width: int = 64  # channels of the last hidden layer; doubled per block towards the input
    conditional: bool = False  # label embedding concatenated to z (Mirza & Osindero 2014)
    embed_dim: Optional[int] = None  # label embedding size; null = z_dim

    def __post_init__(self) -> None:
        _positive(self, "width")


@dataclass
class DCGANDiscriminatorConfig(DiscriminatorConfig):
    _target_: str = "gan_cli.models.dcgan.Discriminator"
    width: int = 64  # channels of the first layer; doubled per block
    conditioning: str = "none"  # none | concat (label maps as input channels) | projection
    bottleneck_dim: Optional[int] = None  # BEGAN's autoencoder code size; null = encoder width
    # for a loss on D's features (loss=mmd): a code layer of this size on the last feature map;
    # null = the last feature map, flattened, is the features
    feature_dim: Optional[int] = None
    # normalisation after D's strided convolutions: batch (DCGAN) | layer (per sample: what a
    # gradient penalty needs, Gulrajani et al. 2017) | none | auto: layer when the loss or a
    # regulariser differentiates D's input gradients (wgan_gp, dragan, R1, R2), else batch
    norm: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "width")
        _one_of(self, "conditioning", ("none", "concat", "projection"))
        _one_of(self, "norm", ("auto", "batch", "layer", "none"))
        _require(self.feature_dim is None or self.feature_dim > 0, "feature_dim",
                 f"must be > 0 or null, got {self.feature_dim}")


@dataclass
class DCGANModelConfig(ModelConfig):
    """DCGAN (Radford et al. 2016); conditional variants via generator/discriminator keys."""

    z_dim: int = 100
    generator: DCGANGeneratorConfig = field(default_factory=DCGANGeneratorConfig)
    discriminator: DCGANDiscriminatorConfig = field(default_factory=DCGANDiscriminatorConfig)

    def __post_init__(self) -> None:
        _positive(self, "z_dim")


_INITS = ("xavier", "orthogonal", "normal")


def _check_attention(obj: Any) -> None:
    _require(obj.attention_resolution is None or obj.attention_resolution > 0, "attention_resolution",
             f"must be > 0 or null, got {obj.attention_resolution}")
    _require(obj.channel_multipliers is None or all(m > 0 for m in obj.channel_multipliers),
             "channel_multipliers", f"must be positive integers or null, got {obj.channel_multipliers}")
    _one_of(obj, "init", _INITS)


@dataclass
class InfoGANGeneratorConfig(NetworkConfig):
    _target_: str = "gan_cli.models.infogan.Generator"
    width: int = 64  # channels of the last hidden layer (64); the layer before it has 2 * width
    hidden: int = 1024  # units of the first fully connected layer (1024)

    def __post_init__(self) -> None:
        _positive(self, "width", "hidden")


@dataclass
class InfoGANDiscriminatorConfig(DiscriminatorConfig):
    _target_: str = "gan_cli.models.infogan.Discriminator"
    width: int = 64  # channels of the first convolution (64); the second has 2 * width
    hidden: int = 1024  # units of the fully connected layer before the score (1024)
    # normalisation after the second convolution and the fully connected layer: batch (InfoGAN's)
    # | layer (per sample) | none | auto: penalty_norm when the loss or a regulariser
    # differentiates D's input gradients (wgan_gp, dragan, R1, R2), else batch
    norm: str = "auto"
    # what norm=auto becomes under such a penalty: none, as Lucic et al. 2018 ran WGAN-GP and
    # DRAGAN (google/compare_gan v1, src/params.py) | layer (Gulrajani et al. 2017's choice)
    penalty_norm: str = "none"
    bottleneck_dim: int = 64  # BEGAN's autoencoder code size (loss=began; Lucic et al.'s code: 64)
    # for a loss on D's features (loss=mmd): a linear head of this size on the hidden features;
    # null = the hidden features themselves
    feature_dim: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "width", "hidden", "bottleneck_dim")
        _one_of(self, "norm", ("auto", "batch", "layer", "none"))
        _one_of(self, "penalty_norm", ("layer", "none"))
        _require(self.feature_dim is None or self.feature_dim > 0, "feature_dim",
                 f"must be > 0 or null, got {self.feature_dim}")


@dataclass
class InfoGANModelConfig(ModelConfig):
    """The InfoGAN architecture (Chen et al. 2016) as Lucic et al. 2018 compare losses on it."""

    z_dim: int = 64  # Lucic et al. 2018: 64 for every loss and data set
    generator: InfoGANGeneratorConfig = field(default_factory=InfoGANGeneratorConfig)
    discriminator: InfoGANDiscriminatorConfig = field(default_factory=InfoGANDiscriminatorConfig)

    def __post_init__(self) -> None:
        _positive(self, "z_dim")


@dataclass
class ResNetGeneratorConfig(NetworkConfig):
    _target_: str = "gan_cli.models.resnet.Generator"
    width: int = 256  # base channels (SNGAN and WGAN-GP use 256 on CIFAR-10)
    # channels per stage = width * multiplier, k + 1 stages from the start side (4 for 32/64/128 px,
    # 7 for 28 px) up to the image side; null = width everywhere. E.g. 64 px: [16, 8, 4, 2, 1]
    channel_multipliers: Optional[list[int]] = None
    conditional: Optional[bool] = None  # use the labels (conditional BN); null = when the data have them
    shared_embedding_dim: int = 0  # BigGAN's shared class embedding; 0 = a BN gain table per class
    hierarchical_z: bool = False  # BigGAN: a chunk of z into every block's conditional BN
    attention: bool = False  # a SAGAN self-attention block
    attention_resolution: Optional[int] = None  # feature side (px) it follows; null = image side / 2
    init: str = "xavier"  # xavier (SNGAN) | orthogonal (BigGAN) | normal (N(0, 0.02))

    def __post_init__(self) -> None:
        _positive(self, "width")
        _non_negative(self, "shared_embedding_dim")
        _check_attention(self)


@dataclass
class ResNetDiscriminatorConfig(DiscriminatorConfig):
    _target_: str = "gan_cli.models.resnet.Discriminator"
    width: int = 128  # base channels (SNGAN uses 128 on CIFAR-10)
    # one per block: the down-sampling blocks (the side is halved until <= 8), then extra_blocks;
    # null = width everywhere
    channel_multipliers: Optional[list[int]] = None
    extra_blocks: int = 2  # blocks after the last down-sampling one, same side (SNGAN, BigGAN: 2)
    conditioning: str = "auto"  # none | projection (Miyato & Koyama) | auto: projection when labelled
    attention: bool = False
    attention_resolution: Optional[int] = None  # feature side (px) it follows; null = image side / 2
    init: str = "xavier"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "width")
        _non_negative(self, "extra_blocks")
        _one_of(self, "conditioning", ("none", "projection", "auto"))
        _check_attention(self)


@dataclass
class ResNetModelConfig(ModelConfig):
    """ResNet G and D: model=resnet (WGAN-GP), sngan, sagan, biggan (gan_cli/models/resnet.py)."""

    z_dim: int = 128
    generator: ResNetGeneratorConfig = field(default_factory=ResNetGeneratorConfig)
    discriminator: ResNetDiscriminatorConfig = field(default_factory=ResNetDiscriminatorConfig)

    def __post_init__(self) -> None:
        _positive(self, "z_dim")


# The PatchGAN receptive fields (px) of 0..7 stride-2 layers (gan_cli.models.pix2pix.patch_layers_for)
PATCH_RECEPTIVE_FIELDS = (1, 16, 34, 70, 142, 286, 574, 1150)


@dataclass
class UNetGeneratorConfig(NetworkConfig):
    """pix2pix's U-Net; the input image's channel count comes from the data (input_channels)."""

    _target_: str = "gan_cli.models.pix2pix.UNetGenerator"
    width: int = 64  # channels of the first encoder layer; width * min(2**i, 8) at level i
    num_downs: Optional[int] = None  # stride-2 halvings; null = halve while the side is even
    #                                  (256 px -> 8, down to 1x1; 32 -> 5; 28 -> 2, down to 7x7)
    norm: str = "batch"  # batch | instance
    dropout: float = 0.5  # dropout probability in the first decoder blocks: the generator's noise
    dropout_blocks: int = 3  # decoder blocks with dropout, from the bottleneck (3 in the paper)
    dropout_at_eval: bool = True  # keep dropout on when sampling (the paper's test-time noise)

    def __post_init__(self) -> None:
        _positive(self, "width")
        _require(self.num_downs is None or self.num_downs >= 2, "num_downs",
                 f"must be >= 2 or null, got {self.num_downs}")
        _one_of(self, "norm", ("batch", "instance"))
        _require(0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout}")
        _non_negative(self, "dropout_blocks")


@dataclass
class PatchDiscriminatorConfig(NetworkConfig):
    """pix2pix's PatchGAN on (input, image) pairs; one logit per patch."""

    _target_: str = "gan_cli.models.pix2pix.PatchDiscriminator"
    width: int = 64  # channels of the first layer; width * min(2**i, 8) after
    receptive_field: int = 70  # patch side (px): 1 (PixelGAN), 16, 34, 70 (the paper's), 142, 286
    norm: str = "batch"  # batch | instance (never on the first layer)

    def __post_init__(self) -> None:
        _positive(self, "width")
        _require(self.receptive_field in PATCH_RECEPTIVE_FIELDS, "receptive_field",
                 f"must be one of {', '.join(map(str, PATCH_RECEPTIVE_FIELDS))}; got {self.receptive_field}")
        _one_of(self, "norm", ("batch", "instance"))


@dataclass
class L1ReconstructionConfig:
    """pix2pix's L1 term weight * mean |G(z, y) - x| (gan_cli.regularizers.L1Reconstruction)."""

    _target_: str = "gan_cli.regularizers.L1Reconstruction"
    weight: float = 100.0  # lambda (100 in the paper); 0 = adversarial loss alone

    def __post_init__(self) -> None:
        _non_negative(self, "weight")


@dataclass
class Pix2PixModelConfig(ModelConfig):
    """pix2pix (Isola et al. 2017): U-Net G, PatchGAN D, and the L1 term G minimises with the loss
    (``regularizers.l1``; ``model.regularizers.l1.weight=0`` leaves the adversarial loss alone)."""

    z_dim: int = 1  # the loop draws z of this size; the U-Net ignores it (dropout is its noise)
    generator: UNetGeneratorConfig = field(default_factory=UNetGeneratorConfig)
    discriminator: PatchDiscriminatorConfig = field(default_factory=PatchDiscriminatorConfig)
    regularizers: dict[str, Any] = field(default_factory=lambda: {"l1": L1ReconstructionConfig()})
# ProGAN, StyleGAN, StyleGAN2 (gan_cli/models/progan.py, stylegan.py, stylegan2.py). Feature maps
# at side r are min(channel_base // r, channel_max); the data's side must be start_resolution * 2**k.


def _check_nvidia_widths(obj: Any) -> None:
    _positive(obj, "channel_base", "channel_max")
    _require(obj.start_resolution is None or obj.start_resolution >= 2, "start_resolution",
             f"must be >= 2 or null, got {obj.start_resolution}")


def _check_mbstd(obj: Any) -> None:
    _non_negative(obj, "mbstd_group_size")
    _positive(obj, "mbstd_channels")


def _check_mapping(obj: Any) -> None:
    _positive(obj, "w_dim", "mapping_layers", "mapping_lr_multiplier")
    _require(0 <= obj.mixing_prob <= 1, "mixing_prob", f"must be in [0, 1], got {obj.mixing_prob}")
    _require(0 <= obj.w_avg_beta < 1, "w_avg_beta", f"must be in [0, 1), got {obj.w_avg_beta}")


@dataclass
class ProGANGeneratorConfig(NetworkConfig):
    _target_: str = "gan_cli.models.progan.Generator"
    channel_base: int = 16384  # the paper's widths: 512 up to 32 px, then 256, 128, 64, 32, 16 at 1024 px
    channel_max: int = 512
    # side of the first block (px); null = 4 for 4 * 2**k px (the paper's), 7 for 28 px (7 -> 14 -> 28)
    start_resolution: Optional[int] = None
    use_pixel_norm: bool = True  # pixel norm on z and after every convolution (Karras et al. 2018)
    tanh_output: bool = False  # end in tanh when the data are bounded; the paper's toRGB is linear
    progressive: bool = True  # build every side's toRGB for progressive growing (set_phase); false = fixed

    def __post_init__(self) -> None:
        _check_nvidia_widths(self)


@dataclass
class ProGANDiscriminatorConfig(NetworkConfig):
    _target_: str = "gan_cli.models.progan.Discriminator"
    channel_base: int = 16384
    channel_max: int = 512
    start_resolution: Optional[int] = None  # must equal the generator's
    mbstd_group_size: int = 4  # minibatch stddev group before the last block; 0 = no such layer
    mbstd_channels: int = 1  # statistics appended by that layer (feature maps)
    progressive: bool = True  # build every side's fromRGB for progressive growing (set_phase)

    def __post_init__(self) -> None:
        _check_nvidia_widths(self)
        _check_mbstd(self)


@dataclass
class ProGANModelConfig(ModelConfig):
    """ProGAN (Karras et al. 2018): progressively grown, mirrored G and D."""

    z_dim: int = 512
    generator: ProGANGeneratorConfig = field(default_factory=ProGANGeneratorConfig)
    discriminator: ProGANDiscriminatorConfig = field(default_factory=ProGANDiscriminatorConfig)

    def __post_init__(self) -> None:
        _positive(self, "z_dim")


@dataclass
class StyleGANGeneratorConfig(NetworkConfig):
    _target_: str = "gan_cli.models.stylegan.Generator"
    w_dim: int = 512  # size of the intermediate latent w
    mapping_layers: int = 8  # fully connected layers z -> w
    mapping_lr_multiplier: float = 0.01  # learning-rate multiplier of those layers
    channel_base: int = 16384
    channel_max: int = 512
    start_resolution: Optional[int] = None  # side of the constant input (px); null = as ProGAN's
    mixing_prob: float = 0.9  # style-mixing regularisation: probability per training batch; 0 = off
    w_avg_beta: float = 0.995  # decay per training forward of the moving average of w (truncation centre)
    tanh_output: bool = False  # end in tanh when the data are bounded; the paper's toRGB is linear
    progressive: bool = True  # grow progressively like ProGAN (set_phase); false = fixed at the data's side

    def __post_init__(self) -> None:
        _check_nvidia_widths(self)
        _check_mapping(self)


@dataclass
class StyleGANModelConfig(ModelConfig):
    """StyleGAN (Karras et al. 2019): style-based G (mapping, AdaIN, noise), ProGAN's D."""

    z_dim: int = 512
    generator: StyleGANGeneratorConfig = field(default_factory=StyleGANGeneratorConfig)
    discriminator: ProGANDiscriminatorConfig = field(default_factory=ProGANDiscriminatorConfig)

    def __post_init__(self) -> None:
        _positive(self, "z_dim")


@dataclass
class StyleGAN2GeneratorConfig(NetworkConfig):
    _target_: str = "gan_cli.models.stylegan2.Generator"
    w_dim: int = 512
    mapping_layers: int = 8  # NVIDIA's CIFAR-10 setting: 2
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 32768  # config F: 512 up to 64 px, then 256, 128, 64, 32 at 1024 px
    channel_max: int = 512
    start_resolution: Optional[int] = None  # null = 4 for 4 * 2**k px, 7 for 28 px
    mixing_prob: float = 0.9  # NVIDIA's CIFAR-10 setting: 0
    w_avg_beta: float = 0.995
    tanh_output: bool = False

    def __post_init__(self) -> None:
        _check_nvidia_widths(self)
        _check_mapping(self)


@dataclass
class StyleGAN2DiscriminatorConfig(NetworkConfig):
    _target_: str = "gan_cli.models.stylegan2.Discriminator"
    channel_base: int = 32768
    channel_max: int = 512
    start_resolution: Optional[int] = None  # side of the last block; null = as the generator's
    mbstd_group_size: int = 4  # 0 = no minibatch stddev layer (NVIDIA's CIFAR-10 setting: 32)
    mbstd_channels: int = 1
    architecture: str = "resnet"  # resnet (config F, residual blocks) | orig (no skips: NVIDIA's CIFAR-10)

    def __post_init__(self) -> None:
        _check_nvidia_widths(self)
        _check_mbstd(self)
        _one_of(self, "architecture", ("resnet", "orig"))


@dataclass
class StyleGAN2ModelConfig(ModelConfig):
    """StyleGAN2 (Karras et al. 2020): modulated convolutions, skip G, residual D."""

    z_dim: int = 512
    generator: StyleGAN2GeneratorConfig = field(default_factory=StyleGAN2GeneratorConfig)
    discriminator: StyleGAN2DiscriminatorConfig = field(default_factory=StyleGAN2DiscriminatorConfig)

    def __post_init__(self) -> None:
        _positive(self, "z_dim")


# The nodes the NVIDIA models put under model.schedule and model.regularizers (conf/model/progan.yaml,
# stylegan.yaml, stylegan2.yaml select them with `/schema/schedule@schedule: progressive` and
# `/schema/regularizer@regularizers.<name>: <option>`), so their keys are checked like any other.


@dataclass
class ProgressiveScheduleConfig:
    """ProGAN's progressive growing (gan_cli/schedules.py, ProgressiveSchedule; Karras et al. 2018,
    appendix A.1): a training stage at each side from start_resolution, a fade-in transition before
    each doubling, both measured in real images shown to D; Adam's moments reset at every stage."""

    _target_: str = "gan_cli.schedules.ProgressiveSchedule"
    # the data's side (px): the dataset's, so the last stage trains at full resolution
    resolution: int = II("dataset.resolution")
    # the first side (px): the networks' (null = 4 for 4 * 2**k px, 7 for 28 px)
    start_resolution: Optional[int] = II("model.generator.start_resolution")
    # thousands of real images per training stage and per fade-in (the official code's 600; the
    # paper's CelebA and CelebA-HQ runs 800); the last training stage lasts until train.steps
    training_kimg: float = 600.0
    transition_kimg: float = 600.0  # 0 = no fade-in (new blocks appear at once)
    # the global batch at each side: one integer for every side (train.batch_size by default), a
    # mapping side -> batch for every side ({4: 16, ..., 256: 14}), or null = the paper's (16 up to
    # 128 px, then 14, 6, 3). Changing batches need dataset.in_memory=true.
    batch_sizes: Any = II("train.batch_size")
    n_critic: int = II("loss.n_critic")  # D updates per G step: the kimg a step shows is batch * n_critic
    reset_optimizers: bool = True  # reset Adam's moments at each new stage (the official code)

    def __post_init__(self) -> None:
        # the run's facts are interpolations until the config is resolved (validate resolves them)
        _positive(self, "training_kimg", *(k for k in ("resolution", "n_critic")
                                           if not isinstance(getattr(self, k), str)))
        _non_negative(self, "transition_kimg")


@dataclass
class R1RegularizerConfig:
    """R1, gamma / 2 E||grad_x D(x)||^2 at real data (gan_cli.regularizers.R1; Mescheder et al. 2018),
    as a model's own term; every loss also has it as loss.r1_gamma / loss.r_interval."""

    _target_: str = "gan_cli.regularizers.R1"
    gamma: float = 10.0  # StyleGAN (FFHQ) and StyleGAN2 config F: 10
    interval: int = 1  # every `interval` D updates; > 1 = lazy (StyleGAN2: 16), D's lr and betas corrected

    def __post_init__(self) -> None:
        _non_negative(self, "gamma")
        _positive(self, "interval")


@dataclass
class DriftConfig:
    """ProGAN's drift term epsilon * E[D(x)^2] on real data (gan_cli.regularizers.Drift)."""

    _target_: str = "gan_cli.regularizers.Drift"
    epsilon: float = 0.001  # epsilon_drift (Karras et al. 2018, appendix A.1)

    def __post_init__(self) -> None:
        _non_negative(self, "epsilon")


@dataclass
class PathLengthConfig:
    """StyleGAN2's path-length regulariser on G (gan_cli.regularizers.PathLength; Karras et al. 2020,
    section 3.2): weight * (||J_w^T y|| - a)^2, a a moving average of the lengths."""

    _target_: str = "gan_cli.regularizers.PathLength"
    weight: float = 2.0  # pl_weight (config F: 2)
    interval: int = 4  # every `interval` G updates (lazy), G's lr and betas corrected by k / (k + 1)
    decay: float = 0.01  # of the moving average a (pl_decay)
    batch_shrink: int = 2  # the penalty uses batch / batch_shrink latents (pl_batch_shrink)

    def __post_init__(self) -> None:
        _non_negative(self, "weight")
        _positive(self, "interval", "batch_shrink")
        _require(0 <= self.decay <= 1, "decay", f"must be in [0, 1], got {self.decay}")


#: Schemas of nodes inside a model config (registered as schema/<kind>/<name>).
NODE_SCHEMAS: dict[str, dict[str, type]] = {
    "schedule": {"progressive": ProgressiveScheduleConfig},
    "regularizer": {"r1": R1RegularizerConfig, "drift": DriftConfig, "path_length": PathLengthConfig},
}
@dataclass
class LAPGANLevelGeneratorConfig(NetworkConfig):
    """G_k of a LAPGAN level above the coarsest: (z_k, l_k [, label]) -> high-pass h_k."""

    _target_: str = "gan_cli.models.lapgan.LevelGenerator"
    width: int = 32  # channels of the hidden convolutions
    depth: int = 3  # convolutions in all (>= 2)
    kernel_size: int = 3  # odd side of every kernel (px)
    noise_channels: int = 1  # image planes z_k is projected to (the paper: one noise plane)
    conditional: Optional[bool] = None  # a label plane (class-conditional LAPGAN); null = when labelled

    def __post_init__(self) -> None:
        _positive(self, "width", "noise_channels")
        _require(self.depth >= 2, "depth", f"must be >= 2, got {self.depth}")
        _require(self.kernel_size > 0 and self.kernel_size % 2 == 1, "kernel_size",
                 f"must be a positive odd integer, got {self.kernel_size}")


@dataclass
class LAPGANLevelDiscriminatorConfig(NetworkConfig):
    """D_k of a LAPGAN level above the coarsest: (h, l_k [, label]) -> score."""

    _target_: str = "gan_cli.models.lapgan.LevelDiscriminator"
    width: int = 16  # channels of the first convolution; doubled at each stride-2 convolution
    #                  (16: a step of level 0 at 32x32, batch 64, costs about half DCGAN's at width 64)
    combine: str = "add"  # add: l_k added to h before the first convolution (the paper) | concat
    conditional: Optional[bool] = None  # a label plane; null = when labelled
    # BatchNorm after each strided convolution: without it this D did not learn within a CPU run
    # (gan_cli/models/lapgan.py LevelDiscriminator); false for per-sample gradient penalties
    batch_norm: bool = True
    dropout: float = 0.0  # dropout probability before the last linear layer (the paper's D: 0.5)

    def __post_init__(self) -> None:
        _positive(self, "width")
        _one_of(self, "combine", ("add", "concat"))
        _require(0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass
class LAPGANCoarseGeneratorConfig(NetworkConfig):
    """The coarsest level's plain GAN generator of I_K (fully connected, gan_cli.models.mlp's)."""

    _target_: str = "gan_cli.models.lapgan.CoarseGenerator"
    hidden: list[int] = field(default_factory=lambda: [512, 512])  # widths of hidden layers
    activation: str = "relu"  # relu | leaky_relu | tanh
    batch_norm: bool = False  # BatchNorm1d after each hidden layer
    conditional: Optional[bool] = None  # label embedding concatenated to z; null = when labelled

    def __post_init__(self) -> None:
        _require(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "hidden",
                 f"must be a non-empty list of positive widths, got {list(self.hidden)}")
        _one_of(self, "activation", ("relu", "leaky_relu", "tanh"))


@dataclass
class LAPGANCoarseDiscriminatorConfig(NetworkConfig):
    """The coarsest level's plain GAN discriminator of I_K (fully connected)."""

    _target_: str = "gan_cli.models.lapgan.CoarseDiscriminator"
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    activation: str = "leaky_relu"  # relu | leaky_relu | tanh (leaky slope 0.2)
    dropout: float = 0.0  # dropout probability after each hidden layer; 0 = none
    conditional: Optional[bool] = None  # label embedding concatenated to x; null = when labelled

    def __post_init__(self) -> None:
        _require(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "hidden",
                 f"must be a non-empty list of positive widths, got {list(self.hidden)}")
        _one_of(self, "activation", ("relu", "leaky_relu", "tanh"))
        _require(0 <= self.dropout < 1, "dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass
class LAPGANStagesConfig:
    """LAPGAN's levels as the loop's stages (gan_cli/models/stages.py LAPGANStages): trained one
    after another, the coarsest first; train.steps is split evenly over them."""

    _target_: str = "gan_cli.models.stages.LAPGANStages"
    levels: int = II("..levels")  # follows model.levels
    z_dim: int = II("..z_dim")  # follows model.z_dim


@dataclass
class LAPGANModelConfig(ModelConfig):
    """LAPGAN (Denton et al. 2015, gan_cli/models/lapgan.py): one (G, D) pair per pyramid level,
    trained one level after another (``stages``). ``generator``/``discriminator`` are the coarsest
    level's plain GAN (of I_K); ``level_generator`` and ``level_discriminator`` are built once for
    each level above it, with that level's shape."""

    z_dim: int = 100  # every level's own latent size; the cascade's latent is levels x z_dim
    levels: int = 3  # pyramid levels, the coarsest included: 28 -> 14 -> 7, 32 -> 16 -> 8
    generator: LAPGANCoarseGeneratorConfig = field(default_factory=LAPGANCoarseGeneratorConfig)
    discriminator: LAPGANCoarseDiscriminatorConfig = field(default_factory=LAPGANCoarseDiscriminatorConfig)
    level_generator: LAPGANLevelGeneratorConfig = field(default_factory=LAPGANLevelGeneratorConfig)
    level_discriminator: LAPGANLevelDiscriminatorConfig = field(
        default_factory=LAPGANLevelDiscriminatorConfig)
    stages: LAPGANStagesConfig = field(default_factory=LAPGANStagesConfig)

    def __post_init__(self) -> None:
        _positive(self, "z_dim", "levels")


@dataclass
class SinGANGeneratorConfig(NetworkConfig):
    """SinGAN's generator of one scale (gan_cli/models/singan.py): x = y + g(sigma z + y)."""

    _target_: str = "gan_cli.models.singan.ScaleGenerator"
    width: int = 32  # channels at the coarsest scales (the paper's 32)
    grow_every: int = 4  # the channels double every grow_every scales (the paper's 4) ...
    max_width: int = 128  # ... up to this many (the paper's 128)
    depth: int = 5  # convolutions (the paper's 5: with 3x3 kernels, an 11x11 receptive field)
    kernel_size: int = 3  # odd side of every kernel (px)
    batch_norm: bool = True  # BatchNorm after every hidden convolution (the paper's code)

    def __post_init__(self) -> None:
        _positive(self, "width", "grow_every", "max_width")
        _require(self.depth >= 2, "depth", f"must be >= 2, got {self.depth}")
        _require(self.kernel_size > 0 and self.kernel_size % 2 == 1, "kernel_size",
                 f"must be a positive odd integer, got {self.kernel_size}")


@dataclass
class SinGANDiscriminatorConfig(SinGANGeneratorConfig):
    """SinGAN's patch discriminator of one scale: the same depth and widths, no padding; the score
    is the mean over its (depth * (kernel_size - 1) + 1)-pixel patches."""

    _target_: str = "gan_cli.models.singan.ScaleDiscriminator"


@dataclass
class SinGANReconstructionConfig:
    """SinGAN's reconstruction term alpha * mean((G_n(z_rec, up(x_rec_{n-1})) - x_n)^2) on G's
    loss at every update (gan_cli.regularizers.SinGANReconstruction)."""

    _target_: str = "gan_cli.regularizers.SinGANReconstruction"
    alpha: float = 10.0  # its weight (the paper's code: 10); 0 = adversarial loss alone

    def __post_init__(self) -> None:
        _non_negative(self, "alpha")


@dataclass
class SinGANStagesConfig:
    """SinGAN's scales as the loop's stages (gan_cli/models/stages.py SinGANStages), trained coarse
    to fine; train.steps is split evenly over them."""

    _target_: str = "gan_cli.models.stages.SinGANStages"
    _recursive_: bool = False  # `dataset` arrives as its config node, not as a built data source
    dataset: Any = II("dataset")  # the image and its scale keys: they give the scales' count and sizes
    noise_amp_init: float = 0.1  # sigma_n = noise_amp_init * RMSE(up(x_rec_{n-1}), x_n); sigma_0 = 1
    copy_previous: bool = True  # scale n starts from scale n-1's weights when their widths agree

    def __post_init__(self) -> None:
        _positive(self, "noise_amp_init")


@dataclass
class SinGANModelConfig(ModelConfig):
    """SinGAN (Shaham et al. 2019): one (G, D) pair per scale of one image, trained coarse to fine
    (``stages``). The scales and every network's shape come from the image (dataset=single_image);
    each scale's latent is a noise map of that scale's shape, so ``z_dim`` is not a setting."""

    z_dim: Optional[int] = None  # always null: the latent stream draws each scale's noise map
    generator: SinGANGeneratorConfig = field(default_factory=SinGANGeneratorConfig)
    discriminator: SinGANDiscriminatorConfig = field(default_factory=SinGANDiscriminatorConfig)
    regularizers: dict[str, Any] = field(
        default_factory=lambda: {"rec": SinGANReconstructionConfig()})
    stages: SinGANStagesConfig = field(default_factory=SinGANStagesConfig)

    def __post_init__(self) -> None:
        _require(self.z_dim is None, "z_dim", "is not a setting of SinGAN (each scale's latent is a "
                 f"noise map of that scale's shape): leave it null, got {self.z_dim}")


# --------------------------------------------------------------------------------------------
# loss: one schema per loss; n_critic = discriminator steps per generator step (the papers' k)


@dataclass
class LossConfig:
    _target_: str = MISSING
    n_critic: int = 1
    # Zero-centred gradient penalties on D, beside any loss (Mescheder et al. 2018): R1 at real
    # samples, R2 at generated ones, gamma/2 E||grad D||^2; 0 = off
    r1_gamma: float = 0.0
    r2_gamma: float = 0.0
    # apply R1/R2 every r_interval D updates; > 1 = lazy regularisation (StyleGAN2: 16), with
    # D's lr and betas corrected by r_interval / (r_interval + 1)
    r_interval: int = 1

    def __post_init__(self) -> None:
        _positive(self, "n_critic", "r_interval")
        _non_negative(self, "r1_gamma", "r2_gamma")


@dataclass
class MinimaxConfig(LossConfig):
    _target_: str = "gan_cli.losses.Minimax"


@dataclass
class NonSaturatingConfig(LossConfig):
    _target_: str = "gan_cli.losses.NonSaturating"


@dataclass
class WGANConfig(LossConfig):
    _target_: str = "gan_cli.losses.WGAN"
    clip_value: float = 0.01  # D's weights are clamped to [-clip_value, clip_value] after each step
    n_critic: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "clip_value")


@dataclass
class WGANGPConfig(LossConfig):
    _target_: str = "gan_cli.losses.WGANGP"
    gp_lambda: float = 10.0  # weight of the gradient penalty on interpolates
    n_critic: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative(self, "gp_lambda")


@dataclass
class SinGANWGANGPConfig(WGANGPConfig):
    """WGAN-GP with SinGAN's penalty: per pixel, on the gradient of the summed patch scores."""

    _target_: str = "gan_cli.models.singan.SinGANWGANGP"
    gp_lambda: float = 0.1  # the SinGAN code's weight
    n_critic: int = 3  # the SinGAN code's discriminator steps per iteration


@dataclass
class LSGANConfig(LossConfig):
    _target_: str = "gan_cli.losses.LSGAN"
    a: float = 0.0  # D's target for fake samples
    b: float = 1.0  # D's target for real samples
    c: float = 1.0  # G's target for its samples


@dataclass
class DRAGANConfig(LossConfig):
    _target_: str = "gan_cli.losses.DRAGAN"
    dragan_lambda: float = 10.0  # weight of the gradient penalty around real data
    perturb_scale: float = 0.5  # perturbations reach perturb_scale * std(real batch)

    def __post_init__(self) -> None:
        super().__post_init__()
        _non_negative(self, "dragan_lambda")
        _positive(self, "perturb_scale")


@dataclass
class BEGANConfig(LossConfig):
    _target_: str = "gan_cli.losses.BEGAN"
    gamma: float = 0.5  # diversity ratio E[L(G(z))] / E[L(x)] the controller aims at
    lambda_k: float = 0.001  # learning rate of the k_t controller
    k_init: float = 0.0  # k_0

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(0 < self.gamma <= 1, "gamma", f"must be in (0, 1], got {self.gamma}")
        _non_negative(self, "lambda_k")
        _require(0 <= self.k_init <= 1, "k_init", f"must be in [0, 1], got {self.k_init}")


@dataclass
class NoAdversarialConfig(LossConfig):
    """No adversarial loss (both terms 0): only the model's regularisers train G, e.g.
    ``loss=none model=pix2pix`` is the L1-only U-Net of Isola et al.'s ablation."""

    _target_: str = "gan_cli.losses.NoAdversarial"


@dataclass
class HingeConfig(LossConfig):
    _target_: str = "gan_cli.losses.Hinge"


F_DIVERGENCE_NAMES = ("kl", "reverse_kl", "js", "pearson", "hellinger")


@dataclass
class FGANConfig(LossConfig):
    """f-GAN (Nowozin et al. 2016): D maximises E[g_f(V(x))] - E[f*(g_f(V(G(z))))]."""

    _target_: str = "gan_cli.losses.FGAN"
    # the f-divergence: kl | reverse_kl | js (Jensen-Shannon as the paper's f, i.e. 2 JSD) |
    # pearson (chi-squared) | hellinger (squared Hellinger)
    divergence: str = "js"
    # nonsaturating: G maximises E[g_f(V(G(z)))] (the paper's alternative, used in its experiments)
    # | saturating: G minimises the bound itself
    g_objective: str = "nonsaturating"

    def __post_init__(self) -> None:
        super().__post_init__()
        _one_of(self, "divergence", F_DIVERGENCE_NAMES)
        _one_of(self, "g_objective", ("nonsaturating", "saturating"))


@dataclass
class MMDConfig(LossConfig):
    """MMD-GAN (Li et al. 2017): kernel MMD^2 between D's features (D returns features)."""

    _target_: str = "gan_cli.losses.MMD"
    # bandwidths of the mixture of Gaussian RBF kernels, in D's feature units (the paper's set)
    sigmas: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0, 8.0, 16.0])
    n_critic: int = 5
    # D's weights are clamped to [-clip_value, clip_value] after each step; null = no clipping
    clip_value: Optional[float] = 0.01
    biased: bool = False  # the biased MMD^2 estimator instead of the unbiased one
    # fixed: sigmas in D's feature units (the paper's) | median: sigmas in units of the median
    # distance between the batch's real and generated features (Gretton et al. 2012's heuristic;
    # a weight-clipped D without BatchNorm has features far smaller than the fixed sigmas)
    bandwidth: str = "fixed"

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(len(self.sigmas) > 0 and all(s > 0 for s in self.sigmas), "sigmas",
                 f"must be a non-empty list of positive bandwidths, got {list(self.sigmas)}")
        _require(self.clip_value is None or self.clip_value > 0, "clip_value",
                 f"must be > 0 or null, got {self.clip_value}")
        _one_of(self, "bandwidth", ("fixed", "median"))


# --------------------------------------------------------------------------------------------
# optimizer: one torch.optim class, built twice with separate learning rates (TTUR)


@dataclass
class OptimizerConfig:
    _target_: str = MISSING  # the torch.optim class
    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # discriminator learning rate
    weight_decay: float = 0.0
    # none | linear: both learning rates fall linearly to 0 at lr_decay_steps (WGAN-GP's and
    # SNGAN's CIFAR-10 setting); recomputed from the step each update, so a resume continues it
    # exactly
    lr_decay: str = "none"
    # the generator step at which the linear decay reaches 0; null = train.steps. Set it when a
    # run may later be extended (resume with a larger train.steps): with null the schedule is
    # stretched to the new length and the learning rates rise again at the resume
    lr_decay_steps: Optional[int] = None
    # the generator step at which the linear decay starts (the rates stay at their base until
    # then); 0 = from the first step. A late start anneals a run that has already converged: it
    # shrinks Adam's step, whose size does not fall with the gradient's
    lr_decay_start: int = 0
    # how torch applies the update to the parameters (the same arithmetic, to float rounding):
    # auto = fused (one kernel for all parameters, on CPU and GPU) where torch has it for this
    # optimizer and device, else foreach | fused | foreach (one op per kind, over all tensors) |
    # single (a Python loop over tensors: torch's CPU default). docs/performance.md measures them.
    implementation: str = "auto"

    def __post_init__(self) -> None:
        _positive(self, "lr_g", "lr_d")
        _non_negative(self, "weight_decay")
        _one_of(self, "lr_decay", ("none", "linear"))
        _one_of(self, "implementation", ("auto", "fused", "foreach", "single"))
        _require(self.lr_decay_steps is None or self.lr_decay_steps > 0, "lr_decay_steps",
                 f"must be > 0 or null, got {self.lr_decay_steps}")
        _require(self.lr_decay_start >= 0, "lr_decay_start",
                 f"must be >= 0, got {self.lr_decay_start}")
        _require(self.lr_decay_steps is None or self.lr_decay_start < self.lr_decay_steps,
                 "lr_decay_start", f"must be below lr_decay_steps ({self.lr_decay_steps}), got "
                 f"{self.lr_decay_start}")


@dataclass
class AdamConfig(OptimizerConfig):
    _target_: str = "torch.optim.Adam"
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # DCGAN's beta1 = 0.5
    eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
                 f"must be two numbers in [0, 1), got {list(self.betas)}")
        _positive(self, "eps")


@dataclass
class SGDConfig(OptimizerConfig):
    _target_: str = "torch.optim.SGD"
    lr_g: float = 0.01
    lr_d: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")


@dataclass
class RMSpropConfig(OptimizerConfig):
    _target_: str = "torch.optim.RMSprop"
    lr_g: float = 5e-5  # the WGAN paper's setting
    lr_d: float = 5e-5
    alpha: float = 0.99  # smoothing constant of the squared-gradient average
    eps: float = 1e-8
    momentum: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(0 < self.alpha < 1, "alpha", f"must be in (0, 1), got {self.alpha}")
        _require(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")


# --------------------------------------------------------------------------------------------
# hardware


@dataclass
class HardwareConfig:
    device: str = "cpu"  # cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 (autocast) | fp16 (autocast with a grad scaler)
    channels_last: bool = False  # NHWC memory format for image models
    compile: bool = False  # torch.compile G and D
    num_threads: int = 0  # CPU threads for torch per process; 0 = torch's default (DDP CPU
    #                       workers started by gan-train share the cores instead)
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower on GPU)
    # DDP (docs/scaling.md). The world size is devices x nodes when gan-train starts the
    # processes; under torchrun or SLURM it is read from their environment instead.
    devices: int = 1  # processes per node gan-train starts: one per GPU, or CPU processes; 1 = none
    nodes: int = 1  # machines; > 1 needs torchrun on every node or SLURM (hardware=slurm)
    backend: str = "auto"  # torch.distributed backend: auto (nccl on cuda, else gloo) | nccl | gloo
    sync_batchnorm: bool = False  # BatchNorm -> SyncBatchNorm under DDP (statistics over all ranks)
    master_port: int = 0  # rendezvous port for the processes gan-train starts; 0 = any free port

    def __post_init__(self) -> None:
        _one_of(self, "device", ("cpu", "cuda"))
        _one_of(self, "precision", ("fp32", "bf16", "fp16"))
        _one_of(self, "backend", ("auto", "nccl", "gloo"))
        _non_negative(self, "num_threads", "master_port")
        _positive(self, "devices", "nodes")
        _require(not (self.precision == "fp16" and self.device == "cpu"), "precision",
                 "fp16 needs device=cuda; use bf16 on the CPU")
        _require(not (self.backend == "nccl" and self.device == "cpu"), "backend",
                 "nccl runs on CUDA GPUs only; use backend=gloo (or auto) with device=cpu")
        _require(not (self.sync_batchnorm and self.device == "cpu"), "sync_batchnorm",
                 "torch's SyncBatchNorm supports CUDA GPUs only; use device=cuda, or "
                 "sync_batchnorm=false (each rank then keeps its own batch statistics)")


# --------------------------------------------------------------------------------------------
# logger


@dataclass
class WandbLoggerConfig:
    _target_: str = "gan_cli.loggers.WandbLogger"
    project: str = "gan-cli"
    mode: str = "offline"  # offline (no account, no network) | online | disabled
    entity: Optional[str] = None  # W&B team or user; null = the account's default
    group: Optional[str] = None  # groups runs in the W&B UI; null = the sweep's directory in -m
    tags: list[str] = field(default_factory=list)
    init_timeout_s: float = 30.0  # give up on wandb.init after this long and log locally

    def __post_init__(self) -> None:
        _one_of(self, "mode", ("offline", "online", "disabled"))
        _positive(self, "init_timeout_s")


@dataclass
class NoLoggerConfig:
    _target_: str = "gan_cli.loggers.NullLogger"


# --------------------------------------------------------------------------------------------
# the top level: conf/train.yaml


@dataclass
class TrainLoopConfig:
    steps: int = 5000  # generator updates (each preceded by loss.n_critic discriminator updates)
    batch_size: int = 256  # the global batch: samples per update, summed over all processes
    batch_per_device: Optional[int] = None  # each process's share, batch_size / world size;
    #                       null = derived (the saved checkpoint config holds the derived value);
    #                       when set, it must equal batch_size / world size
    log_every_steps: int = 100  # console, metrics.jsonl and W&B interval (generator steps)
    sample_every_steps: int = 1000  # sample figure interval; the last step always gets one
    ckpt_every_steps: int = 1000  # checkpoint interval; the last step always gets one
    keep_ckpts: int = 3  # numbered checkpoints kept besides last.pt; 0 = only last.pt
    figure_samples: Optional[int] = None  # samples in a figure; null = the dataset's default
    # A non-finite (NaN/inf) loss, gradient or weight: stop (exit 1, the last good checkpoint
    # kept) | skip (that update is not applied; skips are counted in metrics.jsonl; costs one
    # host sync per update). Non-finite weights always stop the run.
    nonfinite: str = "stop"
    # On SIGUSR1 under SLURM (SLURM_JOB_ID set): after the checkpoint, `scontrol requeue` the job
    requeue: bool = False
    # The truncation trick in sample figures (Brock et al. 2019): every latent component within
    # [-figure_truncation, figure_truncation]; null = plain N(0, I). Training never truncates.
    figure_truncation: Optional[float] = None
    truncation_method: str = "resample"  # resample (a truncated normal) | clamp

    def __post_init__(self) -> None:
        _positive(self, "steps", "batch_size", "log_every_steps", "sample_every_steps",
                  "ckpt_every_steps")
        _non_negative(self, "keep_ckpts")
        _require(self.batch_per_device is None or self.batch_per_device > 0, "batch_per_device",
                 f"must be > 0 or null, got {self.batch_per_device}")
        _one_of(self, "nonfinite", ("stop", "skip"))
        _require(self.figure_samples is None or self.figure_samples > 0, "figure_samples",
                 f"must be > 0 or null, got {self.figure_samples}")
        _require(self.figure_truncation is None or self.figure_truncation > 0, "figure_truncation",
                 f"must be > 0 or null, got {self.figure_truncation}")
        _one_of(self, "truncation_method", ("resample", "clamp"))


@dataclass
class EMAConfig:
    """An exponential moving average of G's weights (Karras et al. 2019-2020; Yazici et al. 2019).

    After every generator update, G_ema <- beta * G_ema + (1 - beta) * G with
    beta = 0.5 ** (batch_size / (1000 * half_life_kimg)): the average's half-life is
    half_life_kimg thousand generated images (generator updates x train.batch_size). With
    rampup, the half-life is at most rampup x the images generated so far, so early weights fade
    fast. Buffers (BatchNorm statistics, spectral norm vectors) are copied from G.
    """

    half_life_kimg: Optional[float] = None  # null = no EMA; StyleGAN2 uses 10 (kimg)
    rampup: Optional[float] = 0.05  # null = no ramp-up
    start_kimg: float = 0.0  # before this many generated kimg, G_ema copies G (BigGAN: 1000 steps)
    for_samples: bool = True  # figures and in-training metrics use G_ema (gan-eval: use_ema)
    # Before each figure, metric and checkpoint, G_ema's BatchNorm statistics are recomputed on
    # bn_batches batches of train.batch_size latents (BigGAN's standing statistics); 0 = keep
    # G's copied statistics
    bn_batches: int = 16

    def __post_init__(self) -> None:
        _require(self.half_life_kimg is None or self.half_life_kimg > 0, "half_life_kimg",
                 f"must be > 0 or null, got {self.half_life_kimg}")
        _require(self.rampup is None or self.rampup > 0, "rampup",
                 f"must be > 0 or null, got {self.rampup}")
        _non_negative(self, "start_kimg", "bn_batches")


@dataclass
class TrainMetricsConfig:
    """Metrics computed during training (gan_cli/metrics); the best value is kept with its step."""

    every_steps: int = 1000  # generator steps between evaluations; 0 = never
    names: Optional[list[str]] = None  # null = the dataset's defaults (modes, fd_fashion, fid, ...)
    num_samples: int = 5000  # generated samples per evaluation (2,500 for modes, by its protocol)
    num_real: int = 10000  # real samples behind the cached reference statistics
    inception_weights: Optional[str] = None  # pt_inception-2015-12-05 file; null = hub cache
    # the dataset split the real statistics come from: null = the split trained on; test = the
    # held-out split (Lucic et al. 2018 compare 10,000 samples with the 10,000 test images);
    # only for datasets with a `split` key
    split: Optional[str] = None
    # Also every metric on samples kept by the Jacobian threshold (Tanielian et al. 2020;
    # gan_cli/latents.py): only latents where ||dG/dz||_F <= this x its batch's median; logged
    # beside the plain ones as jacobian/<key>. null = off. For data of separate modes (the 2D
    # mixtures), where a continuous G's steepest latents map between the modes.
    jacobian_threshold: Optional[float] = None

    def __post_init__(self) -> None:
        _non_negative(self, "every_steps")
        _positive(self, "num_samples", "num_real")
        _jacobian_threshold(self)


@dataclass
class TrainConfig:
    dataset: Any = MISSING
    model: Any = MISSING
    loss: Any = MISSING
    optimizer: Any = MISSING
    hardware: Any = MISSING
    logger: Any = MISSING
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    metrics: TrainMetricsConfig = field(default_factory=TrainMetricsConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    seed: int = 0  # every rank seeds seed + rank
    name: Optional[str] = None  # run name in W&B; null = the run directory's name
    # null: fresh start | auto: the latest checkpoint in this run dir (none yet: fresh start) |
    # a checkpoint file (the run continues in its own new directory) | a run directory (the run
    # continues in that directory with its own options; see docs/reliability.md)
    resume: Optional[str] = None
    # What gan-train returns to Hydra (the value an Optuna sweep minimises or maximises): a key
    # of the run's last logged record, e.g. loss_g, wasserstein, or a metric computed at the last
    # step (fd_fashion, reverse_kl, high_quality_fraction; see metrics.every_steps).
    optimized_metric: str = "loss_g"


SCHEMAS: dict[str, dict[str, type]] = {
    "dataset": {
        "ring8": RingConfig,
        "grid25": GridConfig,
        "sine": SineConfig,
        "swissroll": SwissRollConfig,
        "fashion_mnist": FashionMNISTConfig,
        "mnist": MNISTConfig,
        "mnist_5k": MNIST5kConfig,
        "cifar10": CIFAR10Config,
        "celeba": CelebAConfig,
        "lsun": LSUNConfig,
        "image_folder": ImageFolderConfig,
        "fashion_pairs": FashionPairsConfig,
        "paired_folder": PairedFolderConfig,
        "single_image": SingleImageConfig,
    },
    "model": {"mlp": MLPModelConfig, "dcgan": DCGANModelConfig, "infogan": InfoGANModelConfig,
              "resnet": ResNetModelConfig,
              "pix2pix": Pix2PixModelConfig, "progan": ProGANModelConfig,
              "stylegan": StyleGANModelConfig, "stylegan2": StyleGAN2ModelConfig,
              "lapgan": LAPGANModelConfig, "singan": SinGANModelConfig},
    "loss": {
        "minimax": MinimaxConfig,
        "ns": NonSaturatingConfig,
        "wgan": WGANConfig,
        "wgan_gp": WGANGPConfig,
        "singan_wgan_gp": SinGANWGANGPConfig,
        "lsgan": LSGANConfig,
        "dragan": DRAGANConfig,
        "began": BEGANConfig,
        "hinge": HingeConfig,
        "fgan": FGANConfig,
        "mmd": MMDConfig,
        "none": NoAdversarialConfig,
    },
    "optimizer": {"adam": AdamConfig, "sgd": SGDConfig, "rmsprop": RMSpropConfig},
    "hardware": {"base": HardwareConfig},
    "logger": {"wandb": WandbLoggerConfig, "none": NoLoggerConfig},
}
GROUPS = tuple(SCHEMAS)


@dataclass
class EvalConfig:
    """gan-eval: conf/eval.yaml."""

    ckpt: str = MISSING  # a gan-cli checkpoint, e.g. outputs/<date>/<time>/checkpoints/last.pt
    metrics: Optional[list[str]] = None  # null = the dataset's defaults; see README (Evaluation)
    num_samples: int = 10000  # generated samples (the modes metric uses 2,500, by its protocol)
    num_real: int = 10000  # real samples behind the cached reference statistics
    split: Optional[str] = None  # real split to compare with; null = the one trained on
    batch_size: int = 250  # generation and feature-extraction batch
    device: str = "cpu"  # cpu | cuda
    seed: int = 0  # of the latent codes (and labels) sampled for evaluation
    inception_weights: Optional[str] = None  # Inception-v3 weight file; null = torch hub cache
    allow_download: bool = False  # download the Inception weights when missing (needs network)
    # where the checkpoint's dataset is looked for and unpacked (its saved dataset.root is not
    # used: docs/reliability.md); null = $GAN_CLI_DATA, else ~/.cache/gan-cli/data
    data_root: Optional[str] = None
    data_download: bool = False  # let torchvision download that dataset into data_root (the saved
    #                              dataset.download is not used)
    use_ema: bool = True  # evaluate G_ema when the checkpoint has one; false = the trained G
    # the truncation trick for every sample: |z_i| <= truncation (Brock et al. 2019), or, for
    # StyleGAN / StyleGAN2, psi in W: w = w_avg + truncation (w - w_avg) (Karras et al. 2019); null = off
    truncation: Optional[float] = None
    truncation_method: str = "resample"  # resample (a truncated normal) | clamp
    # only latents where ||dG/dz||_F <= this x its batch's median (Tanielian et al. 2020;
    # gan_cli/latents.py), for data of separate modes; null = off
    jacobian_threshold: Optional[float] = None
    # thresholds of truncation_sweep.png (images only), one row each, the same latents per column;
    # StyleGAN / StyleGAN2 get style_mixing.png, stochastic_variation.png and psi_sweep.png instead
    truncation_sweep: list[float] = field(default_factory=lambda: [2.0, 1.0, 0.5, 0.25, 0.04])
    sweep_columns: int = 10  # samples per row of that figure (at most 8 in the style figures); 0 = no figure
    # linear: D's features as a representation (Radford et al. 2016, section 5.1): a linear
    # classifier on D's block features, fitted on the labelled training split, its test accuracy
    # beside the same probe on a randomly initialised D (gan_cli/metrics/probe.py); null = none.
    # metrics=[] runs the probe alone.
    probe: Optional[str] = None
    probe_train: int = 10000  # labelled training images the probe is fitted on (10% held out to
    #                           pick its L2 penalty)
    probe_test: int = 10000  # test images it is scored on (the test split; else held-out training
    #                          images after the probe_train first ones, for data with no test split)
    logger: Any = MISSING

    def __post_init__(self) -> None:
        _positive(self, "num_samples", "num_real", "batch_size", "probe_train", "probe_test")
        _non_negative(self, "sweep_columns")
        _require(self.probe in (None, "linear"), "probe", f"must be linear or null, got {self.probe!r}")
        _one_of(self, "device", ("cpu", "cuda"))
        _one_of(self, "truncation_method", ("resample", "clamp"))
        _require(self.truncation is None or self.truncation > 0, "truncation",
                 f"must be > 0 or null, got {self.truncation}")
        _jacobian_threshold(self)
        _require(all(t > 0 for t in self.truncation_sweep), "truncation_sweep",
                 f"thresholds must be > 0, got {list(self.truncation_sweep)}")


SAMPLE_MODES = ("export", "grid", "interp", "arithmetic", "classes", "mixing", "psi")


@dataclass
class SampleConfig:
    """gan-sample: conf/sample.yaml (gan_cli/sample.py). A checkpoint's generator, no training."""

    ckpt: str = MISSING  # a gan-cli checkpoint, e.g. outputs/<date>/<time>/checkpoints/last.pt
    # export: n samples as files | grid: a grid of samples | interp: latent walks (PNG strip + GIF)
    # | arithmetic: DCGAN's vector arithmetic (first a numbered grid to pick from) | classes: one
    # row per class | mixing, psi: StyleGAN's style mixing and truncation-psi figures
    mode: str = "export"
    n: int = 64  # export: how many samples; grid: how many images
    format: str = "png"  # export: png (a folder of files) | npz (one file); 2D points: npz | csv
    # a conditional G's class for every sample; null = all classes in turn (sample i: i mod classes)
    label: Optional[int] = None
    split: Optional[str] = None  # an image-conditioned G's inputs: this split; null = the trained one
    seed: int = 0  # of every random latent (and of the perturbations)
    truncation: Optional[float] = None  # every latent component within [-t, t]; null = off
    truncation_method: str = "resample"  # resample (a truncated normal) | clamp
    # export, unconditional G: only latents where ||dG/dz||_F <= this x its batch's median
    # (Tanielian et al. 2020; gan_cli/latents.py), for data of separate modes; null = off
    jacobian_threshold: Optional[float] = None
    use_ema: bool = True  # the checkpoint's G_ema when it has one; false = the trained G
    device: str = "cpu"  # cpu | cuda
    batch_size: int = 250  # samples per forward pass
    # where the checkpoint's dataset is looked for and unpacked (its saved dataset.root is not
    # used: docs/reliability.md); null = $GAN_CLI_DATA, else ~/.cache/gan-cli/data
    data_root: Optional[str] = None
    data_download: bool = False  # let torchvision download that dataset into data_root (the saved
    #                              dataset.download is not used)
    # interp: one row per walk; a walk goes through `seeds` in order (latent of seed s: the first
    # draw of a generator seeded with s), or between two random latents when seeds is null
    interp: str = "slerp"  # lerp | slerp
    rows: int = 4  # interp without seeds: walks; mixing: sources A; psi: latents
    columns: int = 8  # classes: fixed latents (one per column); mixing: sources B
    steps: int = 8  # interp: images per segment between two latents, both ends included
    seeds: Optional[list[int]] = None
    fps: float = 8.0  # frames per second of the GIF (and MP4)
    mp4: bool = True  # also an MP4 when imageio-ffmpeg is installed; skipped (with a note) otherwise
    # arithmetic: ``select`` = three lists of indices into candidates.png, A - B + C (Radford et al.
    # 2016, figure 7); null = write candidates.png only, to pick from
    select: Optional[list[list[int]]] = None
    candidates: int = 64  # images in candidates.png
    perturb: float = 0.25  # uniform noise in [-perturb, perturb] per component around the result
    # psi: truncation values of the psi figure (StyleGAN figure 8)
    psis: list[float] = field(default_factory=lambda: [1.0, 0.7, 0.5, 0.0, -0.5, -1.0])

    def __post_init__(self) -> None:
        _one_of(self, "mode", SAMPLE_MODES)
        _one_of(self, "format", ("png", "npz", "csv"))
        _one_of(self, "interp", ("lerp", "slerp"))
        _one_of(self, "device", ("cpu", "cuda"))
        _one_of(self, "truncation_method", ("resample", "clamp"))
        _positive(self, "n", "batch_size", "rows", "columns", "fps", "candidates")
        _require(self.steps >= 2, "steps", f"must be >= 2 (both ends of a segment), got {self.steps}")
        _require(self.truncation is None or self.truncation > 0, "truncation",
                 f"must be > 0 or null, got {self.truncation}")
        _require(self.label is None or self.label >= 0, "label", f"must be >= 0 or null, got {self.label}")
        _jacobian_threshold(self)
        _require(self.seeds is None or len(self.seeds) >= 2, "seeds",
                 f"a walk needs at least 2 seeds, got {self.seeds}")
        _non_negative(self, "perturb")
        if self.select is not None:
            _require(len(self.select) == 3 and all(len(g) > 0 for g in self.select), "select",
                     f"must be three non-empty lists of indices (A - B + C), got {self.select}")


def register_configs() -> None:
    """Put every schema into Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="sample_schema", node=SampleConfig)
    for group, options in (*SCHEMAS.items(), *NODE_SCHEMAS.items()):
        for name, node in options.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


def validate(cfg: DictConfig) -> None:
    """Check every value of the composed config; raise ConfigError naming the first bad key."""
    for key in (*GROUPS, "train", "metrics", "ema"):
        node = cfg.get(key)
        if node is None:
            raise ConfigError(f"'{key}' is missing from the configuration")
        _check_node(node, key)
    toy = isinstance(OmegaConf.get_type(cfg.dataset), type) and issubclass(
        OmegaConf.get_type(cfg.dataset), ToyDataConfig)  # 2D data: mode coverage by default
    _check_metric_names(cfg.metrics.names, "metrics.names", cfg.metrics.num_samples,
                        "metrics.num_samples", images_by_default=not toy)
    split = cfg.metrics.get("split")
    if split is not None and "split" not in cfg.dataset:
        raise ConfigError(f"metrics.split={split}: this dataset has no splits (no dataset.split "
                          f"key); use metrics.split=null to compare with the data trained on")
    opt = cfg.optimizer
    if (opt.get("lr_decay", "none") != "none" and opt.get("lr_decay_steps") is None
            and opt.get("lr_decay_start", 0) >= cfg.train.steps):
        raise ConfigError(f"optimizer.lr_decay_start={opt.lr_decay_start}: the decay would start at "
                          f"or after the run's end (train.steps={cfg.train.steps}); lower it, or "
                          f"set optimizer.lr_decay_steps")


def validate_sample(cfg: DictConfig) -> None:
    """Check every value of gan-sample's composed config (conf/sample.yaml)."""
    _check_node(cfg, "")


def validate_eval(cfg: DictConfig) -> None:
    """Check every value of gan-eval's composed config (conf/eval.yaml)."""
    _check_node(cfg, "")
    _check_metric_names(cfg.metrics, "metrics", cfg.num_samples, "num_samples",
                        images_by_default=True)


#: The Inception score's splits (Salimans et al. 2016: 10); its sample count must reach them.
IS_SPLITS = 10


def _check_metric_names(names: Any, key: str, num_samples: int, samples_key: str, *,
                        images_by_default: bool) -> None:
    """Metric names that exist, and enough samples for the scores that split them, checked with
    the rest of the config (not at the first evaluation, after hours of training)."""
    if names is not None:
        from gan_cli.metrics.registry import METRICS  # only when names are given (imports torch)

        unknown = [n for n in names if n not in METRICS]
        if unknown:
            raise ConfigError(f"{key}: unknown metric(s) {unknown}; known: {', '.join(sorted(METRICS))}")
    splitting = {"is", "cis_fashion"} & set(names) if names is not None else images_by_default
    if splitting and num_samples < IS_SPLITS:
        raise ConfigError(f"{samples_key}={num_samples}: the Inception score (is, cis_fashion; "
                          f"run by default on images) splits the samples into {IS_SPLITS} groups; "
                          f"use at least {IS_SPLITS} samples, or name the metrics without it")


def _check_node(node: DictConfig, path: str) -> None:
    """Run the schema checks of ``node``'s children first, then its own, so errors name the path."""
    def join(key: object) -> str:
        return f"{path}.{key}" if path else str(key)

    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none():
            _check_node(child, join(key))
    for key in node:
        if OmegaConf.is_missing(node, key):
            raise ConfigError(f"{join(key)} is required: set it on the command line, "
                              f"e.g. {join(key)}=...")
    if OmegaConf.get_type(node) in (dict, None):
        return  # no schema: nothing more to check here
    try:
        OmegaConf.to_object(node)  # runs the schema's __post_init__
    except FieldError as e:
        value = OmegaConf.select(node, e.field)
        raise ConfigError(f"{join(e.field)}={cut(str(value))}: {e.message}") from None


# --------------------------------------------------------------------------------------------
# Configs read back from files are data: only gan-cli's own builders may be named in them.

#: torch's optimizers a config may name (the optimizer group builds one of these).
TRUSTED_OPTIMIZERS = frozenset({"torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD",
                                "torch.optim.RMSprop"})
_CONF_DIR = __import__("pathlib").Path(__file__).resolve().parent / "conf"


def _schema_targets(obj: Any, found: set[str]) -> None:
    """Every ``_target_`` string in a schema's defaults (nested dataclasses and dicts included)."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(obj):
        for f in fields(obj):
            value = getattr(obj, f.name)
            if f.name == "_target_" and isinstance(value, str) and value != MISSING:
                found.add(value)
            else:
                _schema_targets(value, found)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key == "_target_" and isinstance(value, str):
                found.add(value)
            else:
                _schema_targets(value, found)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _schema_targets(value, found)


def trusted_targets() -> frozenset[str]:
    """The ``_target_``s a config read from a file may name: the defaults of every schema, those
    written in the shipped option files (conf/**/*.yaml), torch's optimizers, and the ones you
    trust yourself: $GAN_CLI_TRUSTED_TARGETS, a comma-separated list (your own models or losses
    added through ``hydra.searchpath``)."""
    return _trusted_targets(os.environ.get("GAN_CLI_TRUSTED_TARGETS", ""))


@functools.lru_cache(maxsize=8)
def _trusted_targets(yours: str) -> frozenset[str]:
    import re

    found: set[str] = set(TRUSTED_OPTIMIZERS)
    found.update(t.strip() for t in yours.split(",") if t.strip())
    for options in (*SCHEMAS.values(), *NODE_SCHEMAS.values()):  # NODE_SCHEMAS: schedules, terms
        for schema in options.values():
            _schema_targets(schema(), found)
    for schema in (TrainConfig, EvalConfig, SampleConfig):
        _schema_targets(schema(), found)
    for path in _CONF_DIR.rglob("*.yaml"):
        found.update(re.findall(r"_target_:\s*([A-Za-z_][\w.]*)", path.read_text(encoding="utf-8")))
    return frozenset(found)


#: Hydra keys a saved config may hold: they change how a checked ``_target_`` receives its
#: arguments (SinGAN's stages take their dataset node unbuilt: ``_recursive_: false``), never what
#: is called; every nested ``_target_`` is checked either way.
HARMLESS_HYDRA_KEYS: dict[str, type | tuple[type, ...]] = {"_recursive_": bool, "_convert_": str}
#: How deep a config read from a file may nest; gan-cli's own stay under ten levels.
MAX_DEPTH = 32


def refuse_untrusted(node: Any, source: str, trusted: frozenset[str] | set[str]) -> None:
    """Walk plain data (dicts with string keys, lists, strings, numbers, booleans, None) and raise
    UntrustedConfigError, naming the key, at the first thing that could make Hydra or OmegaConf
    call code: a ``_target_`` not in ``trusted``, a Hydra instantiation key other than the
    harmless ``_recursive_`` / ``_convert_``, an interpolation (``${``) in any value or key (a
    resolver such as ``oc.create`` turns a string into a node with a target), or anything that is
    not plain data; also a nesting deeper than MAX_DEPTH. Iterative: any depth costs no recursion.
    """
    from gan_cli.errors import UntrustedConfigError

    def refuse(why: str) -> UntrustedConfigError:
        return UntrustedConfigError(f"refused {source}: {why}; a config read from a file is data "
                                    f"and may name only gan-cli's own builders: nothing was built or run")

    stack: list[tuple[Any, str, int]] = [(node, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise refuse(f"{cut(path, 80)} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, str):
            if "${" in value:
                raise refuse(f"{path}={shown(value)} is an interpolation (${{...}}), which OmegaConf "
                             f"would resolve")
        elif value is None or isinstance(value, (bool, int, float)):
            continue
        elif isinstance(value, (list, tuple)):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, (str, int, float)):  # OmegaConf's keys (ProGAN's per-side batches)
                    raise refuse(f"{path or 'the config'} has a key {shown(key)} that is neither a "
                                 f"string nor a number")
                where = f"{path}.{key}" if path else str(key)
                if not isinstance(key, str):
                    stack.append((item, where, depth + 1))
                    continue
                if "${" in key:
                    raise refuse(f"the key {shown(where)} is an interpolation (${{...}})")
                if key == "_target_":
                    if not isinstance(item, str) or item not in trusted:
                        raise refuse(f"{where}={shown(item)} is not one of gan-cli's own builders")
                elif key in HARMLESS_HYDRA_KEYS and isinstance(item, HARMLESS_HYDRA_KEYS[key]):
                    continue  # only restricts how (not what) a trusted target is built
                elif len(key) > 2 and key.startswith("_") and key.endswith("_"):
                    raise refuse(f"{where} is a Hydra instantiation key that gan-cli's configs "
                                 f"never use")
                else:
                    stack.append((item, where, depth + 1))
        else:
            raise refuse(f"{path or 'the config'} holds a {type(value).__name__}, not plain data")


def check_saved_config(config: Any, source: str, trusted: frozenset[str] | set[str] | None = None) -> None:
    """Refuse a config read back from ``source`` (a checkpoint) that is not a mapping of plain
    data, or that could make anything other than gan-cli's own builders (``trusted``; default
    trusted_targets()) run (refuse_untrusted): UntrustedConfigError naming the key, before anything
    is built."""
    from gan_cli.errors import UntrustedConfigError

    if not isinstance(config, dict):
        raise UntrustedConfigError(f"refused {source}: its saved config is a {type(config).__name__} "
                                   f"({shown(config, 60)}), not a mapping of options")
    refuse_untrusted(config, source, trusted_targets() if trusted is None else trusted)


def validate_saved_config(config: Any, source: str) -> DictConfig:
    """A run's saved config (from a checkpoint) checked like a composed one: its targets trusted,
    each group merged into its schema (unknown keys and wrong types refused) and its values checked.
    Every failure is an UntrustedConfigError (exit 1) naming the key."""
    from gan_cli.errors import UntrustedConfigError

    check_saved_config(config, source)
    for group, inner in (("model", "generator"), ("model", "discriminator"), ("dataset", "_target_")):
        node = config.get(group)
        if not isinstance(node, dict) or inner not in node:
            raise UntrustedConfigError(f"refused {source}: its saved config has no {group}.{inner}, "
                                       f"which every gan-train checkpoint holds")
    checked: dict = {}
    for key, node in config.items():
        schema = _schema_for(key, node)
        try:
            merged = (OmegaConf.merge(OmegaConf.structured(schema), node) if schema is not None
                      else OmegaConf.create(node) if isinstance(node, (dict, list)) else node)
            if isinstance(merged, DictConfig):
                _check_node(merged, key)
        except (ConfigError, ValueError, TypeError, OmegaConfBaseException) as e:
            raise UntrustedConfigError(f"refused {source}: its saved config does not fit gan-cli's "
                                       f"schema at '{key}': {cut(str(e).splitlines()[0], 300)}") from None
        if schema is None and key in SCHEMAS and isinstance(node, dict):
            raise UntrustedConfigError(f"refused {source}: its saved {key} (_target_="
                                       f"{shown(node.get('_target_'), 120)}) is none of gan-cli's "
                                       f"{key} options")
        if isinstance(merged, (DictConfig, ListConfig)):
            _check_roles(merged, key, source)
        checked[key] = merged
    model_stages = checked["model"].get("stages")
    if (isinstance(model_stages, DictConfig) and "dataset" in model_stages
            and OmegaConf.to_container(model_stages.dataset) != config.get("dataset")):
        raise UntrustedConfigError(f"refused {source}: model.stages.dataset is not the run's dataset "
                                   f"(the stages read the same data as the run)")
    return OmegaConf.create(checked)


def _default_target(schema: type) -> str | None:
    from dataclasses import MISSING as NO_DEFAULT

    for f in fields(schema):
        if f.name == "_target_":
            return None if f.default in (NO_DEFAULT, MISSING) else f.default
    return None


@functools.lru_cache(maxsize=1)
def _role_targets() -> dict[str, frozenset[str]]:
    """The builders each untyped place of a model config holds in gan-cli's own schemas
    (``model.stages``, ``model.schedule``, ``model.regularizers.<name>``), and a SinGAN stage's
    ``dataset`` (a dataset builder)."""
    roles: dict[str, set[str]] = {"stages": set(), "schedule": set(), "regularizers": set()}
    for schema in SCHEMAS["model"].values():
        model = schema()
        for place in ("stages", "schedule"):
            node = getattr(model, place, None)
            if node is not None and _default_target(type(node)):
                roles[place].add(_default_target(type(node)))
        for node in (model.regularizers or {}).values():
            if _default_target(type(node)):
                roles["regularizers"].add(_default_target(type(node)))
    for place, group in (("schedule", "schedule"), ("regularizers", "regularizer")):
        roles[place].update(t for t in map(_default_target, NODE_SCHEMAS[group].values()) if t)
    roles["stages.dataset"] = {t for t in map(_default_target, SCHEMAS["dataset"].values()) if t}
    return {place: frozenset(targets) for place, targets in roles.items()}


def _items(node: ListConfig) -> list:
    return list(node._iter_ex(resolve=False))


def _check_roles(node: DictConfig | ListConfig, path: str, source: str) -> None:
    """Every ``_target_`` of a saved group in its own role (UntrustedConfigError otherwise): a node
    typed by a schema names that schema's builder (an optimizer node: one of torch's optimizers),
    and an untyped one is where gan-cli's own configs put a builder (``_role_targets``) and names a
    builder of that kind. A trusted builder in the wrong place (a dataset builder as a model's
    stages, writing where the file says) is refused like an untrusted one. ``_recursive_`` and
    ``_convert_`` only where a schema has them, at their default."""
    from gan_cli.errors import UntrustedConfigError

    def refuse(where: str, why: str) -> UntrustedConfigError:
        return UntrustedConfigError(f"refused {source}: {where} {why}; a config read from a file "
                                    f"may use gan-cli's builders only where its own configs do")

    stack = [(node, path)] if isinstance(node, DictConfig) else []
    lists = [] if isinstance(node, DictConfig) else [(node, path)]
    while lists:  # a top-level list (a plain value's place): its dicts, checked as below
        items, at = lists.pop()
        for i, item in enumerate(_items(items)):
            if isinstance(item, DictConfig):
                stack.append((item, f"{at}[{i}]"))
            elif isinstance(item, ListConfig):
                lists.append((item, f"{at}[{i}]"))
    while stack:
        current, where = stack.pop()
        schema = OmegaConf.get_type(current)
        typed = isinstance(schema, type) and is_dataclass(schema)
        defaults = {f.name: f.default for f in fields(schema)} if typed else {}
        for special in ("_recursive_", "_convert_"):
            if special in current and (special not in defaults or current[special] != defaults[special]):
                raise refuse(f"{where}.{special}={shown(current[special])}", "is not gan-cli's own")
        if "_target_" in current:
            target = current._target_
            if typed:
                allowed = ({*TRUSTED_OPTIMIZERS} if issubclass(schema, OptimizerConfig)
                           else {_default_target(schema)})
            else:
                role = where.split(".", 1)[1] if where.startswith("model.") else ""
                role = "regularizers" if role.startswith("regularizers.") else role
                allowed = _role_targets().get(role, frozenset())
            if target not in allowed:
                raise refuse(f"{where}._target_={shown(target)}", "is not a builder of that place")
        for key in current:
            child = current._get_node(key)
            if isinstance(child, DictConfig) and not child._is_none():
                stack.append((child, f"{where}.{key}"))
            elif isinstance(child, ListConfig) and not child._is_none():
                items = [(item, f"{where}.{key}[{i}]") for i, item in enumerate(_items(child))]
                while items:  # lists of lists: their dicts, with the path that names them
                    item, at = items.pop()
                    if isinstance(item, DictConfig):
                        stack.append((item, at))
                    elif isinstance(item, ListConfig):
                        items.extend((sub, f"{at}[{j}]") for j, sub in enumerate(_items(item)))


def _schema_for(key: str, node: Any) -> type | None:
    """The schema a saved group node was made from (found by its ``_target_``, for models by the
    generator's), or the schema of a top-level section; None for plain values."""
    sections = {"train": TrainLoopConfig, "metrics": TrainMetricsConfig, "ema": EMAConfig}
    if key in sections:
        return sections[key]
    if key not in SCHEMAS or not isinstance(node, dict):
        return None
    if key == "model":
        target = (node.get("generator") or {}).get("_target_")
        for schema in SCHEMAS["model"].values():
            if schema().generator._target_ == target:
                return schema
        return None
    for schema in SCHEMAS[key].values():
        if getattr(schema, "_target_", None) == node.get("_target_") or key == "hardware":
            return schema
    return None
