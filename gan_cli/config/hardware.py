"""Schema of the hardware group (conf/hardware/)."""

from __future__ import annotations

from dataclasses import dataclass

from gan_cli.config.checks import (
    _non_negative,
    _one_of,
    _positive,
    _require,
)


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


#: The options of conf/hardware/ and their schemas.
HARDWARE: dict[str, type] = {
    "base": HardwareConfig,
}
