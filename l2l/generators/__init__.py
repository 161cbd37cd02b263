"""Generators by name: `build_generator(name, size)`.

Every generator is an `nn.Module` for [N, C, 32, 32] images in [0, 1] with this interface, so
that methods, pretraining and evaluation never ask which one they hold:

    encoder, decoder        submodules: encoder-only methods train `encoder`, freeze `decoder`
    patch, grid             masks are boolean over the grid x grid token grid (True = hidden);
                            a token covers patch x patch pixels
    sample_aux(x, mask, g)  the random inputs of `encode` (diffusion: timesteps and noise), drawn
                            once so that a student and its frozen teacher see the same ones;
                            None for deterministic encoders
    encode(x, mask, aux)    list of feature tensors that the l2l losses compare
    reconstruct(x, mask, g) composite output [N, C, H, W]: visible input pixels plus the
                            generated hidden region
    task_loss(x, mask, target=None, g=None)
                            the generator's own training loss for producing `target` (default x)
                            from the masked x; baselines pass other targets
    pretrain(pool, masks, cfg, device, log, val, checkpoint)
                            l2l/generators/base.py's loop minimises task_loss, each batch masked
                            by `masks()` (l2l/tasks.py TrainingMasks), resumable from
                            `checkpoint` (l2l/checkpoint.py); a generator with its own schedule
                            (tokenizer first) overrides it
"""
import importlib

from l2l.config import GENERATORS


def build_generator(name: str, size: str, sampling_steps: int | None = None):
    """A generator of the registry (l2l/config.py GENERATORS) by name; heavy ones (diffusers)
    are imported only when built."""
    if name not in GENERATORS:
        raise KeyError(f"unknown generator {name!r} (known: {', '.join(GENERATORS)})")
    module, cls = GENERATORS[name].split(":")
    return getattr(importlib.import_module(module), cls)(size=size, sampling_steps=sampling_steps)
