"""`l2l-sweep`: validate and run sweep specs.

    l2l-sweep run sweeps/specs/quickstart.yaml        # local Ray, sqlite MLflow, ./results
    l2l-sweep validate sweeps/specs/quickstart.yaml   # check a spec; starts nothing
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from sweeps.spec import SpecError, SweepSpec, load_spec


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="l2l-sweep",
        description="Run unlearning sweeps from a YAML spec on Ray Tune. Each trial writes its "
                    "metric rows to <results>/sweep_id=<id>/<trial>.parquet and an MLflow child "
                    "run. A spec is validated completely before Ray starts.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check a spec and list its trials; starts nothing")
    v.add_argument("spec", help="path to a sweep spec (YAML)")

    r = sub.add_parser("run", help="run every trial of a spec on Ray Tune")
    r.add_argument("spec", help="path to a sweep spec (YAML)")
    r.add_argument("--results", default="results", type=Path,
                   help="directory of the Parquet results (default: %(default)s)")
    r.add_argument("--mlflow-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else a sqlite file "
                        "mlflow.db in the current directory); 'none' disables MLflow")
    r.add_argument("--experiment", help="MLflow experiment (default: the spec's name)")
    r.add_argument("--storage", default="ray_results", type=Path,
                   help="Tune experiment directory (default: %(default)s)")
    r.add_argument("--sweep-id", help="sweep id (default: <spec name>-<UTC time>)")
    r.add_argument("--cache-dir", type=Path,
                   help="model cache shared by trials (default: $L2L_CACHE_DIR or ~/.cache/l2l)")
    r.add_argument("--data-root", type=Path,
                   help="Fashion-MNIST files (default: $L2L_DATA_DIR, then the Debian package, "
                        "then a download)")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="torch device of every trial (default: the spec's, else auto)")
    r.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    return p


def _runtime(args) -> dict:
    """Trial fields that depend on the machine, not on the experiment."""
    from l2l.cache import default_cache_dir

    rt = {"cache_dir": str((args.cache_dir or default_cache_dir()).resolve())}
    if args.data_root:
        rt["data_root"] = str(args.data_root.resolve())
    if args.device:
        rt["device"] = args.device
    return rt


def _describe(spec: SweepSpec) -> str:
    lines = [f"spec {spec.name}: {len(spec.trials)} trials"]
    for t in spec.trials:
        c = t.config
        res = spec.resources_for(c.generator.name)
        alpha = f" alpha={c.alpha:g}" if c.alpha is not None else ""
        lines.append(f"  {t.trial_id}: {c.generator.name}/{c.generator.size} {c.method}{alpha} "
                     f"forget={list(c.forget_classes)} seed={c.seed} "
                     f"(cpu {res['cpu']:g}, gpu {res['gpu']:g})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            print(_describe(load_spec(args.spec)))
            return 0
        spec = load_spec(args.spec, _runtime(args))
        sweep_id = args.sweep_id or f"{spec.name}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
        if "/" in sweep_id or sweep_id.startswith("."):
            raise SpecError(f"--sweep-id: must not contain '/' or start with '.', got {sweep_id!r}")
        _check_writable(args.results, "--results")
        _check_writable(args.storage, "--storage")
    except SpecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    # Imported only now: validation must not pay for (or start) Ray.
    from sweeps import tracking
    from sweeps.runner import SweepSettings, code_version, run_sweep

    uri = args.mlflow_uri
    if uri is None:
        uri = tracking.default_tracking_uri(Path.cwd())
    elif uri.lower() == "none":
        uri = None
    local_store = uri is not None and uri.startswith("sqlite:")
    settings = SweepSettings(
        results_dir=args.results, storage_dir=args.storage, mlflow_uri=uri,
        artifact_dir=(Path.cwd() / "mlartifacts") if local_store else None,
        sweep_id=sweep_id, code_version=code_version(), experiment=args.experiment or spec.name)
    failed = run_sweep(spec, settings, address=args.address)
    return 1 if failed else 0


def _check_writable(path: Path, flag: str) -> None:
    """Refuse an output path we could not write, before any work (and without creating it)."""
    p = path.resolve()
    while not p.exists():
        p = p.parent
    if not p.is_dir() or not os.access(p, os.W_OK):
        raise SpecError(f"{flag}: {path} is not a writable directory")


if __name__ == "__main__":
    sys.exit(main())
