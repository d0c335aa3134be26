"""BEGAN (Berthelot et al. 2017): D is an autoencoder, the game is on its reconstruction errors."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gan_cli.losses.base import AdversarialLoss


def recon_error(x: Tensor, recon: Tensor) -> Tensor:
    # L(v) = |v - D(v)| per sample, the mean over its values (eta = 1)  (Berthelot et al. 2017, eq. 1)
    if x.shape != recon.shape:
        raise ValueError(
            f"BEGAN's discriminator must return a reconstruction of its input's shape "
            f"{tuple(x.shape)}, got {tuple(recon.shape)}"
        )
    return (x - recon).abs().flatten(start_dim=1).mean(dim=1)


class BEGAN(AdversarialLoss):
    """Boundary Equilibrium GAN (Berthelot et al. 2017, eq. 4), with L(v) = ``recon_error(v, D(v))``:

        L_D = E L(x) - k_t E L(G(z))        L_G = E L(G(z))
        k_{t+1} = clamp(k_t + lambda_k (gamma E L(x) - E L(G(z))), 0, 1)     (after_d_step)
        M_global = E L(x) + |gamma E L(x) - E L(G(z))|                      (stat convergence)

    ``k_t`` is a 0-dim float32 tensor on the stats' device (never read back to the host), updated
    from the (possibly all-reduced) stats. D-step stats: loss_d, l_real, l_fake, k_t, convergence.
    """

    d_output = "reconstruction"

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001, k_init: float = 0.0,
                 n_critic: int = 1) -> None:
        super().__init__(n_critic=n_critic)
        self.gamma, self.lambda_k = float(gamma), float(lambda_k)
        self.k_t = torch.tensor(float(k_init), dtype=torch.float32)

    def _k_on(self, device: torch.device) -> Tensor:
        # A one-off copy the first time (and after load_state_dict); afterwards k_t lives there.
        if self.k_t.device != device:
            self.k_t = self.k_t.to(device)
        return self.k_t

    def d_loss(self, D, real, fake, y=None):
        l_real = recon_error(real, D(real, y)).mean()
        l_fake = recon_error(fake, D(fake, y)).mean()
        k = self._k_on(l_real.device)
        loss = l_real - k * l_fake
        lr, lf = l_real.detach(), l_fake.detach()
        return loss, {"loss_d": loss.detach(), "l_real": lr, "l_fake": lf, "k_t": k.clone(),
                      "convergence": lr + (self.gamma * lr - lf).abs()}

    def g_loss(self, D, fake, y=None):
        loss = recon_error(fake, D(fake, y)).mean()
        return loss, {"loss_g": loss.detach()}

    def after_d_step(self, D, stats):
        l_real = stats["l_real"].detach().float()
        l_fake = stats["l_fake"].detach().float()
        k = self._k_on(l_real.device)
        self.k_t = (k + self.lambda_k * (self.gamma * l_real - l_fake)).clamp(0.0, 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"k_t": self.k_t.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unknown = set(state) - {"k_t"}
        if "k_t" not in state or unknown:
            raise ValueError(
                f"BEGAN's state must hold exactly 'k_t', the checkpoint holds {sorted(state)}"
            )
        self.k_t = torch.as_tensor(state["k_t"]).detach().to(torch.float32).clone().reshape(())
