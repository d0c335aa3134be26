"""Schemas of the model group (conf/model/): networks, schedules, regularisers and stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import II, MISSING

from gan_cli.config.checks import (
    _finite,
    _non_negative,
    _one_of,
    _positive,
    _require,
)


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
    # gan_cli/losses/regularizers.py (its net, interval, weights): pix2pix's L1 term, StyleGAN2's path
    # length, ProGAN's drift. Empty for the classic GANs; R1/R2 are options of every loss.
    regularizers: dict[str, Any] = field(default_factory=dict)
    # Several (G, D) pairs trained one after another (LAPGAN levels, SinGAN scales): a node with a
    # _target_ (gan_cli/models/stages.py); null = one pair
    stages: Optional[Any] = None
    # Networks that grow while they train (progressive growing): a phase schedule with a _target_
    # (gan_cli/schedules.py); null = fixed networks
    schedule: Optional[Any] = None
    # the dataset option gan-train picks for this model when the command line names none (a model
    # that needs its own kind of data: pix2pix, SinGAN); null = train.yaml's default
    dataset_default: Optional[str] = None


# the latent distributions every generator of a latent takes (gan_cli/latents.py: LATENT_MAPS)
LATENTS = ("normal", "uniform")


@dataclass
class GeneratorConfig(NetworkConfig):
    """What every generator of a latent z has."""

    # what G's first layer sees of z ~ N(0, I): normal (z itself) | uniform (2 Phi(z) - 1, uniform
    # on (-1, 1) per component, DCGAN's U(-1, 1) latent: bounded, no tails for G to saturate on);
    # applied in one place, gan_cli/latents.py's shape_latent (StyleGAN's: before the mapping)
    latent: str = "normal"

    def __post_init__(self) -> None:
        _one_of(self, "latent", LATENTS)


@dataclass
class DiscriminatorConfig(NetworkConfig):
    """What every discriminator config has."""

    # PacGAN (Lin et al. 2018): D judges `pack` samples at once (concatenated along channels or
    # features); 1 = off. The batch per device must be a multiple of it; unconditional D only.
    pack: int = 1

    def __post_init__(self) -> None:
        _positive(self, "pack")


@dataclass
class MLPGeneratorConfig(GeneratorConfig):
    _target_: str = "gan_cli.models.mlp.Generator"
    hidden: list[int] = field(default_factory=lambda: [256, 256, 256])  # widths of hidden layers
    activation: str = "relu"  # relu | leaky_relu | tanh
    batch_norm: bool = False  # BatchNorm1d after each hidden layer
    conditional: bool = False  # use the dataset's labels (label embedding concatenated to z)

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), "hidden",
                 f"must be a non-empty list of positive widths, got {list(self.hidden)}")
        _one_of(self, "activation", ("relu", "leaky_relu", "tanh"))


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
class DCGANGeneratorConfig(GeneratorConfig):
    _target_: str = "gan_cli.models.dcgan.Generator"
    width: int = 64  # channels of the last hidden layer; doubled per block towards the input
    conditional: bool = False  # label embedding concatenated to z (Mirza & Osindero 2014)
    embed_dim: Optional[int] = None  # label embedding size; null = z_dim

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "width")
        _require(self.embed_dim is None or self.embed_dim > 0, "embed_dim",
                 f"must be > 0 or null, got {self.embed_dim}")


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
    # (resolved by gan_cli.build.build_network; the saved config keeps auto)
    norm: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "width")
        _one_of(self, "conditioning", ("none", "concat", "projection"))
        _one_of(self, "norm", ("auto", "batch", "layer", "none"))
        for key in ("bottleneck_dim", "feature_dim"):
            value = getattr(self, key)
            _require(value is None or value > 0, key, f"must be > 0 or null, got {value}")


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
class InfoGANGeneratorConfig(GeneratorConfig):
    _target_: str = "gan_cli.models.infogan.Generator"
    width: int = 64  # channels of the last hidden layer (64); the layer before it has 2 * width
    hidden: int = 1024  # units of the first fully connected layer (1024)

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(self, "width", "hidden")


@dataclass
class InfoGANDiscriminatorConfig(DiscriminatorConfig):
    _target_: str = "gan_cli.models.infogan.Discriminator"
    width: int = 64  # channels of the first convolution (64); the second has 2 * width
    hidden: int = 1024  # units of the fully connected layer before the score (1024)
    # normalisation after the second convolution and the fully connected layer: batch (InfoGAN's)
    # | layer (per sample) | none | auto: penalty_norm when the loss or a regulariser
    # differentiates D's input gradients (wgan_gp, dragan, R1, R2), else batch (resolved by
    # gan_cli.build.build_network; the saved config keeps auto)
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
class ResNetGeneratorConfig(GeneratorConfig):
    _target_: str = "gan_cli.models.resnet.Generator"
    width: int = 256  # base channels (SNGAN and WGAN-GP use 256 on CIFAR-10)
    # channels per block = width * multiplier, k + 1 blocks from the start side (4 for 32/64/128 px,
    # 7 for 28 px) up to the image side; null = width everywhere. E.g. 64 px: [16, 8, 4, 2, 1]
    channel_multipliers: Optional[list[int]] = None
    conditional: Optional[bool] = None  # use the labels (conditional BN); null = when the data have them
    shared_embedding_dim: int = 0  # BigGAN's shared class embedding; 0 = a BN gain table per class
    hierarchical_z: bool = False  # BigGAN: a chunk of z into every block's conditional BN
    attention: bool = False  # a SAGAN self-attention block
    attention_resolution: Optional[int] = None  # feature side (px) it follows; null = image side / 2
    init: str = "xavier"  # xavier (SNGAN) | orthogonal (BigGAN) | normal (N(0, 0.02))

    def __post_init__(self) -> None:
        super().__post_init__()
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
    """pix2pix's L1 term weight * mean |G(z, y) - x| (gan_cli.losses.L1Reconstruction)."""

    _target_: str = "gan_cli.losses.L1Reconstruction"
    weight: float = 100.0  # lambda (100 in the paper); 0 = adversarial loss alone

    def __post_init__(self) -> None:
        _finite(self, "weight")
        _non_negative(self, "weight")


