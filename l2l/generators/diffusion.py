"""A small conditional inpainting diffusion model (Palette, Saharia et al., 2022) for 32x32 images.

A diffusers `UNet2DModel` denoises the hidden region given the visible one. Its input, with the
image in [-1, 1] and m the pixel mask (1 = hidden):
    inp = [x_t * m + x * (1 - m),  x * (1 - m),  m]          [N, 2C + 1, H, W]
as in Palette's inpainting, x_t is noisy only in the hidden region and the visible pixels stay
clean. The forward process is DDPM's (1,000 linear-beta steps); sampling is DDIM (eta = 0) with
`sampling_steps` steps (10 by default, so that CPU evaluation is affordable).

The UNet predicts v = sqrt(abar_t) * eps - sqrt(1 - abar_t) * x0 (Salimans & Ho, 2022) rather
than eps: the v loss is the eps loss weighted by 1 / abar_t, which stresses the noisy steps where
the content is decided. On the CPU budget (250 steps of 64 images) this is what makes the tiny
model inpaint: classifier FID forget / retain 15 / 9.5 with v, 115 / 48 with eps (noise fill:
129 / 123). `PREDICTION = "epsilon"` gives Palette's original parameterisation back.

Encoder / decoder split (unlearning trains only the encoder), both views of `self.unet`:
    encoder = conv_in, time projection + embedding, down blocks, mid block
        -> emb [N, 4 * c0], skips (conv_in output and every down-block residual output), mid
    decoder = up blocks (consuming mid, the skips and emb), output norm + conv -> [N, C, H, W]
`encode` returns every tensor the decoder consumes, so matching them all on an image means the
decoder's output on it is unchanged (the paper's loss sums MSE over the input blocks' feature
maps plus the middle block's).
"""
from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch import nn
from torch.nn.functional import pixel_shuffle, pixel_unshuffle

from l2l.generators.base import Generator
from l2l.tasks import pixel_mask

SIZES = {
    # name: (block_out_channels, layers_per_block, levels with self-attention,
    #        space-to-depth factor s: the UNet runs on [N, s * s * (2C + 1), H / s, W / s])
    # tiny folds each 4x4 patch into channels, so the UNet's grid is the task's token grid: at
    # 32x32 the same FLOPs cost 2 to 4x more on a CPU (norms and activations on large maps).
    "tiny": ((64, 64), 1, (), 4),
    "small": ((64, 128), 2, (), 2),
    "base": ((128, 256, 256, 256), 2, (1,), 1),  # DDPM's CIFAR-10 UNet widths, for GPUs
}
TRAIN_TIMESTEPS = 1000
PREDICTION = "v_prediction"  # "epsilon" (DDPM / Palette), "v_prediction" or "sample" (x0)
DEFAULT_SAMPLING_STEPS = 10
AUX_SEED = 0  # seed of the (timesteps, noise) that `encode` draws when it is given none


