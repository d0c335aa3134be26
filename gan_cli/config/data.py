"""Schemas of the dataset group (conf/dataset/): the 2D mixtures, image sets, paired and single images."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from gan_cli.config.checks import (
    DATA_ROOT_DEFAULT,
    _non_negative,
    _one_of,
    _positive,
    _require,
)


@dataclass
class ToyFigureConfig:
    """The layers of a 2D sample figure, the training view of GAN Lab (Kahng et al. 2018):
    gan_cli/data/toy_view.py. Everything is drawn only at sample intervals (train.sample_every_steps)."""

    field: bool = True  # D's score on a grid over the plot as a background (diverging colours)
    field_points: int = 64  # grid points per side of that background
    arrows: int = 64  # generated points that get an arrow along the gradient of D; 0 = none
    manifold: bool = True  # G's manifold: the image of a grid of z (a slice of it when z_dim > 2)
    gif: bool = True  # samples/training.gif over all figures of the run (and a W&B video at the end)
    # beside D, the optimal discriminator D* = p_data / (p_data + p_g) (p_data the data's own
    # density, p_g a kernel density of G's points) and the contour D* = 1/2 on both panels
    optimal_d: bool = False
    # a critic's colour scale: its score from the halfway point to saturated green / purple (score
    # units, the same for the whole run); null = half the plot's diagonal, the most a 1-Lipschitz
    # critic varies over the plot. A classifier (sigmoid losses) is drawn as P(real) on [0, 1].
    critic_range: Optional[float] = None

    def __post_init__(self) -> None:
        _require(self.field_points >= 2, "field_points", f"must be >= 2, got {self.field_points}")
        _non_negative(self, "arrows")
        _require(self.critic_range is None or self.critic_range > 0, "critic_range",
                 f"must be > 0 or null, got {self.critic_range}")


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
class StackedMNISTConfig(ImageDataConfig):
    """Three of mnist_5k's digits per image, one per colour channel: 1,000 modes (gan_cli/data/stacked.py)."""

    _target_: str = "gan_cli.data.stacked.stacked_mnist"
    num_samples: int = 128000  # images built (PacGAN's code: 128,000); 3 x 28 x 28 uint8 each
    stack_seed: int = 0  # seeds the draw of the digits, apart from the run's seed: the same data on every run

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "num_samples")
        _one_of(self, "split", ("train",))


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


# Photographs shipped inside scikit-image's package (skimage.data loads them without a download).
SKIMAGE_IMAGES = ("astronaut", "camera", "chelsea", "coffee", "rocket")


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
        _require(self.path is not None or self.name in SKIMAGE_IMAGES, "name",
                 f"is not one of the images scikit-image ships: {', '.join(SKIMAGE_IMAGES)}; "
                 "or set dataset.path to an image file")
        _positive(self, "max_size", "min_size")
        _require(self.min_size <= self.max_size, "min_size",
                 f"must be <= max_size ({self.max_size}), got {self.min_size}")
        _require(0 < self.scale_factor < 1, "scale_factor", f"must be in (0, 1), got {self.scale_factor}")
        _require(self.channels in (1, 3), "channels", f"must be 1 or 3, got {self.channels}")


#: The options of conf/dataset/ and their schemas.
DATASETS: dict[str, type] = {
    "ring8": RingConfig,
    "grid25": GridConfig,
    "sine": SineConfig,
    "swissroll": SwissRollConfig,
    "fashion_mnist": FashionMNISTConfig,
    "mnist": MNISTConfig,
    "mnist_5k": MNIST5kConfig,
    "stacked_mnist": StackedMNISTConfig,
    "cifar10": CIFAR10Config,
    "celeba": CelebAConfig,
    "lsun": LSUNConfig,
    "image_folder": ImageFolderConfig,
    "fashion_pairs": FashionPairsConfig,
    "paired_folder": PairedFolderConfig,
    "single_image": SingleImageConfig,
}
