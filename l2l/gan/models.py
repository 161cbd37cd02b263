"""DCGAN generator and discriminator for 32x32 images in [-1, 1], one channel or three.

Radford et al.'s architecture: strided transposed convolutions with BatchNorm and ReLU in the
generator, strided convolutions with LeakyReLU in the discriminator. Widths come from the size
preset (or the config's explicit nz / ngf / ndf); `base` is the paper's nz 100, ngf = ndf = 64.
"""
from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """z: [N, nz] -> images [N, chans, 32, 32] in [-1, 1]."""

    def __init__(self, nz: int, ngf: int, chans: int = 1):
        super().__init__()
        self.nz = nz
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),  # 4x4
            nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # 8x8
            nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),  # 16x16
            nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, chans, 4, 2, 1, bias=False),  # 32x32
            nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """images [N, chans, 32, 32] -> logits [N] (high = real).

    BatchNorm after the 2nd and 3rd convolution, as in DCGAN: without it the tiny CPU models
    hopped between a few classes instead of covering all ten (docs/gan.md). Training passes
    real and generated images in separate batches, as DCGAN does; evaluation scores images in
    eval mode (running statistics), so a score depends on the image alone.
    """

    def __init__(self, ndf: int, chans: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(chans, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),  # 16x16
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),  # 8x8
            nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),  # 4x4
            nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def init_weights(m: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class GAN(nn.Module):
    """The pair, so one state dict holds both (the cache stores one state dict)."""

    def __init__(self, nz: int, ngf: int, ndf: int, chans: int = 1):
        super().__init__()
        self.G = Generator(nz, ngf, chans)
        self.D = Discriminator(ndf, chans)
        self.apply(init_weights)

    @property
    def nz(self) -> int:
        return self.G.nz

    @torch.no_grad()
    def sample(self, n: int, g: torch.Generator, device, batch_size: int = 256) -> torch.Tensor:
        """n images [n, chans, 32, 32] in [-1, 1] on the CPU; latents drawn from `g` (deterministic)."""
        was = self.G.training
        self.G.eval()
        z = torch.randn(n, self.nz, generator=g)
        out = torch.cat([self.G(z[i:i + batch_size].to(device)).cpu()
                         for i in range(0, n, batch_size)])
        self.G.train(was)
        return out