def _unet(size: str, img_size: int, chans: int) -> UNet2DModel:
    channels, layers, attn, s = SIZES[size]
    down = tuple("AttnDownBlock2D" if i in attn else "DownBlock2D" for i in range(len(channels)))
    up = tuple("AttnUpBlock2D" if len(channels) - 1 - i in attn else "UpBlock2D"
               for i in range(len(channels)))
    return UNet2DModel(
        sample_size=img_size // s, in_channels=(2 * chans + 1) * s * s,
        out_channels=chans * s * s, down_block_types=down, up_block_types=up,
        block_out_channels=channels, layers_per_block=layers,
        norm_num_groups=min(32, channels[0] // 2),
        add_attention=bool(attn), attention_head_dim=32 if attn else None,
    )


class Diffusion(Generator):
    """Palette-style inpainting DDPM with the generator interface of l2l/generators/__init__.py."""

    def __init__(self, size: str = "tiny", img_size: int = 32, patch: int = 4, chans: int = 1,
                 sampling_steps: int | None = None):
        super().__init__()
        if size not in SIZES:
            raise KeyError(f"unknown diffusion size {size!r} (known: {', '.join(SIZES)})")
        self.patch, self.chans, self.img_size = patch, chans, img_size
        self.grid = img_size // patch
        self.s2d = SIZES[size][3]
        self.sampling_steps = sampling_steps or DEFAULT_SAMPLING_STEPS
        self.unet = _unet(size, img_size, chans)
        self.train_sched = DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS,
                                         prediction_type=PREDICTION)
        # "trailing" spacing: the first DDIM step is t = 999, where x_T really is pure noise.
        self.sample_sched = DDIMScheduler.from_config(self.train_sched.config,
                                                      timestep_spacing="trailing")
        # A constant of the schedule, not a buffer: kept out of the state_dict.
        self._abar = self.train_sched.alphas_cumprod.float()

    # -- the encoder / decoder split: views of the UNet's modules, nothing duplicated --------
    @property
    def encoder(self) -> nn.ModuleList:
        u = self.unet
        return nn.ModuleList([u.conv_in, u.time_proj, u.time_embedding, u.down_blocks,
                              u.mid_block])

    @property
    def decoder(self) -> nn.ModuleList:
        u = self.unet
        return nn.ModuleList([u.up_blocks, u.conv_norm_out, u.conv_act, u.conv_out])

    def _features(self, inp: torch.Tensor, t: torch.Tensor):
        """The encoder: first half of UNet2DModel.forward. inp: [N, 2C + 1, H, W], t: [N] long
        -> (emb [N, 4 * c0], skips: list of [N, c_i, h_i, w_i], mid [N, c_last, h, w])."""
        u = self.unet
        emb = u.time_embedding(u.time_proj(t).to(inp.dtype))
        h = u.conv_in(pixel_unshuffle(inp, self.s2d))
        skips = [h]
        for block in u.down_blocks:
            h, res = block(hidden_states=h, temb=emb)
            skips += res
        return emb, skips, u.mid_block(h, emb)

    def _decode(self, emb: torch.Tensor, skips: list[torch.Tensor],
                h: torch.Tensor) -> torch.Tensor:
        """The decoder: second half of UNet2DModel.forward -> prediction [N, C, H, W]."""
        u = self.unet
        for block in u.up_blocks:
            n = len(block.resnets)
            skips, res = skips[:-n], tuple(skips[-n:])
            h = block(h, res, emb)
        return pixel_shuffle(u.conv_out(u.conv_act(u.conv_norm_out(h))), self.s2d)

    def _predict(self, inp: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._decode(*self._features(inp, t))

    # -- helpers ----------------------------------------------------------------------------
    def _pmask(self, mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Token mask [L] or [N, L] (True = hidden) -> pixel mask [1 or N, 1, H, W], 1 = hidden."""
        if mask.dim() == 1:
            return pixel_mask(mask, self.patch).to(x)
        g, p = self.grid, self.patch
        return mask.view(-1, 1, g, g).to(x).repeat_interleave(p, 2).repeat_interleave(p, 3)

    @staticmethod
    def _assemble(x_t: torch.Tensor, cond: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """UNet input [N, 2C + 1, H, W] from x_t and the conditioning image, both in [-1, 1]."""
        visible = cond * (1 - m)
        return torch.cat([x_t * m + visible, visible, m.expand_as(x_t[:, :1])], 1)

    def _noisy_inputs(self, x0: torch.Tensor, cond: torch.Tensor, m: torch.Tensor,
                      t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """UNet input at step t for generating x0 (the hidden region) next to the visible pixels
        of cond, x0 and cond in [-1, 1]: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        abar = self._abar.to(x0.device)[t].view(-1, 1, 1, 1)
        return self._assemble(abar.sqrt() * x0 + (1 - abar).sqrt() * noise, cond, m)

    # -- the generator interface (see l2l/generators/__init__.py) ---------------------------
    def sample_aux(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Generator | None = None):
        """(timesteps [N] long, noise [N, C, H, W]) on x's device, drawn with g (a CPU
        generator; the global RNG when None). Timesteps are uniform over the training steps,
        as in training: unlearning then covers every step that sampling visits."""
        n = x.shape[0]
        t = torch.randint(0, TRAIN_TIMESTEPS, (n,), generator=g)
        noise = torch.randn((n, *x.shape[1:]), generator=g)
        return t.to(x.device), noise.to(x)

    def noise_input(self, x: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """As the released Palette unlearning code: the noise replaces only the hidden region of
        the forget image, so the target differs from x only where the model generates.
        x, noise: [N, C, H, W] in [0, 1]; mask: token mask [L]."""
        m = self._pmask(mask, x)
        return x * (1 - m) + noise * m

    def encode(self, x: torch.Tensor, mask: torch.Tensor, aux=None) -> list[torch.Tensor]:
        """Encoder features of x ([N, C, H, W] in [0, 1]), its hidden region noised with
        aux = (t, noise) (aux None: drawn with the fixed seed AUX_SEED). Every tensor the
        decoder consumes: [emb [N, 4 * c0], conv_in output, each down block's residual
        outputs..., mid-block output], each [N, c, h, w]."""
        if aux is None:
            aux = self.sample_aux(x, mask, torch.Generator().manual_seed(AUX_SEED))
        t, noise = aux
        x = 2 * x - 1
        inp = self._noisy_inputs(x, x, self._pmask(mask, x), t, noise)
        emb, skips, mid = self._features(inp, t)
        return [emb, *skips, mid]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor,
                    g: torch.Generator | None = None) -> torch.Tensor:
        """DDIM (eta = 0) inpainting in `sampling_steps` steps from x_T drawn with g, so that a
        seeded g gives the same output. Composite: visible input pixels plus the generated
        hidden region, [N, C, H, W] in [0, 1]."""
        m = self._pmask(mask, x)
        cond = 2 * x - 1
        sched = self.sample_sched
        sched.set_timesteps(self.sampling_steps)
        x_t = torch.randn(x.shape, generator=g).to(x)
        for t in sched.timesteps.tolist():
            steps = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            x_t = sched.step(self._predict(self._assemble(x_t, cond, m), steps), t,
                             x_t).prev_sample
        out = ((x_t + 1) / 2).clamp(0, 1)
        return x * (1 - m) + out * m

    def task_loss(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None,
                  g: torch.Generator | None = None) -> torch.Tensor:
        """Diffusion loss for generating `target` (default x; [N, C, H, W] in [0, 1]) as x0 in
        the hidden region, conditioned on the visible pixels of x: MSE of the UNet's prediction
        (v, or eps / x0, see PREDICTION) over the hidden region only. The visible part of the
        input is the clean conditioning image, so there is nothing to denoise there (Palette)."""
        target = x if target is None else target
        t, noise = self.sample_aux(x, mask, g)
        m = self._pmask(mask, x)
        x0 = 2 * target - 1
        pred = self._predict(self._noisy_inputs(x0, 2 * x - 1, m, t, noise), t)
        if PREDICTION == "epsilon":
            goal = noise
        elif PREDICTION == "sample":
            goal = x0
        else:
            goal = self.train_sched.get_velocity(x0, noise, t)
        err = (pred - goal) ** 2 * m
        return err.sum() / m.expand_as(err).sum().clamp_min(1)
