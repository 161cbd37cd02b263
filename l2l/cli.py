"""`l2l`: run one trial in a plain Python process, without Ray or MLflow.

    l2l trial config.yaml                 # prints the metrics as a table
    l2l trial config.yaml --json out.json # and writes the tidy rows as JSON
    l2l trial config.yaml --artifacts DIR # and the sample grids and embeddings
    l2l plateau config.yaml --epochs 30   # validation loss per pretraining epoch, and the
                                          # epoch where it plateaus (image-to-image configs)

The config holds the fields of one trial (the same fields as a sweep spec, without `grid`).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any


from contract.inputs import InputError, check_numbers, load_yaml, one_line, read_yaml
from l2l.argparsing import OneLineParser, path_arg, store_arg
from l2l.errors import ConfigError, DataNotFoundError


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="l2l", description="Machine unlearning for generative models "
                      "(image-to-image generators and GANs): run one trial without Ray.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=OneLineParser)
    t = sub.add_parser("trial", help="run one trial from a YAML config and print its metrics")
    t.add_argument("config", type=path_arg, help="YAML file with one trial's fields")
    t.add_argument("--json", type=path_arg, help="also write the result rows to this JSON file")
    t.add_argument("--artifacts", type=path_arg, help="write sample grids (PNG) and embeddings "
                   "(embeddings.npz) to this directory")
    t.add_argument("--save-model", type=store_arg, metavar="DIR",
                   help="keep the unlearned model in DIR (a path or URI), named by its "
                        "SHA-256, for `l2l eval`")
    _runtime_options(t, "model cache, a path or a URI (default: $L2L_CACHE_DIR or "
                        "~/.cache/l2l)")
    t.set_defaults(run=trial)

    e = sub.add_parser(
        "eval", help="evaluate a stored unlearned model again, optionally with other "
                     "evaluation settings or another task",
        description="Evaluate a model kept by `l2l trial --save-model` or `l2l-sweep run "
                    "--save-models` without unlearning again: the trial's config travels in "
                    "the file; --set changes evaluation or task fields (e.g. --set "
                    "task.mask_ratio=0.25 --set eval.images_per_class=50). Nothing set: the "
                    "trial's own numbers.")
    e.add_argument("model", type=store_arg, help="the stored model (.safetensors), a path or URI")
    e.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", type=_setting,
                   help=f"replace a field of {', '.join(EVAL_FIELDS)} (a YAML value); repeat")
    e.add_argument("--json", type=path_arg, help="also write the result rows to this JSON file")
    _runtime_options(e, "model cache, a path or a URI (default: $L2L_CACHE_DIR or "
                        "~/.cache/l2l)")
    e.set_defaults(run=evaluate_stored)

    c = sub.add_parser("plateau", help="train an image-to-image config's original model for "
                       "--epochs at a constant learning rate and print its validation loss per "
                       "epoch and the plateau epoch (how pretraining budgets are chosen)")
    c.add_argument("config", type=path_arg, help="YAML file with one image-to-image trial's fields "
                   "(a spec's top level works; its pretrain.epochs is replaced by --epochs)")
    c.add_argument("--generator", help="which generator of a spec's grid.generator to train "
                   "(its name; default: the file's generator field)")
    c.add_argument("--epochs", type=int, default=30, help="epochs to train (default 30)")
    c.add_argument("--tolerance", type=float, default=0.01, help="relative gain in validation "
                   "loss that still counts as progress (default 0.01)")
    c.add_argument("--patience", type=int, default=3, help="epochs without that gain that "
                   "make a plateau (default 3)")
    _runtime_options(c, "model cache: the run is cached as the original of that config "
                        "with --epochs")
    c.set_defaults(run=plateau)
    return p


def _runtime_options(p: argparse.ArgumentParser, cache_help: str) -> None:
    """Where a command runs and finds things (the config's runtime fields), and -q."""
    p.add_argument("--cache-dir", type=store_arg, help=cache_help)
    p.add_argument("--data-root", type=path_arg, help="Fashion-MNIST files (default: "
                   "$L2L_DATA_DIR, then the Debian package, then a download)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


# What `l2l eval --set` may change: how a model is evaluated, never what it was trained as
EVAL_FIELDS = ("eval.*", "task.*")


def _setting(text: str) -> tuple[str, Any]:
    """FIELD=VALUE of `l2l eval --set`, the value read as YAML (safe loader, bounded)."""
    field, sep, value = text.partition("=")
    field = field.strip()
    if not sep or not field:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    if not any(field.startswith(f[:-1]) and len(field) > len(f) - 1 for f in EVAL_FIELDS):
        raise argparse.ArgumentTypeError(f"{field}: only fields of {', '.join(EVAL_FIELDS)} "
                                         "can be set (evaluation, not training)")
    try:
        parsed = load_yaml(value, f"--set {field}") if value.strip() else None
        check_numbers({field: parsed})
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return field, parsed


def _load(path: Path) -> dict:
    try:
        raw = read_yaml(path, "config")
    except InputError as e:
        raise ConfigError("", str(e)) from None
    if not isinstance(raw, dict):
        raise ConfigError("config", "expected a mapping of trial fields")
    return raw


def _runtime_flags(raw: dict, args) -> None:
    """--cache-dir, --data-root and --device override the config's runtime fields."""
    for k in ("cache_dir", "data_root", "device"):
        if getattr(args, k) is not None:
            raw[k] = str(getattr(args, k))


def _check_writable_dir(path, flag: str) -> None:
    """A directory (or, for --cache-dir, a store) we could create or write, checked before any
    work; nothing is created."""
    from contract.inputs import is_uri

    if not is_uri(str(path)):  # a local directory: checked here, without pyarrow
        p = Path(path).resolve()
        while not p.exists():
            p = p.parent
        if not p.is_dir() or not os.access(p, os.W_OK):
            raise ConfigError(flag, f"{path} is not a writable directory")
        return
    from contract.storage import StorageError, check_writable, locate

    try:
        check_writable(locate(path, flag), flag)
    except StorageError as e:
        raise ConfigError(flag, str(e).removeprefix(f"{flag}: ")) from None


def format_metrics(metrics, family: str) -> str:
    """One line per metric, one column pair (value, n) per split; the arrow is the direction
    in which the value is better on that split (contract/metrics.py; →0.5: best at 0.5)."""
    from contract.metrics import direction

    splits = list(dict.fromkeys(m.split for m in metrics))
    by = {(m.split, m.metric): m for m in metrics}
    lines = [f"{'metric':<19}" + "".join(f"{s:>16} {'n':>5}" for s in splits)]
    for name in dict.fromkeys(m.metric for m in metrics):
        cells = []
        for s in splits:
            m = by.get((s, name))
            cells.append(f"{'':>16} {'':>5}" if m is None else
                         f"{m.value:>12.4f} {_arrow(direction(family, s, name)):>4} {m.n:>5}")
        lines.append(f"{name:<19}" + "".join(cells))
    return "\n".join(lines)


def _arrow(d) -> str:
    return d.arrow if d is not None else ""


def plateau(args) -> int:
    """`l2l plateau`: the validation curve of one pretraining run and where it flattens."""
    from l2l.config import TrialConfig

    try:
        if not 1 <= args.epochs <= 1000:
            raise ConfigError("--epochs", f"must be in 1..1000, got {args.epochs}")
        if not 0 < args.tolerance < 1:
            raise ConfigError("--tolerance", f"must be in (0, 1), got {args.tolerance}")
        if not 1 <= args.patience < args.epochs:
            raise ConfigError("--patience", f"must be in 1..{args.epochs - 1}, got {args.patience}")
        loaded = _load(args.config)
        raw = {k: v for k, v in loaded.items()
               if k not in ("name", "description", "grid", "variants", "resources",
                            "max_concurrent_trials", "max_failures")}
        if args.generator is not None:
            axis = (loaded.get("grid") or {}).get("generator") or []
            found = [g for g in axis if isinstance(g, dict) and g.get("name") == args.generator]
            raw["generator"] = found[0] if found else {**(raw.get("generator") or {}),
                                                       "name": args.generator}
        family = raw.pop("family", TrialConfig.family)
        if family != TrialConfig.family:
            raise ConfigError("family", f"{family!r}: plateau takes image-to-image configs "
                              f"(family {TrialConfig.family}); a GAN has no validation task loss")
        raw.setdefault("method", "original")
        # A constant rate after the warm-up: a decaying one flattens every curve at its end.
        raw["pretrain"] = {**(raw.get("pretrain") or {}), "epochs": args.epochs,
                           "schedule": "constant"}
        _runtime_flags(raw, args)
        cfg = TrialConfig.from_dict(raw)
        if args.cache_dir is not None:
            _check_writable_dir(args.cache_dir, "--cache-dir")
    except ConfigError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    from l2l.cache import open_cache
    from l2l.i2i import STEPS
    from l2l.pretrain import plateau_epoch
    from l2l.trial import prepare
    from l2l.training import resolve_device

    device = resolve_device(cfg.device)
    cache_dir = open_cache(cfg.cache_dir)
    try:
        prep = prepare(STEPS, cfg, device, cache_dir)
    except DataNotFoundError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    _, hit = STEPS.original(cfg, prep, device, cache_dir)
    history = hit.meta.get("validation_loss") or []
    print(f"{cfg.generator.name}/{cfg.generator.size}: {len(prep.pool)} images, pretrain seed "
          f"{cfg.pretrain.seed}, random_masks {cfg.pretrain.random_masks:g}, "
          f"{hit.meta.get('train_seconds', 0):.0f} s{' (cached)' if hit.hit else ''}")
    print("epoch  validation loss")
    for i, v in enumerate(history):
        print(f"{i + 1:>5}  {'-' if v is None else f'{v:.5f}'}")
    e = plateau_epoch(history, args.tolerance, args.patience)
    print("plateau: " + (f"not reached in {len(history)} epochs (train longer)" if e is None else
                         f"epoch {e}: the next {args.patience} did not lower the validation "
                         f"loss by {args.tolerance:.0%}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(name)s: %(message)s")
    return args.run(args)


def trial(args) -> int:
    """`l2l trial`: one trial, its metrics printed."""
    from l2l import experiment

    try:
        raw = _load(args.config)
        _runtime_flags(raw, args)
        cfg = experiment.parse_config(raw)
        _check_json(args.json)
        for flag, path in (("--artifacts", args.artifacts), ("--cache-dir", args.cache_dir),
                           ("--save-model", args.save_model)):
            if path is not None:
                _check_writable_dir(path, flag)
    except ConfigError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2

    try:
        result = experiment.run(cfg, artifact_dir=args.artifacts, model_store=args.save_model)
    except DataNotFoundError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    print(format_metrics(result.metrics, cfg.family))
    cached = " (from the cache)" if result.pretrain_cache_hit else ""
    memory = result.peak_memory_mb
    print(f"seconds: original model {result.pretrain_seconds:.1f}{cached}, unlearning "
          f"{result.unlearn_seconds:.1f}, evaluation {result.eval_seconds:.1f} ({result.device}"
          + (f", peak memory {memory:.0f} MB)" if memory else ")"))
    for name, path in result.artifacts.items():
        print(f"artifact {name}: {path}")
    _write_json(args.json, result)
    return 0


def _check_json(path: Path | None) -> None:
    """--json must be writable, checked before any work."""
    if path is not None:
        parent = path.resolve().parent
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError("--json", f"cannot write to {parent}")


def _write_json(path: Path | None, result) -> None:
    """The result rows to --json, whole (a temporary name, then a rename)."""
    if path is not None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(result.rows(), indent=1))
        os.replace(tmp, path)
        print(f"rows written to {path}")


def evaluate_stored(args) -> int:
    """`l2l eval`: a stored model evaluated again."""
    from contract.storage import STORE_ERRORS
    from l2l.stored_model import StoredModelError, reevaluate

    overrides = dict(args.set)
    runtime = {k: (str(getattr(args, k)) if getattr(args, k) is not None else None)
               for k in ("cache_dir", "data_root", "device")}
    try:
        _check_json(args.json)
        result = reevaluate(args.model, overrides, runtime)
    except (ConfigError, StoredModelError, DataNotFoundError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except STORE_ERRORS as e:
        print(f"error: model: cannot read {args.model} ({one_line(str(e))[:200]})",
              file=sys.stderr)
        return 2
    print(format_metrics(result.metrics, result.config.family))
    print(f"seconds: evaluation {result.eval_seconds:.1f} ({result.device})")
    _write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
