"""Synthetic result files in the result schema, for tests and for trying the report.

`python -m analysis.synthetic DIR` writes two small sweeps (image-to-image and GAN) with
artifacts under DIR, e.g. to check a report in a browser without running any training:

    python -m analysis.synthetic /tmp/demo && l2l-analysis report --results /tmp/demo
"""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from contract.identity import IDENTITY_VERSION
from contract.metrics import direction, uses_features
from contract.schema import COLUMNS, SCHEMA_VERSION, trial_path, with_direction, write_rows

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)

# Legacy layouts, only for writing files of older schema versions (the migration tests):
# version 4 had no `value_se`; version 3 had no `extractor` either; version 2 had `higher_is_better` where version 3 has
# `direction`, and no identity_version; version 1 also lacked the columns that version 2 added.
# The current layout is the contract's.
LEGACY_TYPES = {**COLUMNS, "higher_is_better": pa.bool_()}
V4_COLUMNS = [c for c in COLUMNS if c != "value_se"]
V3_COLUMNS = [c for c in V4_COLUMNS if c != "extractor"]
V2_COLUMNS = [c for c in V3_COLUMNS if c not in ("direction", "identity_version")] \
    + ["higher_is_better"]
V1_COLUMNS = [c for c in V2_COLUMNS if c not in (
    "family", "setting", "forget_k", "params", "peak_memory_mb", "pretrain_cache_hit",
    "artifact_dir")]


# the image-to-image task of a family's trials (a GAN trial has none)
TASKS = {"i2i": {"task": "center_inpaint", "mask_ratio": 0.5}}


def trial_rows(method: str, seed: int, metrics: dict, *, sweep: str = "s-a",
               family: str = "i2i", generator: str = "mae", alpha=None, status: str = "ok",
               minutes: float = 0, trial_id: str | None = None,
               extractor: str | None = "classifier", **extra) -> list[dict]:
    """Rows of one trial in the current schema (the direction is added by the writer, from the
    metric registry); `metrics` maps (split, metric) -> value. `extractor` is that of the
    metrics the registry says are computed on features (the others have none). `extra`
    overrides any column (e.g. retain_mode, forget_set, unlearn_seconds)."""
    base = dict(
        schema_version=SCHEMA_VERSION, sweep_id=sweep,
        trial_id=trial_id or f"t-{generator}-{method}-{alpha}-{seed}",
        status=status, error=None, family=family, setting="class",
        generator=generator, generator_size="tiny", method=method,
        dataset="fashion_mnist", forget_set="[5, 7, 9]", forget_k=3, retain_set="[0, 1]",
        retain_mode="full", retain_fraction=1.0, proxy_source=None, proxy_size=None,
        alpha=alpha, noise="normal" if method == "l2l" else None, params="{}",
        **TASKS.get(family, {"task": None, "mask_ratio": None}), seed=seed,
        pretrain_seed=0, n=64, pretrain_seconds=1.0, unlearn_seconds=0.0, eval_seconds=1.0,
        peak_memory_mb=100.0, pretrain_cache_hit=True, artifact_dir=None, device="cpu",
        config_hash="0" * 16, identity_version=IDENTITY_VERSION, code_version="test",
        mlflow_run_id=None, created_at=T0 + timedelta(minutes=minutes))
    base.update(extra)
    if status != "ok":
        metrics = {("forget", "error"): float("nan")}
        base["error"] = base["error"] or "RuntimeError: boom"
    return [dict(base, split=s, metric=m, value=float(v),
                 extractor=extractor if uses_features(family, s, m) else None)
            for (s, m), v in metrics.items()]


def _legacy_hib(row: dict) -> bool:
    """`higher_is_better` for a legacy file: the row's own if given, else from the registry
    (a target such as MIA AUC's 0.5 was written as lower-is-better)."""
    if "higher_is_better" in row:
        return row["higher_is_better"]
    d = direction(row.get("family") or "i2i", row.get("split") or "", row.get("metric") or "")
    return bool(d and d.kind == "higher")


