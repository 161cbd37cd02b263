"""A corpus of bad inputs to every command: specs, trial configs and command lines with syntax
errors, unknown names, wrong types, out-of-range values, contradictory settings, missing files
and unwritable output paths. Each is answered by exactly one line on stderr that starts with
`error:` and names the problem, a non-zero exit code (2), and nothing written anywhere.

How a case is checked: the case's input files go into a fresh directory that is also the
working directory (so default outputs such as `results/`, `ray_results/`, `mlflow.db` would
land there); every output flag points into it too. The whole tree is listed before and after:
it must be unchanged. The commands run in-process (`main(argv)`, the console scripts' own
function: a Python start per case would cost seconds); `test_console_scripts_answer_the_same`
runs a few as real processes. Work that must never start is replaced by a tripwire (the sweep
driver, the trial), so a bad input that slipped through fails its case at once instead of
starting Ray or training. tests/test_spec_errors.py has more spec cases for `l2l-sweep run`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from analysis.cli import main as analysis_main
from analysis.synthetic import trial_rows, write_trial
from l2l.cli import main as l2l_main
from sweeps.cli import main as sweep_main

BIN = Path(sys.executable).parent

SPEC = """\
name: bad-inputs
forget_set: {classes: [5, 7, 9]}
grid:
  method: [original, l2l]
  alpha: [0.25]
  seed: [0, 1]
"""
TRIAL = """\
method: l2l
forget_set: {classes: [5, 7, 9]}
alpha: 0.25
"""
GAN = """\
name: bad-gan
family: gan
method: cascade
forget_set: {classes: [7]}
grid:
  seed: [0]
"""
SEARCH = """\
name: bad-search
method: l2l
forget_set: {classes: [5, 7, 9]}
grid:
  seed: [0, 1]
search:
  num_samples: 2
  metric: {forget: {fid: 1.0}}
  space:
    alpha: {loguniform: [0.01, 1.0]}
  asha: {grace_period: 1, reduction_factor: 2}
