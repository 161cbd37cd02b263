"""`l2l-sweep`: validate, run and resume sweep specs.

    l2l-sweep validate sweeps/specs/quickstart.yaml          # check a spec; starts nothing
    l2l-sweep run sweeps/specs/quickstart.yaml --dry-run     # trials, resources, cost
    l2l-sweep run sweeps/specs/quickstart.yaml               # local Ray, sqlite MLflow, ./results
    l2l-sweep resume quickstart-20261123T101500Z             # continue an interrupted sweep

Every bad spec or argument is refused before any work with one line,
`error: <field>: <what is allowed>`, and exit code 2. `run` and `resume` exit with 0 when every
trial finished, 1 when some failed, 130 when the sweep was interrupted (resume it).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import re
import sys
from pathlib import Path

from contract.inputs import one_line
from pyarrow.fs import FileType

from contract.storage import Location, StorageError, check_writable, locate, probe
from l2l.argparsing import OneLineParser, location_arg, name_arg, path_arg
from sweeps.spec import MAX_TRIALS, SpecError, SweepSpec, load_spec

EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="l2l-sweep",
        description="Run unlearning sweeps from a YAML spec on Ray Tune. Each trial writes its "
                    "metric rows to <results>/sweep_id=<id>/<trial>.parquet and an MLflow child "
                    "run. A spec is validated completely before Ray starts.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=OneLineParser)

    v = sub.add_parser("validate", help="check a spec and list its trials; starts nothing")
    v.add_argument("spec", help="path to a sweep spec (YAML)")
    v.add_argument("--max-trials", type=int, metavar="N", default=MAX_TRIALS,
                   help="refuse a spec of more trials (default: %(default)s)")

    r = sub.add_parser("run", help="run every trial of a spec on Ray Tune")
    r.add_argument("spec", help="path to a sweep spec (YAML)")
    r.add_argument("--results", default="results", type=location_arg,
                   help="directory of the Parquet results: a path or a URI such as "
                        "s3://bucket/results (default: %(default)s)")
    r.add_argument("--mlflow-uri", default=os.environ.get("MLFLOW_TRACKING_URI"),
                   help="MLflow tracking URI: sqlite:///FILE or http://HOST:PORT of an mlflow "
                        "server (default: $MLFLOW_TRACKING_URI, else a sqlite file mlflow.db in "
                        "the current directory); 'none' disables MLflow")
    r.add_argument("--experiment", type=name_arg,
                   help="MLflow experiment (default: the spec's name)")
    r.add_argument("--storage", default="ray_results", type=location_arg,
                   help="Tune experiment directory, where `resume` finds the sweep: a path or "
                        "a URI (default: %(default)s; shared or object storage on a cluster)")
    r.add_argument("--sweep-id", help="sweep id (default: <spec name>-<UTC time>); the id of a "
                        "sweep in --storage resumes it; of one whose Tune state is gone but "
                        "whose Parquet files are in --results (another machine, a new disk), "
                        "runs only the grid trials without a finished file")
    r.add_argument("--cache-dir", type=location_arg,
                   help="model cache shared by trials: a path or a URI (default: "
                        "$L2L_CACHE_DIR or ~/.cache/l2l)")
    r.add_argument("--data-root", type=path_arg,
                   help="Fashion-MNIST files (default: $L2L_DATA_DIR, then the Debian package, "
                        "then a download)")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="torch device of every trial (default: the spec's, else auto)")
    r.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    r.add_argument("--max-failures", type=int, metavar="N",
                   help="retries of a failed trial (default: the spec's max_failures, else 0)")
    r.add_argument("--max-trials", type=int, metavar="N", default=MAX_TRIALS,
                   help="refuse a spec of more trials than this, counted before any is built "
                        "(default: %(default)s; raise it for a larger sweep on purpose)")
    r.add_argument("--save-models", action="store_true",
                   help="keep every unlearned model in <results>-models/ (safetensors, named "
                        "by their SHA-256; the rows' `model` column points at it) for "
                        "`l2l eval`")
    r.add_argument("--dry-run", action="store_true",
                   help="print the trials, their resources and an estimated cost; start and "
                        "write nothing")

    s = sub.add_parser("resume", help="continue an interrupted sweep where it stopped")
    s.add_argument("sweep", help="a sweep id (looked up under --storage) or a Tune experiment "
                                 "directory (a path or a URI)")
    s.add_argument("--storage", default="ray_results", type=location_arg,
                   help="where the sweep's Tune experiment lives (default: %(default)s)")
    s.add_argument("--address",
                   help="Ray cluster address (default: $RAY_ADDRESS, else the address the sweep "
                        "was started with, else a local Ray)")
    return p


def _runtime(args) -> dict:
    """Trial fields that depend on the machine, not on the experiment."""
    if args.cache_dir:
        cache = args.cache_dir
    else:
        from l2l.cache import default_cache_dir  # (imports torch: only when needed)

        cache = locate(default_cache_dir(), "$L2L_CACHE_DIR")
    rt = {"cache_dir": cache.uri}
    if args.data_root:
        rt["data_root"] = str(args.data_root.resolve())
    if args.device:
        rt["device"] = args.device
    return rt


def _check_data(spec: SweepSpec) -> None:
    """Every data root the trials need holds its files, before Ray starts: a sweep whose
    trials would all fail on a missing MNIST copy stops here, with the files named."""
    from l2l.errors import DataNotFoundError

    seen = set()
    for t in spec.trials:
        key = (t.config.family, t.config.dataset, t.config.data_root)
        if key in seen:
            continue
        seen.add(key)
        try:
            t.config.check_data()
        except DataNotFoundError as e:
            raise SpecError(f"data_root: {e} (give --data-root)") from None


def describe(spec: SweepSpec) -> str:
    if spec.search:
        s = spec.search
        c = spec.trials[0].config
        res = spec.resources_for(c.generator.name)
        lines = [f"spec {spec.name}: search ({s.algorithm}), {s.num_samples} points x "
                 f"{len(s.seeds)} seeds = at most {s.num_samples * len(s.seeds)} trials",
                 f"  objective: {s.objective_text()}",
                 f"  space: {'; '.join(p.describe() for p in s.space)}",
                 f"  seeds: {list(s.seeds)}; at most {s.max_concurrent} points at a time"
                 + (f"; ASHA over seeds (grace period {s.asha['grace_period']}, reduction "
                    f"factor {s.asha['reduction_factor']:g})" if s.asha else "; no early stopping"),
                 f"  a point at the space's low ends: {c.describe()} "
                 f"(cpu {res['cpu']:g}, gpu {res['gpu']:g})"]
        return "\n".join(lines)
    lines = [f"spec {spec.name}: {len(spec.trials)} trials"]
    for t in spec.trials:
        res = spec.resources_for(t.config.generator.name)
        lines.append(f"  {t.trial_id}: {t.config.describe()} "
                     f"(cpu {res['cpu']:g}, gpu {res['gpu']:g})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "resume":
            return _resume(args)
        if args.max_trials < 1:
            raise SpecError(f"--max-trials: expected an integer >= 1, got {args.max_trials}")
        if args.command == "validate":
            print(describe(load_spec(args.spec, max_trials=args.max_trials)))
            return 0
        # A dry run leaves the cache out: it does not change what a trial is.
        runtime = {} if args.dry_run else _runtime(args)
        spec = load_spec(args.spec, runtime, max_trials=args.max_trials)
        if args.max_failures is not None:
            if args.max_failures < 0:
                raise SpecError("--max-failures: expected an integer >= 0, "
                                f"got {args.max_failures}")
            spec = dataclasses.replace(spec, max_failures=args.max_failures)
        if args.dry_run:
            from sweeps.plan import dry_run

            print(dry_run(spec, args.results, args.address))
            return 0
        if args.sweep_id is None:
            sweep_id = f"{spec.name}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
        elif not SWEEP_ID_RE.match(args.sweep_id) or args.sweep_id.startswith("."):
            raise SpecError(f"--sweep-id: letters, digits, '_', '.', '-' (1 to 128, not "
                            f"starting with '.'), got {args.sweep_id!r}")
        else:
            sweep_id = args.sweep_id
        for flag, loc in (("--results", args.results), ("--storage", args.storage),
                          ("--cache-dir", args.cache_dir)):
            if loc is not None:
                _check_writable(loc, flag)
        if not args.address:  # a local Ray gets this machine's CPUs; a cluster is checked
            from sweeps.plan import check_fits, local_gpus  # by the driver once connected

            try:
                check_fits(spec.resources, os.cpu_count() or 1, local_gpus(), "this machine")
            except ValueError as e:
                raise SpecError(str(e)) from None
        _check_data(spec)
        existing = args.storage / sweep_id
        resuming = _exists(existing, "--storage")
        if resuming:
            _check_same_sweep(existing, spec)
        uri = _mlflow_uri(args.mlflow_uri)
    except SpecError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    if resuming:  # a retried job, or the same command again: continue the sweep
        print(f"sweep {sweep_id} exists in {args.storage} with this spec: resuming it",
              flush=True)
        return _continue(existing, args.address)
    kept: tuple[str, ...] = ()
    ready: frozenset[str] = frozenset()
    if args.sweep_id is not None and not spec.search:
        todo = _without_finished(spec, args.results, sweep_id)
        if not todo.trials:
            return 0
        left = {t.trial_id for t in todo.trials}
        kept = tuple(t.trial_id for t in spec.trials if t.trial_id not in left)
        from sweeps.plan import build_estimates

        ready = frozenset(m for ms in build_estimates(
            spec, [t for t in spec.trials if t.trial_id not in left]).values() for m in ms)
        spec = todo

    # Imported only now: validation must not pay for (or start) Ray.
    from sweeps.driver import run_sweep
    from sweeps.sweepfile import SweepSettings, code_version

    local_store = uri is not None and uri.startswith("sqlite:")
    settings = SweepSettings(
        results_dir=args.results.uri, storage_dir=args.storage.uri, mlflow_uri=uri,
        artifact_dir=(Path.cwd() / "mlartifacts") if local_store else None,
        sweep_id=sweep_id, code_version=code_version(), experiment=args.experiment or spec.name,
        address=args.address, save_models=args.save_models)
    from sweeps.plan import ResourceError

    try:
        failed = run_sweep(spec, settings, runtime=runtime,
                           spec_path=str(Path(args.spec).resolve()), kept_trials=kept,
                           ready_models=ready)
    except ResourceError as e:  # the cluster is smaller than a trial: nothing was started
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return EXIT_INTERRUPTED if failed < 0 else (1 if failed else 0)


SWEEP_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}\Z")  # a directory and partition name


def _mlflow_uri(uri: str | None) -> str | None:
    if uri is None:
        return f"sqlite:///{(Path.cwd() / 'mlflow.db').resolve()}"
    if uri.lower() == "none":
        return None
    if not uri.startswith(("sqlite:///", "http://", "https://", "postgresql", "mysql",
                           "databricks", "file:")):
        raise SpecError(f"--mlflow-uri: expected sqlite:///FILE, http(s)://HOST:PORT, a database "
                        f"URI or none, got {uri!r}")
    return uri


def _resume(args) -> int:
    if not args.sweep.strip():
        raise SpecError("sweep: must not be empty; give a sweep id or a Tune experiment "
                        "directory")
    try:
        given = locate(args.sweep, "sweep")
    except StorageError as e:
        raise SpecError(str(e)) from None
    by_id = args.storage / args.sweep
    exp_dir = (by_id if "/" not in args.sweep and _is_dir(by_id, "--storage") else given)
    if not _is_dir(exp_dir, "sweep"):
        raise SpecError(f"sweep: no sweep {args.sweep!r} in {args.storage} (give a sweep id and "
                        "its --storage, or the Tune experiment directory)")
    if not (exp_dir / "sweep.json").exists():
        raise SpecError(f"sweep: {exp_dir} has no sweep.json; it was not started by l2l-sweep")
    from sweeps.sweepfile import SweepFileError, read_sweep_file

    try:  # the whole record is checked before Ray starts
        read_sweep_file(exp_dir)
    except SweepFileError as e:
        raise SpecError(f"sweep: {exp_dir / 'sweep.json'} is corrupt ({e}); it cannot be "
                        "resumed") from None
    except SpecError as e:
        raise SpecError(f"sweep: the spec recorded in {exp_dir / 'sweep.json'} does not "
                        f"validate with this version: {e}") from None
    if not _can_restore(exp_dir):
        raise SpecError(f"sweep: {exp_dir} holds no Tune state to restore (it stopped before "
                        "Tune saved any); start it again with `l2l-sweep run`")
    return _continue(exp_dir, args.address)


def _can_restore(exp_dir: Location) -> bool:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from ray import tune

    return tune.Tuner.can_restore(exp_dir.path,
                                  storage_filesystem=None if exp_dir.is_local else exp_dir.fs)


def _exists(loc: Location, flag: str) -> bool:
    try:  # an object store that cannot be reached, or does not answer: one line
        return probe(loc, flag) != FileType.NotFound
    except StorageError as e:
        raise SpecError(str(e)) from None


def _is_dir(loc: Location, flag: str) -> bool:
    try:
        return probe(loc, flag) == FileType.Directory
    except StorageError as e:
        raise SpecError(str(e)) from None


def _continue(exp_dir: Location, address: str | None) -> int:
    """Resumes a checked sweep; a cluster too small for its trials is one error line."""
    from sweeps.driver import resume_sweep
    from sweeps.plan import ResourceError

    try:
        failed = resume_sweep(exp_dir, address=address)
    except ResourceError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    return EXIT_INTERRUPTED if failed < 0 else (1 if failed else 0)


def _without_finished(spec: SweepSpec, results: Location, sweep_id: str) -> SweepSpec:
    """The spec less the grid trials that already have a finished file in `results` (a sweep
    carried on from another machine's Parquet files), saying how many it keeps."""
    from sweeps.finished import unfinished

    todo = unfinished(results, sweep_id, spec.trials)
    kept = len(spec.trials) - len(todo)
    if kept:
        print(f"sweep {sweep_id}: {kept} of {len(spec.trials)} trials already have finished "
              f"results in {results} (kept); "
              + (f"running the other {len(todo)}" if todo else "nothing to run"), flush=True)
    return dataclasses.replace(spec, trials=todo)


def _check_same_sweep(exp_dir: Location, spec: SweepSpec) -> None:
    """`run` with the id of an existing sweep resumes it (a scheduler's retry runs the same
    command again) when that sweep was started from this spec and Tune can restore it; it
    refuses, saying why, otherwise."""
    from sweeps.sweepfile import SweepFileError, read_sweep_file

    sid = exp_dir.name
    hint = f"resume it as it was with `l2l-sweep resume {sid}`, or pick another --sweep-id"
    if not (exp_dir / "sweep.json").exists():
        raise SpecError(f"--sweep-id: {exp_dir} already exists and is not a sweep (no "
                        "sweep.json); pick another id")
    try:
        rec = read_sweep_file(exp_dir)
    except (SweepFileError, SpecError) as e:
        raise SpecError(f"--sweep-id: sweep {sid} exists but its sweep.json cannot be "
                        f"resumed ({e}); pick another id") from None
    if rec.spec.source != spec.source:
        differ = sorted(k for k in set(rec.spec.source) | set(spec.source)
                        if rec.spec.source.get(k) != spec.source.get(k))
        raise SpecError(f"--sweep-id: sweep {sid} exists and was started from another spec "
                        f"({', '.join(differ)} differ); {hint}")
    if not _can_restore(exp_dir):
        raise SpecError(f"--sweep-id: sweep {sid} exists but holds no Tune state to restore "
                        "(it stopped before Tune saved any); pick another id")


def _check_writable(loc: Location, flag: str) -> None:
    """Refuse an output location we could not write, before any work (and without creating
    it): a local directory that is not writable, a bucket that does not exist or cannot be
    reached."""
    try:
        check_writable(loc, flag)
    except StorageError as e:
        raise SpecError(str(e)) from None


if __name__ == "__main__":
    sys.exit(main())