@dataclass
class Pix2PixModelConfig(ModelConfig):
    """pix2pix (Isola et al. 2017): U-Net G, PatchGAN D, and the L1 term G minimises with the loss
    (``regularizers.l1``; ``model.regularizers.l1.weight=0`` leaves the adversarial loss alone)."""

    z_dim: int = 1  # the loop draws z of this size; the U-Net ignores it (dropout is its noise)
    generator: UNetGeneratorConfig = field(default_factory=UNetGeneratorConfig)
    discriminator: PatchDiscriminatorConfig = field(default_factory=PatchDiscriminatorConfig)
    regularizers: dict[str, Any] = field(default_factory=lambda: {"l1": L1ReconstructionConfig()})

    def __post_init__(self) -> None:
        _positive(self, "z_dim")


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
class ProGANGeneratorConfig(GeneratorConfig):
    _target_: str = "gan_cli.models.progan.Generator"
    channel_base: int = 16384  # the paper's widths: 512 up to 32 px, then 256, 128, 64, 32, 16 at 1024 px
    channel_max: int = 512
    # side of the first block (px); null = 4 for 4 * 2**k px (the paper's), 7 for 28 px (7 -> 14 -> 28)
    start_resolution: Optional[int] = None
    use_pixel_norm: bool = True  # pixel norm on z and after every convolution (Karras et al. 2018)
    tanh_output: bool = False  # end in tanh when the data are bounded; the paper's toRGB is linear
    progressive: bool = True  # build every side's toRGB for progressive growing (set_phase); false = fixed

    def __post_init__(self) -> None:
        super().__post_init__()
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
class StyleGANGeneratorConfig(GeneratorConfig):
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
        super().__post_init__()
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
class StyleGAN2GeneratorConfig(GeneratorConfig):
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
    # modulated convolutions: unfused (the input scaled by the styles, one shared-kernel convolution,
    # the output by the demodulation: NVIDIA's training form) | fused (a kernel per sample, one
    # grouped convolution); the same values. Measured on the 2-core CPU, one thread, CPU ms per 3x3
    # layer, 512 channels (scripts/bench_models.py --modconv, docs/performance.md): training batch 64
    # at 14 px 2,657 unfused / 12,579 fused; sampling batch 64 797 / 3,309; batch 1 at 28 px 58 / 57.
    # Fused is never faster here (NVIDIA fuses for inference on GPUs: unmeasured here).
    modconv: str = "unfused"
    # upsampling layers: transposed (NVIDIA's conv2d_resample: a stride-2 transposed 3x3 convolution
    # at the low side, then the [1, 3, 3, 1] filter; toRGB images by upfirdn2d, zero borders) |
    # bilinear (the input upsampled, then the 3x3 convolution at the high side: 4x its arithmetic;
    # bilinear images, edge repeated). Different border values, so not interchangeable on a trained G.
    # Measured on the 2-core CPU (scripts/bench_models.py --parts --batch 16, one thread, CPU s):
    # paper widths at 28 px, a plain step 25.2 transposed / 27.7 bilinear; G's forward 2.1 / 2.9.
    upsample: str = "transposed"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_nvidia_widths(self)
        _check_mapping(self)
        _one_of(self, "modconv", ("unfused", "fused"))
        _one_of(self, "upsample", ("transposed", "bilinear"))


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
    appendix A.1): a training segment at each side from start_resolution, a fade-in transition before
    each doubling, both measured in real images shown to D; Adam's moments reset at every segment."""

    _target_: str = "gan_cli.schedules.ProgressiveSchedule"
    # the data's side (px): the dataset's, so the last segment trains at full resolution
    resolution: int = II("dataset.resolution")
    # the first side (px): the networks' (null = 4 for 4 * 2**k px, 7 for 28 px)
    start_resolution: Optional[int] = II("model.generator.start_resolution")
    # thousands of real images per training segment and per fade-in (the official code's 600; the
    # paper's CelebA and CelebA-HQ runs 800); the last training segment lasts until train.steps
    training_kimg: float = 600.0
    transition_kimg: float = 600.0  # 0 = no fade-in (new blocks appear at once)
    # the global batch at each side: one integer for every side (train.batch_size by default), a
    # mapping side -> batch for every side ({4: 16, ..., 256: 14}), or null = the paper's (16 up to
    # 128 px, then 14, 6, 3). Changing batches need dataset.in_memory=true.
    batch_sizes: Any = II("train.batch_size")
    n_critic: int = II("loss.n_critic")  # D updates per G step: the kimg a step shows is batch * n_critic
    reset_optimizers: bool = True  # reset Adam's moments at each new segment (the official code)

    def __post_init__(self) -> None:
        # the run's facts are interpolations until the config is resolved (validate resolves them)
        _positive(self, "training_kimg", *(k for k in ("resolution", "n_critic")
                                           if not isinstance(getattr(self, k), str)))
        _non_negative(self, "transition_kimg")


