"""A small VQ-GAN generator in the style of MAGE (Li et al., 2023): the paper's VQ-GAN column.

Three parts, each its own submodule so that methods can tell them apart:
    tokenizer  diffusers `VQModel`, 4x downsampling: x [N, 1, 32, 32] -> tokens [N, 64] (an 8x8
               grid, one token per 4x4 patch, so the task's token mask maps 1:1 onto tokens).
               Trained first, then frozen: no method trains it, no gradient flows through it.
    encoder    token embedding + position embedding + ViT blocks over the VISIBLE tokens only:
               tokens [N, L], ids_keep [N, L_vis] -> latent [N, L_vis, D]. What unlearning trains.
    decoder    mask tokens inserted at hidden positions + ViT blocks + a head:
               latent [N, L_vis, D] -> logits [N, L, K] over the K codebook entries.

Generation is MaskGIT-style iterative decoding over `sampling_steps` rounds: each round predicts
every still-hidden token, keeps the most confident ones, and a cosine schedule says how many
stay hidden. The encoder runs ONCE, on the task's visible tokens (exactly the input that l2l
trains it on), and later rounds feed the tokens revealed so far to the decoder through its own
token embedding. (MAGE re-encodes the revealed tokens each round; running the encoder once keeps
the unlearned encoder in control of every round and costs one encoder pass.)

Scale simplification: a real VQ-GAN adds an adversarial (patch-GAN) and a perceptual loss to the
tokenizer. At 32x32 Fashion-MNIST on a CPU budget they are left out: the tokenizer is trained
with reconstruction (L1 + MSE) plus the codebook and commitment losses, with data-dependent
codebook restarts so that the codebook does not collapse in a few hundred steps.

Noise images in pretraining (`pretrain.noise_share` of every batch, both phases; 0 by default,
the paper's real images only): clamp(m + s * randn, 0, 1) with a random mean m in [0, 0.6) and
std s in [0.1, 0.5) per image, as input and as target. Why one might mix them in:
The paper's VQ-GAN learnt from ImageNet, whose textures give it codes for noise-like patches and
the habit of continuing noise-like context with noise-like content; that is what makes the l2l
target E0(noise image) decode to noise. A VQ-GAN trained on Fashion-MNIST alone has neither: it
tokenizes a noise image into dark background codes (flat fields below ~0.3 come back black) and
fills the centre of a noise context with a dark blob, so unlearned forget outputs stay plausible
(calibration on the tiny config, centre masks only, forget cosine change after l2l: -0.004 /
-0.005 without noise images, -0.002 with them in the tokenizer only, -0.003 in the transformer
only, -0.012 to -0.016 in both at a share of 0.125; retain unchanged in all). That is a departure
from the paper that helps one method, so it is an option (docs/design-notes.md, "Originals").
"""
from __future__ import annotations

import math
import time

import torch
from diffusers import VQModel
from timm.models.vision_transformer import Block
from torch import nn
from torch.nn import functional as F

from l2l.checkpoint import Checkpoint
from l2l.generators.base import Generator, with_noise_images
from l2l.tasks import pixel_mask
from l2l.training import cosine_schedule, epoch_batches

SIZES = {
    # name: (tokenizer channels per stage, resnets per stage, codebook size K, code dim,
    #        dim, depth, heads, decoder dim, decoder depth, decoder heads)
    "tiny": ((16, 32, 32), 1, 256, 16, 64, 2, 4, 64, 2, 4),
    "small": ((32, 64, 64), 1, 512, 32, 128, 4, 4, 128, 2, 4),
    # MAGE-Base-like widths (ViT-B encoder, 8-block decoder, 1024 codes of dim 256), for GPUs
    "base": ((64, 128, 256), 2, 1024, 256, 768, 12, 12, 512, 8, 16),
}
TOKENIZER_FRACTION = 0.5  # share of the pretraining epochs spent on the tokenizer
SAMPLING_STEPS = 4  # rounds of iterative decoding unless the config says otherwise