"""


def _spec(text: str) -> dict[str, str]:
    return {"spec.yaml": text}


def _trial(text: str) -> dict[str, str]:
    return {"trial.yaml": text}


def C(case_id: str, command: str, argv: list[str], files, expected: str):
    """One case: the command (sweep, l2l, analysis), its arguments, the input files to create
    and the text its one error line must contain."""
    return pytest.param(command, argv, files, expected, id=case_id)


# id, command, argv, input files, the text its one error line must contain [, a known-bug
# marker]. Files map a relative path to its text (None: a directory; bytes: as bytes); a string
# names a set of result files (_make).
CASES = [
    # ---- l2l-sweep: the spec file, its syntax and shape
    C("spec yaml syntax", "sweep", ["validate", "spec.yaml"],
      _spec(SPEC + "grid: [unclosed\n"), "spec: YAML syntax error at line"),
    C("spec python tag", "sweep", ["run", "spec.yaml"],
      _spec("name: x\nforget_set: !!python/object/apply:os.system ['true']\n"),
      "could not determine a constructor for the tag"),
    C("spec is a list", "sweep", ["validate", "spec.yaml"], _spec("- name: x\n"),
      "spec: expected a mapping of fields at the top level"),
    C("spec empty", "sweep", ["run", "spec.yaml"], _spec(""),
      "spec: expected a mapping of fields at the top level"),
    C("spec missing", "sweep", ["run", "nope.yaml"], {}, "spec: file not found: nope.yaml"),
    C("spec missing (validate)", "sweep", ["validate", "nope.yaml"], {},
      "spec: file not found: nope.yaml"),
    C("spec is a directory", "sweep", ["validate", "specdir"], {"specdir": None},
      "spec: cannot read specdir"),
    # ---- unknown names
    C("unknown top-level key", "sweep", ["run", "spec.yaml"], _spec(SPEC + "optimiser: adam\n"),
      "optimiser: unknown field"),
    C("unknown method", "sweep", ["run", "spec.yaml"],
      _spec(SPEC.replace("[original, l2l]", "[original, forget_it]")),
      "grid.method[1]: unknown value 'forget_it'"),
    C("unknown generator", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "generator: {name: stylegan}\n"), "generator.name: unknown value 'stylegan'"),
    C("unknown generator size", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "generator: {name: mae, size: huge}\n"),
      "generator.size: unknown value 'huge'"),
    C("unknown dataset", "sweep", ["validate", "spec.yaml"], _spec(SPEC + "dataset: cifar10\n"),
      "dataset: unknown value 'cifar10'"),
    C("unknown task", "sweep", ["run", "spec.yaml"], _spec(SPEC + "task: {kind: superres}\n"),
      "task.kind: unknown value 'superres'"),
    C("unknown grid axis", "sweep", ["run", "spec.yaml"], _spec(SPEC + "  optimiser: [adam]\n"),
      "grid.optimiser: unknown axis"),
    # ---- wrong types
    C("wrong type", "sweep", ["run", "spec.yaml"], _spec(SPEC + "unlearn: {steps: many}\n"),
      "unlearn.steps: expected an integer"),
    C("wrong type in grid", "sweep", ["run", "spec.yaml"],
      _spec(SPEC.replace("[0.25]", "[0.25, high]")), "grid.alpha[1]: expected a number"),
    C("grid axis not a list", "sweep", ["run", "spec.yaml"],
      _spec(SPEC.replace("seed: [0, 1]", "seed: 0")), "grid.seed: expected a non-empty list"),
    C("resources not numbers", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "resources: {cpu: lots}\n"), "resources.cpu: expected a number >= 0"),
    # ---- out of range
    C("alpha negative", "sweep", ["run", "spec.yaml"], _spec(SPEC.replace("[0.25]", "[-1]")),
      "grid.alpha[0]: must be >= 0"),
    C("mask ratio above 1", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "task: {kind: center_inpaint, mask_ratio: 1.5}\n"),
      "task.mask_ratio: must be <= 1"),
    C("lr zero", "sweep", ["run", "spec.yaml"], _spec(SPEC + "unlearn: {lr: 0}\n"),
      "unlearn.lr: must be > 0"),
    C("retain fraction above 1", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "retain: {mode: fraction, fraction: 1.5}\n"), "retain.fraction: must be <= 1"),
    C("class out of range", "sweep", ["run", "spec.yaml"],
      _spec(SPEC.replace("[5, 7, 9]", "[5, 7, 10]")), "forget_set.classes[2]: must be <= 9"),
    C("zero epochs", "sweep", ["run", "spec.yaml"], _spec(SPEC + "pretrain: {epochs: 0}\n"),
      "pretrain.epochs: must be >= 1"),
    C("max_concurrent_trials zero", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "max_concurrent_trials: 0\n"),
      "max_concurrent_trials: expected an integer >= 1"),
    # ---- contradictory settings
    C("class forgotten and retained", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "retain: {classes: [0, 5]}\n"), "retain.classes: overlaps forget_set"),
    C("retain_label without retain images", "sweep", ["run", "spec.yaml"],
      _spec(SPEC.replace("[original, l2l]", "[retain_label]") + "retain: {mode: none}\n"),
      "retain.mode: 'none' gives no retain images, which retain_label needs"),
    C("forget every class", "sweep", ["run", "spec.yaml"],
      _spec(SPEC.replace("[5, 7, 9]", "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]")),
      "forget_set.classes: forgets every class"),
    C("field on the grid and at the top", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "seed: 3\n"), "grid.seed: also given at the top level"),
    C("asha on a grid", "sweep", ["run", "spec.yaml"],
      _spec(SEARCH.replace("  seed: [0, 1]", "  seed: [0, 1]\n  alpha: [0.1]")),
      "grid.alpha: a search takes only seed on its grid"),
    C("asha without a search", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "asha: {grace_period: 1}\n"), "asha: unknown field"),
    C("asha with one seed", "sweep", ["run", "spec.yaml"],
      _spec(SEARCH.replace("seed: [0, 1]", "seed: [0]")), "search.asha: needs at least 2 seeds"),
    C("inception without weights", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "eval: {features: inception}\n"),
      "eval.inception_weights: features 'inception' need a local weights file"),
    C("inception weights missing", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "eval: {features: inception, inception_weights: nope.pth}\n"),
      "eval.inception_weights: file not found"),
    C("image folder missing", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "dataset: image_folder\nimage_folder: {root: nowhere}\n"),
      "image_folder.root"),
    # ---- the GAN family
    C("gan generator of the other family", "sweep", ["run", "spec.yaml"],
      _spec(GAN + "generator: {name: mae}\n"), "generator.name: unknown value 'mae'"),
    C("gan fake target out of range", "sweep", ["run", "spec.yaml"],
      _spec(GAN + "cascade: {fake_target: 1.0}\n"), "cascade.fake_target"),
    C("gan item setting without items", "sweep", ["run", "spec.yaml"],
      _spec(GAN + "setting: item\n"), "forget_set"),
    C("gan with an i2i field", "sweep", ["run", "spec.yaml"],
      _spec(GAN + "retain: {mode: full}\n"), "retain: unknown field"),
    # ---- l2l-sweep run: command line and output paths
    C("results under a file", "sweep", ["run", "spec.yaml", "--results", "afile/results"],
      {**_spec(SPEC), "afile": ""}, "--results: afile/results is not a writable directory"),
    C("storage under a file", "sweep", ["run", "spec.yaml", "--storage", "afile/ray"],
      {**_spec(SPEC), "afile": ""}, "--storage: afile/ray is not a writable directory"),
    C("mlflow uri", "sweep", ["run", "spec.yaml", "--mlflow-uri", "mlflow.db"], _spec(SPEC),
      "--mlflow-uri: expected sqlite:///FILE"),
    C("sweep id with a slash", "sweep", ["run", "spec.yaml", "--sweep-id", "../x"], _spec(SPEC),
      "--sweep-id: must not contain '/'"),
    C("sweep id taken", "sweep", ["run", "spec.yaml", "--sweep-id", "taken"],
      {**_spec(SPEC), "ray_results/taken": None}, "--sweep-id: sweep taken already exists"),
    C("negative retries", "sweep", ["run", "spec.yaml", "--max-failures", "-1"], _spec(SPEC),
      "--max-failures: expected an integer >= 0"),
    C("retries not a number", "sweep", ["run", "spec.yaml", "--max-failures", "two"],
      _spec(SPEC), "argument --max-failures: invalid int value"),
    C("unknown device", "sweep", ["run", "spec.yaml", "--device", "tpu"], _spec(SPEC),
      "argument --device: invalid choice: 'tpu'"),
    C("unknown flag", "sweep", ["run", "spec.yaml", "--fast"], _spec(SPEC),
      "unrecognized arguments: --fast"),
    C("unknown command", "sweep", ["start", "spec.yaml"], _spec(SPEC),
      "argument COMMAND: invalid choice: 'start'"),
    C("no spec given", "sweep", ["run"], {}, "the following arguments are required: spec"),
    # ---- l2l-sweep resume
    C("resume unknown sweep", "sweep", ["resume", "nope", "--storage", "ray"], {"ray": None},
      "sweep: no sweep 'nope' in ray"),
    C("resume a directory that is no sweep", "sweep", ["resume", "bare"], {"bare": None},
      "bare has no sweep.json"),
    C("resume without Tune state", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": '{"spec": {}, "runtime": {}, "settings": {}}'},
      "holds no Tune state to restore"),
    C("resume with a corrupt sweep.json", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": "{not json", "ray/s1/tuner.pkl": ""}, "sweep.json is corrupt"),
    # ---- l2l trial
    C("trial config missing", "l2l", ["trial", "nope.yaml"], {}, "config: file not found"),
    C("trial yaml syntax", "l2l", ["trial", "trial.yaml"], _trial(TRIAL + "alpha: [\n"),
      "config: YAML syntax error"),
    C("trial python tag", "l2l", ["trial", "trial.yaml"],
      _trial("method: !!python/object/apply:os.system ['true']\n"), "config: YAML syntax error"),
    C("trial not a mapping", "l2l", ["trial", "trial.yaml"], _trial("- 1\n"),
      "config: expected a mapping of trial fields"),
    C("trial unknown field", "l2l", ["trial", "trial.yaml"], _trial(TRIAL + "optimiser: adam\n"),
      "optimiser: unknown field"),
    C("trial unknown method", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL.replace("method: l2l", "method: forget_it")),
      "method: unknown value 'forget_it'"),
    C("trial alpha negative", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL.replace("alpha: 0.25", "alpha: -1")), "alpha: must be >= 0"),
    C("trial wrong type", "l2l", ["trial", "trial.yaml"], _trial(TRIAL + "seed: zero\n"),
      "seed: expected an integer"),
    C("trial retain_label without retain", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL.replace("l2l", "retain_label") + "retain: {mode: none}\n"), "retain.mode"),
    C("trial clip without weights", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL + "eval: {features: clip}\n"),
      "eval.clip_weights: features 'clip' need a local weights file"),
    C("trial gan steps zero", "l2l", ["trial", "trial.yaml"],
      _trial("family: gan\nmethod: cascade\nforget_set: {classes: [7]}\n"
             "cascade: {d_steps: 0}\n"), "cascade.d_steps: must be >= 1"),
    C("trial json in a missing dir", "l2l", ["trial", "trial.yaml", "--json", "no/rows.json"],
      _trial(TRIAL), "--json: cannot write to"),
    C("trial json under a file", "l2l", ["trial", "trial.yaml", "--json", "afile/rows.json"],
      {**_trial(TRIAL), "afile": ""}, "--json: cannot write to"),
    C("trial artifacts under a file", "l2l", ["trial", "trial.yaml", "--artifacts", "afile/a"],
      {**_trial(TRIAL), "afile": ""}, "--artifacts: afile/a is not a writable directory"),
    C("trial cache dir under a file", "l2l", ["trial", "trial.yaml", "--cache-dir", "afile/c"],
      {**_trial(TRIAL), "afile": ""}, "--cache-dir: afile/c is not a writable directory"),
    C("trial unknown device", "l2l", ["trial", "trial.yaml", "--device", "tpu"], _trial(TRIAL),
      "argument --device: invalid choice"),
    C("trial unknown flag", "l2l", ["trial", "trial.yaml", "--fast"], _trial(TRIAL),
      "unrecognized arguments"),
    # ---- l2l-analysis
    C("analysis results missing (table)", "analysis", ["table", "--results", "nothing"], {},
      "no Parquet result files under nothing"),
    C("analysis results missing (tables)", "analysis", ["tables"], {},
      "no Parquet result files under results"),
    C("analysis results missing (figures)", "analysis", ["figures", "--results", "nothing"], {},
      "no Parquet result files under nothing"),
    C("analysis results missing (report)", "analysis", ["report", "--results", "nothing"], {},
      "no Parquet result files under nothing"),
    C("analysis unknown sweep", "analysis", ["table", "--sweep-id", "zz"], "RESULTS",
      "unknown sweep id 'zz'; known: s-a"),
    C("analysis only corrupt files", "analysis", ["table", "--results", "bad"],
      {"bad/sweep_id=x/t.parquet": b"PAR1 not parquet"}, "no readable result rows under bad"),
    C("analysis only failed trials", "analysis", ["tables", "--results", "failed"], "FAILED",
      "sweep 's-a' has no successful trial rows"),
    C("analysis output under a file", "analysis", ["tables", "--out", "afile/tables"],
      "RESULTS+FILE", "cannot write afile/tables"),
    C("analysis report missing", "analysis", ["check-report", "nope.html"], {},
      "no such report: nope.html"),
    C("analysis unknown format", "analysis", ["tables", "--format", "pdf"], "RESULTS",
      "unknown format 'pdf'"),
    C("analysis bad number", "analysis", ["figures", "--tsne-max", "many"], "RESULTS",
      "invalid int value"),
]

MAINS = {"sweep": sweep_main, "l2l": l2l_main, "analysis": analysis_main}
SCRIPTS = {"sweep": "l2l-sweep", "l2l": "l2l", "analysis": "l2l-analysis"}


def _make(d: Path, files) -> None:
    if isinstance(files, str):  # a named set of result files
        rows = {("forget", "fid"): 100.0, ("retain", "fid"): 10.0}
        if files.startswith("RESULTS"):
            write_trial(d / "results", trial_rows("l2l", 0, rows, alpha=0.5))
            write_trial(d / "results", trial_rows("original", 0, rows))
        if files == "FAILED":
            write_trial(d / "failed", trial_rows("l2l", 0, {}, status="error"))
        if files.endswith("+FILE"):
            (d / "afile").write_text("")
        return
    for rel, text in files.items():
        p = d / rel
        if text is None:
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text) if isinstance(text, bytes) else p.write_text(text)


def _tree(d: Path) -> dict[str, tuple[int, int]]:
    """Every path under d with its size and modification time: any write shows."""
    out = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(root) / name
            st = p.lstat()
            out[str(p.relative_to(d))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


def _tripwires(monkeypatch) -> None:
    """Replace the work a bad input must never reach: the sweep driver (Ray) and the trial."""
    def accepted(*a, **k):
        raise AssertionError("the bad input was accepted: the sweep or trial would have started")

    fake = types.ModuleType("sweeps.driver")
    fake.run_sweep = accepted
    monkeypatch.setitem(sys.modules, "sweeps.driver", fake)
    import l2l.experiment

    monkeypatch.setattr(l2l.experiment, "run", accepted)


@pytest.mark.parametrize("command, argv, files, expected", CASES)
def test_bad_input_is_refused_with_one_line_and_nothing_written(command, argv, files, expected,
                                                                 tmp_path, monkeypatch, capsys):
    _make(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    for var in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "L2L_INCEPTION_WEIGHTS", "L2L_CLIP_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    if argv[0] != "resume":  # resume cases stop before the driver is imported: keep the real one
        _tripwires(monkeypatch)
    before = _tree(tmp_path)
    try:
        rc = MAINS[command](list(argv))
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, f"exit code {rc}; stderr: {err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert expected in lines[0], lines[0]
    assert _tree(tmp_path) == before, "the command wrote files"


BY_ID = {p.id: p.values for p in CASES}


def test_the_corpus_is_large_and_covers_every_command():
    per_command = {}
    for command, *_ in BY_ID.values():
        per_command[command] = per_command.get(command, 0) + 1
    assert len(BY_ID) == len(CASES) >= 30  # ids are unique
    assert set(per_command) == {"sweep", "l2l", "analysis"}, per_command


@pytest.mark.parametrize("case", ["unknown method", "spec missing", "resume unknown sweep",
                                  "trial unknown field", "analysis results missing (table)"])
def test_console_scripts_answer_the_same(case, tmp_path):
    """The installed entry points (what a user types), as real processes: the same one line,
    the same exit code, nothing written."""
    command, argv, files, expected = BY_ID[case]
    _make(tmp_path, files)
    before = _tree(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    r = subprocess.run([str(BIN / SCRIPTS[command]), *argv], cwd=tmp_path, env=env, text=True,
                       capture_output=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert _tree(tmp_path) == before