@dataclass
class R1RegularizerConfig:
    """R1, gamma / 2 E||grad_x D(x)||^2 at real data (gan_cli.losses.R1; Mescheder et al. 2018),
    as a model's own term; every loss also has it as loss.r1_gamma / loss.r_interval."""

    _target_: str = "gan_cli.losses.R1"
    gamma: float = 10.0  # StyleGAN (FFHQ) and StyleGAN2 config F: 10
    interval: int = 1  # every `interval` D updates; > 1 = lazy (StyleGAN2: 16), D's lr and betas corrected

    def __post_init__(self) -> None:
        _finite(self, "gamma")
        _non_negative(self, "gamma")
        _positive(self, "interval")


@dataclass
class DriftConfig:
    """ProGAN's drift term epsilon * E[D(x)^2] on real data (gan_cli.losses.Drift)."""

    _target_: str = "gan_cli.losses.Drift"
    epsilon: float = 0.001  # epsilon_drift (Karras et al. 2018, appendix A.1)

    def __post_init__(self) -> None:
        _non_negative(self, "epsilon")


@dataclass
class PathLengthConfig:
    """StyleGAN2's path-length regulariser on G (gan_cli.losses.PathLength; Karras et al. 2020,
    section 3.2): weight * (||J_w^T y|| - a)^2, a a moving average of the lengths."""

    _target_: str = "gan_cli.losses.PathLength"
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
class LAPGANLevelGeneratorConfig(GeneratorConfig):
    """G_k of a LAPGAN level above the coarsest: (z_k, l_k [, label]) -> high-pass h_k."""

    _target_: str = "gan_cli.models.lapgan.LevelGenerator"
    width: int = 32  # channels of the hidden convolutions
    depth: int = 3  # convolutions in all (>= 2)
    kernel_size: int = 3  # odd side of every kernel (px)
    noise_channels: int = 1  # image planes z_k is projected to (the paper: one noise plane)
    conditional: Optional[bool] = None  # a label plane (class-conditional LAPGAN); null = when labelled

    def __post_init__(self) -> None:
        super().__post_init__()
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
class LAPGANCoarseGeneratorConfig(GeneratorConfig):
    """The coarsest level's plain GAN generator of I_K (fully connected, gan_cli.models.mlp's)."""

    _target_: str = "gan_cli.models.lapgan.CoarseGenerator"
    hidden: list[int] = field(default_factory=lambda: [512, 512])  # widths of hidden layers
    activation: str = "relu"  # relu | leaky_relu | tanh
    batch_norm: bool = False  # BatchNorm1d after each hidden layer
    conditional: Optional[bool] = None  # label embedding concatenated to z; null = when labelled

    def __post_init__(self) -> None:
        super().__post_init__()
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
    loss at every update (gan_cli.losses.SinGANReconstruction)."""

    _target_: str = "gan_cli.losses.SinGANReconstruction"
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


#: The options of conf/model/ and their schemas.
MODELS: dict[str, type] = {
    "mlp": MLPModelConfig,
    "dcgan": DCGANModelConfig,
    "infogan": InfoGANModelConfig,
    "resnet": ResNetModelConfig,
    "pix2pix": Pix2PixModelConfig,
    "progan": ProGANModelConfig,
    "stylegan": StyleGANModelConfig,
    "stylegan2": StyleGAN2ModelConfig,
    "lapgan": LAPGANModelConfig,
    "singan": SinGANModelConfig,
}