def _blocks(dim: int, depth: int, heads: int) -> nn.ModuleList:
    return nn.ModuleList(Block(dim, heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(depth))


def _gather(t: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """t: [N, L, D], ids: [N, K] -> [N, K, D]."""
    return torch.gather(t, 1, ids.unsqueeze(-1).expand(-1, -1, t.shape[-1]))


def _trunc(p: nn.Parameter) -> nn.Parameter:
    nn.init.trunc_normal_(p, std=0.02)
    return p


class TokenEncoder(nn.Module):
    """tokens [N, L] (codebook ids), ids_keep [N, L_vis] -> latent [N, L_vis, D]."""

    def __init__(self, num_tokens: int, codebook: int, dim: int, depth: int, heads: int):
        super().__init__()
        self.tok_embed = nn.Embedding(codebook, dim)
        _trunc(self.tok_embed.weight)
        self.pos_embed = _trunc(nn.Parameter(torch.zeros(1, num_tokens, dim)))
        self.blocks = _blocks(dim, depth, heads)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        t = _gather(self.tok_embed(tokens) + self.pos_embed, ids_keep)  # visible tokens only
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)


class TokenDecoder(nn.Module):
    """latent [N, L_vis, D] at ids_keep, plus optionally tokens already revealed at hidden
    positions (`known` [N, L] bool, their ids in `tokens` [N, L]) -> logits [N, L, K]."""

    def __init__(self, num_tokens: int, codebook: int, enc_dim: int, dim: int, depth: int,
                 heads: int):
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = _trunc(nn.Parameter(torch.zeros(1, 1, dim)))
        self.tok_embed = nn.Embedding(codebook, dim)  # revealed tokens of earlier rounds
        _trunc(self.tok_embed.weight)
        self.pos_embed = _trunc(nn.Parameter(torch.zeros(1, num_tokens, dim)))
        self.blocks = _blocks(dim, depth, heads)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, codebook)

    def forward(self, latent: torch.Tensor, ids_keep: torch.Tensor,
                tokens: torch.Tensor | None = None,
                known: torch.Tensor | None = None) -> torch.Tensor:
        t = self.embed(latent)
        n, L = latent.shape[0], self.pos_embed.shape[1]
        full = self.mask_token.expand(n, L, -1)
        if known is not None:  # revealed hidden tokens replace their mask tokens
            full = torch.where(known.unsqueeze(-1), self.tok_embed(tokens), full)
        full = full.scatter(1, ids_keep.unsqueeze(-1).expand(-1, -1, t.shape[-1]), t)
        full = full + self.pos_embed
        for blk in self.blocks:
            full = blk(full)
        return self.head(self.norm(full))