def write_trial(results, rows: list[dict], *, schema_version: int = SCHEMA_VERSION) -> Path:
    """Writes one trial's rows to `<results>/sweep_id=<sweep>/<trial_id>.parquet`: the current
    version with the contract's writer; versions 1 to 4 with the columns they had (rows of 1
    and 2 may then carry `higher_is_better`)."""
    path = trial_path(results, rows[0]["sweep_id"], rows[0]["trial_id"])
    if schema_version == SCHEMA_VERSION:
        return write_rows(path, rows)
    names = {1: V1_COLUMNS, 2: V2_COLUMNS, 3: V3_COLUMNS, 4: V4_COLUMNS}[schema_version]
    if schema_version >= 3:  # as its writer did: the direction from the registry
        legacy = [{**{c: d.get(c) for c in names}, "schema_version": schema_version}
                  for d in map(with_direction, rows)]
    else:
        legacy = [{**{c: r.get(c) for c in names}, "schema_version": schema_version,
                   "higher_is_better": _legacy_hib(r)} for r in rows]
    table = pa.Table.from_pylist(legacy, schema=pa.schema([(c, LEGACY_TYPES[c])
                                                          for c in names]))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _tiles(rng, rows: int, cols: int, size: int = 32) -> np.ndarray:
    """A grid of blurry blobs: looks like small images and compresses like them."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((rows * size, cols * size))
    for r in range(rows):
        for c in range(cols):
            cy, cx, w = rng.uniform(8, 24), rng.uniform(8, 24), rng.uniform(3, 9)
            out[r * size:(r + 1) * size, c * size:(c + 1) * size] = np.exp(
                -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w * w))
    return out


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _gan_artifacts(d: Path, rng, **_) -> None:
    (d / "samples.png").write_bytes(_png(_tiles(rng, 4, 4)))


def _i2i_artifacts(d: Path, rng, *, points: int, dim: int, shift: float) -> None:
    for split in ("forget", "retain"):
        (d / f"grid_{split}.png").write_bytes(_png(_tiles(rng, 3, 8)))
    arrays = {}
    for split, move in (("forget", shift), ("retain", 0.0)):
        orig = rng.normal(size=(points, dim)).astype(np.float32)
        arrays[f"{split}_original"] = orig
        arrays[f"{split}_output"] = (orig + move + 0.1 * rng.normal(size=orig.shape)).astype(
            np.float32)
        arrays[f"{split}_labels"] = rng.integers(0, 3, size=points)
    np.savez(d / "embeddings.npz", **arrays)


ARTIFACTS = {"i2i": _i2i_artifacts, "gan": _gan_artifacts}


def write_artifacts(results, rel_dir: str, *, family: str = "i2i", seed: int = 0,
                    points: int = 24, dim: int = 16, shift: float = 0.0) -> None:
    """Fake artifacts: GAN samples, or image grids and embeddings whose forget outputs are
    moved away from their originals by `shift`."""
    d = Path(results) / rel_dir
    d.mkdir(parents=True, exist_ok=True)
    ARTIFACTS[family](d, np.random.default_rng(seed), points=points, dim=dim, shift=shift)


def demo_results(results, seeds=(0, 1)) -> list[str]:
    """Two sweeps with every table and figure: `demo-i2i` and `demo-gan`."""
    rng = np.random.default_rng(0)
    minutes = 0
    i2i = [("original", None, {}), ("retrain", None, {}), ("max_loss", 0.25, {}),
           ("noisy_label", None, {}), ("retain_label", None, {}),
           ("random_encoder", None, {}), ("l2l", 0.1, {}), ("l2l", 0.25, {}),
           ("l2l", 0.5, {}),
           ("l2l", 0.25, {"retain_mode": "proxy", "retain_fraction": 0.0,
                          "proxy_source": "digits", "proxy_size": 1.0}),
           ("l2l", 0.25, {"retain_mode": "fraction", "retain_fraction": 0.1})]
    forgets = {0: 0.0, 1: 0.0, 2: 0.6, 3: 0.5, 4: 0.4, 5: 0.1}
    for gi, gen in enumerate(("mae", "vqgan", "diffusion")):
        for mi, (method, alpha, extra) in enumerate(i2i):
            for seed in seeds:
                effect = forgets.get(mi, 0.3 + (alpha or 0))
                metrics = {}
                for split in ("retain", "forget"):
                    moved = effect if split == "forget" else 0.05 * effect
                    for m, base in (("fid", 30.0), ("kid", 0.02), ("is", 2.0), ("cosine", 0.99),
                                    ("psnr", 20.0), ("ssim", 0.8), ("mse_masked", 0.05),
                                    ("mia_auc", 0.6), ("retrain_distance", 0.1),
                                    ("forget_class_share", 0.3)):
                        up = m in ("fid", "kid", "mse_masked")
                        v = base * (1 + (moved if up else -0.2 * moved) + 0.03 * rng.normal())
                        metrics[(split, m)] = v + (gi if m == "fid" else 0)
                trial_id = f"t{gi}{mi:02d}{seed}-{gen}-{method}"
                art = f"artifacts/sweep_id=demo-i2i/{trial_id}"
                write_artifacts(results, art, seed=seed + 10 * mi, shift=effect * 3)
                minutes += 1
                write_trial(results, trial_rows(
                    method, seed, metrics, sweep="demo-i2i", generator=gen, alpha=alpha,
                    trial_id=trial_id, artifact_dir=art, minutes=minutes,
                    unlearn_seconds=5.0 + mi, **extra))
    write_trial(results, trial_rows("l2l", 9, {}, sweep="demo-i2i", status="error",
                                    trial_id="t-failed", error="RuntimeError: out of memory",
                                    minutes=minutes))
    gan = ["original", "retrain", "finetune_retain", "gradient_ascent", "cascade",
           "cascade_no_fake_label", "cascade_d_only"]
    for setting, forget_set, k in (("item", '{"random": 64, "seed": 0}', 64),
                                   ("class", "[3]", 1)):
        for mi, method in enumerate(gan):
            for seed in seeds:
                secs = 300.0 if method == "retrain" else (0.0 if method == "original"
                                                          else 2.0 + mi + rng.random())
                epochs = 20.0 if method == "retrain" else (0.0 if method == "original" else 1.0)
                metrics = {("all", "fid"): 20 + mi + rng.normal(), ("all", "is"): 2 + 0.1 * mi,
                           ("all", "forget_class_share"): 0.1 / (mi + 1),
                           ("all", "mia_auc"): 0.5 + 0.02 * mi,
                           ("all", "nn_distance"): 1 + 0.1 * mi,
                           ("all", "downstream_accuracy"): 0.8 - 0.01 * mi,
                           ("all", "epochs"): epochs, ("all", "samples_seen"): epochs * 6000}
                trial_id = f"g-{setting}-{method}-{seed}"
                art = f"artifacts/sweep_id=demo-gan/{trial_id}"
                write_artifacts(results, art, family="gan", seed=seed)
                minutes += 1
                write_trial(results, trial_rows(
                    method, seed, metrics, sweep="demo-gan", family="gan", generator="dcgan",
                    setting=setting, forget_set=forget_set, forget_k=k, trial_id=trial_id,
                    unlearn_seconds=secs, artifact_dir=art, minutes=minutes,
                    params=json.dumps({"rounds": 50}) if method.startswith("cascade") else "{}",
                    retain_set=None))
    return ["demo-i2i", "demo-gan"]


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "results-demo")
    print("\n".join(demo_results(out)))