class VQGAN(Generator):
    """MAGE-style VQ-GAN with the generator interface of l2l/generators/__init__.py."""

    temperature = 0.0  # token choice: 0 = argmax; > 0 = sampled at this temperature with `g`

    def __init__(self, size: str = "tiny", img_size: int = 32, patch: int = 4, chans: int = 1,
                 sampling_steps: int | None = None):
        super().__init__()
        if size not in SIZES:
            raise KeyError(f"unknown VQGAN size {size!r} (known: {', '.join(SIZES)})")
        ch, layers, codebook, code_dim, dim, depth, heads, ddim, ddepth, dheads = SIZES[size]
        if patch != 4:
            raise ValueError("VQGAN: the tokenizer downsamples 4x, so patch must be 4")
        self.patch, self.chans, self.img_size = patch, chans, img_size
        self.grid = img_size // patch
        self.codebook = codebook
        self.sampling_steps = sampling_steps or SAMPLING_STEPS
        # three stages = two downsamplings: 32x32 -> 8x8; no attention in the mid block (cost)
        self.tokenizer = VQModel(
            in_channels=chans, out_channels=chans,
            down_block_types=("DownEncoderBlock2D",) * len(ch),
            up_block_types=("UpDecoderBlock2D",) * len(ch),
            block_out_channels=ch, layers_per_block=layers, latent_channels=code_dim,
            num_vq_embeddings=codebook, norm_num_groups=8, sample_size=img_size,
            mid_block_add_attention=False)
        # standard VQ-VAE loss: codebook term weight 1, commitment term weight beta = 0.25
        self.tokenizer.quantize.legacy = False
        self.tokenizer.requires_grad_(False)  # frozen outside its own pretraining phase
        L = self.grid ** 2
        self.encoder = TokenEncoder(L, codebook, dim, depth, heads)
        self.decoder = TokenDecoder(L, codebook, dim, ddim, ddepth, dheads)

    # -- tokenizer ------------------------------------------------------------------------
    def _latents(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, C, H, W] in [0, 1] -> continuous codes [N, code_dim, grid, grid]."""
        tk = self.tokenizer
        return tk.quant_conv(tk.encoder(x * 2 - 1))  # the VQModel expects [-1, 1]

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, C, H, W] -> token ids [N, L] (row-major over the grid, like the task masks)."""
        z = self._latents(x).permute(0, 2, 3, 1).flatten(0, 2)  # [N * L, code_dim]
        ids = torch.cdist(z, self.tokenizer.quantize.embedding.weight).argmin(1)
        return ids.view(x.shape[0], -1)

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """token ids [N, L] -> images [N, C, H, W] in [0, 1]."""
        n, g = tokens.shape[0], self.grid
        q = self.tokenizer.quantize.embedding(tokens).view(n, g, g, -1).permute(0, 3, 1, 2)
        out = self.tokenizer.decode(q, force_not_quantize=True).sample
        return ((out + 1) / 2).clamp(0, 1)

    # -- helpers ----------------------------------------------------------------------------
    def _ids_keep(self, mask: torch.Tensor, n: int) -> torch.Tensor:
        """mask: [L] or [N, L] bool (True = hidden, same count per row) -> ids_keep: [N, L_vis]."""
        if mask.dim() == 1:
            return torch.nonzero(~mask).flatten().unsqueeze(0).expand(n, -1)
        return torch.nonzero(~mask)[:, 1].view(n, -1)

    def _rows(self, mask: torch.Tensor, n: int) -> torch.Tensor:
        """mask [L] or [N, L] -> [N, L] bool."""
        return mask.unsqueeze(0).expand(n, -1) if mask.dim() == 1 else mask

    def _token_loss(self, tokens: torch.Tensor, mask: torch.Tensor, target: torch.Tensor,
                    g: torch.Generator | None) -> torch.Tensor:
        """Cross-entropy of the decoder at hidden positions that are still masked.

        tokens, target: [N, L] ids of the input and of the wanted output. As in MaskGIT training,
        each image reveals a random part of its hidden target tokens to the decoder (fraction
        1 - cos(pi/2 u), u ~ U(0, 1), so fully hidden is the most frequent case) so that the
        decoder learns the later rounds of iterative decoding too."""
        n, dev = tokens.shape[0], tokens.device
        ids = self._ids_keep(mask, n)
        hidden = self._rows(mask, n)
        u = torch.rand(n, 1, generator=g).to(dev)
        n_hidden = hidden.sum(1, keepdim=True)
        still = (n_hidden.float() * torch.cos(math.pi / 2 * u)).ceil().clamp_min(1)
        score = torch.rand(hidden.shape, generator=g).to(dev).masked_fill(~hidden, 2.0)
        rank = score.argsort(1).argsort(1)  # hidden positions first, in random order
        masked = hidden & (rank < still)
        known = hidden & ~masked
        logits = self.decoder(self.encoder(tokens, ids), ids, target, known)
        return F.cross_entropy(logits[masked], target[masked])

    # -- the generator interface (see l2l/generators/__init__.py) ---------------------------
    def sample_aux(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Generator | None = None):
        """Tokenizer and encoder are deterministic: nothing random to share with a teacher."""
        return None

    def encode(self, x: torch.Tensor, mask: torch.Tensor, aux=None) -> list[torch.Tensor]:
        """Latent of the visible tokens: [[N, L_vis, D]]. What l2l's losses compare.
        The tokenizer is frozen and outside the graph; only the encoder gets gradients."""
        return [self.encoder(self.tokenize(x), self._ids_keep(mask, x.shape[0]))]

    @torch.no_grad()
    def generate_tokens(self, x: torch.Tensor, mask: torch.Tensor,
                        g: torch.Generator | None = None) -> torch.Tensor:
        """Iterative decoding of the hidden tokens: [N, L] ids (visible ones are x's own).

        Round t of S predicts every unknown token (argmax, or a sample at `self.temperature`
        drawn with `g`), then keeps the most confident ones so that floor(H cos(pi/2 (t+1)/S))
        of the H hidden tokens stay unknown: few tokens early, while context is thin."""
        n = x.shape[0]
        ids = self._ids_keep(mask, n)
        tokens = self.tokenize(x)
        latent = self.encoder(tokens, ids)
        hidden = self._rows(mask, n)
        unknown = hidden.clone()
        n_hidden = int(hidden[0].sum())
        steps = self.sampling_steps
        for t in range(steps):
            logits = self.decoder(latent, ids, tokens, hidden & ~unknown).float()
            if self.temperature > 0:
                # inverse-CDF sampling: the same uniforms pick the same tokens when the logits
                # move a little, so two models compared under one seed differ only where their
                # distributions really do
                probs = torch.softmax(logits / self.temperature, -1)
                u = torch.rand(n, probs.shape[1], 1, generator=g).to(x.device)
                pred = (probs.cumsum(-1) < u).sum(-1).clamp_max(self.codebook - 1)
            else:
                probs = torch.softmax(logits, -1)
                pred = logits.argmax(-1)
            conf = probs.gather(-1, pred.unsqueeze(-1)).squeeze(-1)
            conf = conf.masked_fill(~unknown, -1.0)  # only unknown positions compete
            keep_unknown = int(n_hidden * math.cos(math.pi / 2 * (t + 1) / steps))
            reveal = int(unknown[0].sum()) - keep_unknown
            if t == steps - 1:
                reveal = int(unknown[0].sum())
            if reveal <= 0:
                continue
            top = conf.topk(reveal, dim=1).indices  # [N, reveal]
            chosen = torch.zeros_like(unknown).scatter(1, top, True) & unknown
            tokens = torch.where(chosen, pred, tokens)
            unknown &= ~chosen
        return tokens

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor,
                    g: torch.Generator | None = None) -> torch.Tensor:
        """Composite output: visible input pixels plus the generated hidden region. [N, C, H, W]"""
        out = self.detokenize(self.generate_tokens(x, mask, g))
        if mask.dim() == 1:
            m = pixel_mask(mask, self.patch).to(x)
        else:
            m = mask.float().view(-1, 1, self.grid, self.grid)
            m = m.repeat_interleave(self.patch, 2).repeat_interleave(self.patch, 3)
        return x * (1 - m) + out * m

    def task_loss(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None,
                  g: torch.Generator | None = None) -> torch.Tensor:
        """Cross-entropy of the decoder's logits at hidden positions against the tokens of
        `target` (default x); baselines pass other targets (e.g. a noise image)."""
        tokens = self.tokenize(x)
        target_tokens = tokens if target is None else self.tokenize(target)
        return self._token_loss(tokens, mask, target_tokens, g)

    # -- pretraining: tokenizer first, then the transformer on frozen tokens ------------------
    def _tokenizer_loss(self, x: torch.Tensor):
        """Reconstruction (L1 + MSE, on [-1, 1]) + codebook + 0.25 x commitment.
        Returns (loss, codes [N * L, code_dim], ids [N * L])."""
        z = self._latents(x)
        q, vq_loss, (_, _, ids) = self.tokenizer.quantize(z)
        tk = self.tokenizer
        out = tk.decoder(tk.post_quant_conv(q))
        ref = x * 2 - 1
        rec = (out - ref).abs().mean() + ((out - ref) ** 2).mean()
        return rec + vq_loss, z.detach().permute(0, 2, 3, 1).flatten(0, 2), ids.flatten()

    def pretrain(self, pool, masks, cfg, device, log, val=None,
                 checkpoint: Checkpoint | None = None) -> list[float | None]:
        """Tokenizer for about half of cfg.epochs (whole images), then the transformer for the
        rest on the frozen tokens, each batch masked by `masks()`. AdamW with a warm-up + cosine
        schedule. pool: ImageSet with .x [N, 1, 32, 32]; `val`: (images, task mask) whose
        validation (token) loss is measured after every transformer epoch. Returns one entry
        per epoch, None for the tokenizer's. `checkpoint`: saved after every epoch of either
        phase, resumed from when it holds one (l2l/checkpoint.py)."""
        checkpoint = checkpoint or Checkpoint(None)
        torch.manual_seed(cfg.seed)
        g = torch.Generator().manual_seed(cfg.seed)
        tok_epochs = max(1, round(cfg.epochs * TOKENIZER_FRACTION))
        t0 = time.perf_counter()
        if checkpoint.phase == "transformer":  # the tokenizer was finished before the stop
            self.tokenizer.requires_grad_(False)
            self.tokenizer.eval()
        else:
            self.pretrain_tokenizer(pool.x, tok_epochs, cfg, g, device, log, t0, checkpoint)
        return [None] * tok_epochs + self.pretrain_transformer(
            pool.x, masks, max(1, cfg.epochs - tok_epochs), cfg, g, device, log, t0, val,
            checkpoint)

    def pretrain_tokenizer(self, x_all, epochs, cfg, g, device, log, t0,
                           checkpoint: Checkpoint) -> None:
        """Phase 1: the VQModel on whole images [N, C, H, W]; frozen again at the end."""
        n = len(x_all)
        tk = self.tokenizer
        tk.requires_grad_(True)
        tk.train()
        opt = torch.optim.AdamW(tk.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
        sched = cosine_schedule(opt, epochs * -(-n // cfg.batch_size), kind=cfg.schedule)
        book = tk.quantize.embedding.weight
        state = {"model": self, "opt": opt, "sched": sched, "data": g}
        start, extra = checkpoint.resume("tokenizer", state)
        usage = extra.get("usage", torch.zeros(self.codebook)).to(device)
        step = extra.get("step", 0)
        for epoch in range(start, epochs):
            total = 0.0
            for idx in epoch_batches(n, cfg.batch_size, g):
                x = with_noise_images(x_all[idx], cfg.noise_share, g).to(device)
                loss, z, ids = self._tokenizer_loss(x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
                usage += torch.bincount(ids, minlength=self.codebook).to(usage)
                step += 1
                # dead codes restart at random current codes (the first step is a data-dependent
                # init): without it a codebook trained for a few hundred steps collapses
                if step == 1 or step % 10 == 0:
                    dead = (usage == 0).nonzero().flatten()
                    if len(dead):
                        pick = torch.randint(len(z), (len(dead),), generator=g).to(device)
                        with torch.no_grad():
                            book[dead] = z[pick] + 0.01 * torch.randn_like(z[pick])
                    usage.zero_()
            log.info("pretrain vqgan tokenizer epoch %d/%d: loss %.4f (%.0f s)", epoch + 1,
                     epochs, total / n, time.perf_counter() - t0)
            checkpoint.save("tokenizer", epoch + 1, state, usage=usage.cpu(), step=step)
        tk.requires_grad_(False)
        tk.eval()

    def pretrain_transformer(self, x_all, masks, epochs, cfg, g, device, log, t0,
                             val=None, checkpoint: Checkpoint | None = None
                             ) -> list[float | None]:
        """Phase 2: encoder + decoder on the frozen tokens of x_all (tokenized once)."""
        checkpoint = checkpoint or Checkpoint(None)
        n = len(x_all)
        self.encoder.train()
        self.decoder.train()
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.05)
        sched = cosine_schedule(opt, epochs * -(-n // cfg.batch_size), kind=cfg.schedule)
        state = {"model": self, "opt": opt, "sched": sched, "data": g, "masks": masks}
        start, extra = checkpoint.resume("transformer", state)
        tokens = torch.cat([self.tokenize(x_all[i:i + 256].to(device))
                            for i in range(0, n, 256)])
        used = len(tokens.unique())
        k_noise = int(round(cfg.noise_share * n))
        if start:  # drawn from `g` before the first epoch: kept, not drawn again
            noise_tokens = extra["noise_tokens"]
            noise_tokens = None if noise_tokens is None else noise_tokens.to(device)
        else:
            noise_tokens = self.tokenize(with_noise_images(x_all[:k_noise], 1.0, g)
                                         .to(device)) if k_noise else None
        history: list[float | None] = extra.get("history", [])
        for epoch in range(start, epochs):
            total = 0.0
            for idx in epoch_batches(n, cfg.batch_size, g):
                t = tokens[idx.to(device)]
                k = int(round(cfg.noise_share * len(t)))
                if k:
                    pick = torch.randint(k_noise, (k,), generator=g).to(device)
                    t = torch.cat([t[k:], noise_tokens[pick]])
                loss = self._token_loss(t, masks(), t, g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            history.append(None if val is None else self.validation_loss(*val))
            log.info("pretrain vqgan transformer epoch %d/%d: loss %.4f%s, %d codes used "
                     "(%.0f s)", epoch + 1, epochs, total / n,
                     "" if val is None else f", validation {history[-1]:.4f}", used,
                     time.perf_counter() - t0)
            checkpoint.save("transformer", epoch + 1, state, history=history,
                            noise_tokens=None if noise_tokens is None else noise_tokens.cpu())
        self.eval()
        return history
