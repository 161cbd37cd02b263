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

import contextlib
import re
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import yaml

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


SETTINGS = {"results_dir": "results", "storage_dir": "ray", "mlflow_uri": None,
            "artifact_dir": None, "sweep_id": "s1", "code_version": "abc", "experiment": "x"}


def _record(**over) -> str:
    """A sweep.json as `l2l-sweep run` writes it, with fields replaced (None: left out)."""
    rec = {"format": 2, "identity_version": 2, "spec": yaml.safe_load(SPEC), "runtime": {},
           "settings": SETTINGS, **over}
    return json.dumps({k: v for k, v in rec.items() if v is not None})


def _laughs(levels: int = 9, anchor_at: str = "") -> str:
    """A "billion laughs" YAML block: each level lists the previous one ten times, so the
    last expands to 10^levels values while the text stays a few hundred bytes."""
    lines = ["l0: &l0 [ha, ha, ha, ha, ha, ha, ha, ha, ha, ha]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(f"{anchor_at}{ln}" for ln in lines) + "\n"


def FIFO(path: Path) -> None:
    os.mkfifo(path)


def DEVICE(path: Path) -> None:
    path.symlink_to("/dev/zero")


def BIG(path: Path) -> None:  # 2 MiB of comments after a valid spec
    path.write_text(SPEC + ("# padding " * 100 + "\n") * 2100)


def UNREADABLE(path: Path) -> None:
    path.write_text(SPEC)
    path.chmod(0)


AS_ROOT = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                             reason="root reads a file of mode 000")


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
      "task.mask_ratio: must be < 1"),
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
      "--sweep-id: letters, digits, '_', '.', '-'"),
    C("sweep id taken", "sweep", ["run", "spec.yaml", "--sweep-id", "taken"],
      {**_spec(SPEC), "ray_results/taken": None},
      "--sweep-id: ray_results/taken already exists and is not a sweep"),
    C("sweep id of a sweep of another spec", "sweep", ["run", "spec.yaml", "--sweep-id", "s1",
                                                       "--storage", "ray"],
      {**_spec(SPEC.replace("[0.25]", "[0.5]")), "ray/s1/sweep.json": _record()},
      "--sweep-id: sweep s1 exists and was started from another spec (grid differ)"),
    C("sweep id of a sweep without Tune state", "sweep",
      ["run", "spec.yaml", "--sweep-id", "s1", "--storage", "ray"],
      {**_spec(SPEC), "ray/s1/sweep.json": _record()},
      "--sweep-id: sweep s1 exists but holds no Tune state to restore"),
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
      {"ray/s1/sweep.json": _record()}, "holds no Tune state to restore"),
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
    # ==== the classes of hostile input (each: one line, exit 2, nothing written, seconds)
    # ---- resource exhaustion through the spec
    C("yaml aliases expanding exponentially", "sweep", ["validate", "spec.yaml"],
      _spec(_laughs() + SPEC), "spec: expands to more than 100,000 values"),
    C("yaml aliases expanding deep inside", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "description:\n" + _laughs(anchor_at="  ")), "spec: expands to more than"),
    C("yaml aliases in a trial config", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL + _laughs()), "config: expands to more than"),
    C("spec file too large", "sweep", ["run", "spec.yaml"], {"spec.yaml": BIG},
      "spec: spec.yaml is 2,"),
    C("spec nested very deeply", "sweep", ["run", "spec.yaml"],
      _spec("name: x\ndescription: " + "[" * 5000 + "]" * 5000 + "\n"),
      "spec: nested more than 64 levels deep"),
    C("spec nested deeply in mappings", "sweep", ["run", "spec.yaml"],
      _spec("name: x\ndescription: " + "{a: " * 200 + "1" + "}" * 200 + "\n"),
      "spec: nested more than 64 levels deep"),
    C("grid astronomically large", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "".join(f"  {ax}: [{', '.join(str(i + 1) for i in range(40))}]\n"
                           for ax in ("unlearn.steps", "pretrain.seed", "eval.seed",
                                      "unlearn.batch_size", "pretrain.epochs", "classifier.seed",
                                      "eval.images_per_class", "unlearn.images_per_class"))),
      "grid: about 10^13 trials (variants x the grid's axes); at most 10,000 unless --max-trials"),
    C("grid over the cap", "sweep", ["validate", "spec.yaml"],
      _spec(SPEC.replace("seed: [0, 1]", f"seed: {list(range(6000))}")),
      "grid: 12,000 trials"),
    C("search astronomically large", "sweep", ["run", "spec.yaml"],
      _spec(SEARCH.replace("num_samples: 2", "num_samples: 10000000000000")),
      "search.num_samples: about 10^13 trials (points x seeds)"),
    C("max trials not positive", "sweep", ["run", "spec.yaml", "--max-trials", "0"], _spec(SPEC),
      "--max-trials: expected an integer >= 1"),
    C("megabyte value echoed", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "name2: 1\n".replace("name2: 1", "generator: {name: " + "x" * 500_000 + "}")),
      "generator.name: unknown value 'xxxx"),
    C("megabyte key echoed", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL + "y" * 300_000 + ": 1\n"), "config: YAML syntax error"),
    C("long key echoed", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL + "? " + "y" * 300_000 + "\n: 1\n"), "unknown field"),
    # ---- files that are not what they claim
    C("spec binary", "sweep", ["run", "spec.yaml"],
      {"spec.yaml": b"\x7fELF\x02\x01\x01\x00\x00\x00name: x\n"}, "spec: spec.yaml is binary"),
    C("spec not utf-8", "sweep", ["run", "spec.yaml"],
      {"spec.yaml": SPEC.encode() + b"description: caf\xe9\n"},
      "spec: spec.yaml is not UTF-8 text (byte"),
    C("spec is a fifo", "sweep", ["run", "spec.yaml"], {"spec.yaml": FIFO},
      "spec: cannot read spec.yaml: not a regular file"),
    C("spec is a device", "sweep", ["validate", "spec.yaml"], {"spec.yaml": DEVICE},
      "spec: cannot read spec.yaml: not a regular file"),
    pytest.param("sweep", ["run", "spec.yaml"], {"spec.yaml": UNREADABLE},
                 "spec: cannot read spec.yaml: Permission denied", id="spec unreadable",
                 marks=AS_ROOT),
    C("trial config binary", "l2l", ["trial", "trial.yaml"],
      {"trial.yaml": b"\x00\x01\x02method: l2l\n"}, "config: trial.yaml is binary"),
    C("trial config not utf-8", "l2l", ["trial", "trial.yaml"],
      {"trial.yaml": b"method: l2l\xff\n"}, "config: trial.yaml is not UTF-8 text"),
    C("trial config is a fifo", "l2l", ["trial", "trial.yaml"], {"trial.yaml": FIFO},
      "config: cannot read trial.yaml: not a regular file"),
    C("trial config is a directory", "l2l", ["trial", "trial.yaml"], {"trial.yaml": None},
      "config: cannot read trial.yaml: it is a directory"),
    C("trial config empty", "l2l", ["trial", "trial.yaml"], {"trial.yaml": ""},
      "config: expected a mapping of trial fields"),
    C("weights file empty", "sweep", ["run", "spec.yaml"],
      {**_spec(SPEC + "eval: {features: inception, inception_weights: w.pth}\n"), "w.pth": ""},
      "eval.inception_weights: w.pth is empty"),
    C("weights file is a directory", "l2l", ["trial", "trial.yaml"],
      {**_trial(TRIAL + "eval: {features: clip, clip_weights: wdir}\n"), "wdir": None},
      "eval.clip_weights: wdir is not a regular file"),
    C("results is a file", "sweep", ["run", "spec.yaml", "--results", "afile"],
      {**_spec(SPEC), "afile": ""}, "--results: afile is not a writable directory"),
    C("storage is a file", "sweep", ["run", "spec.yaml", "--storage", "afile"],
      {**_spec(SPEC), "afile": ""}, "--storage: afile is not a writable directory"),
    C("trial artifacts is a file", "l2l", ["trial", "trial.yaml", "--artifacts", "afile"],
      {**_trial(TRIAL), "afile": ""}, "--artifacts: afile is not a writable directory"),
    C("analysis out is a file", "analysis", ["tables", "--out", "afile"], "RESULTS+FILE",
      "cannot write afile"),
    C("analysis report out is a file", "analysis", ["report", "--out", "afile"],
      "RESULTS+FILE", "cannot write afile"),
    C("claims file binary", "analysis", ["claims", "--claims", "c.yaml"],
      {"c.yaml": b"\x00\x00- id: x\n", **{}}, "c.yaml is binary"),
    C("claims file is a fifo", "analysis", ["claims", "--claims", "c.yaml"], {"c.yaml": FIFO},
      "not a regular file"),
    # ---- numbers that are not numbers
    C("alpha NaN", "sweep", ["run", "spec.yaml"], _spec(SPEC.replace("[0.25]", "[.nan]")),
      "grid.alpha[0]: expected a finite number"),
    C("lr infinite", "sweep", ["run", "spec.yaml"], _spec(SPEC + "unlearn: {lr: .inf}\n"),
      "unlearn.lr: expected a finite number"),
    C("resources cpu NaN", "sweep", ["run", "spec.yaml"], _spec(SPEC + "resources: {cpu: .nan}\n"),
      "resources.cpu: expected a finite number, got nan"),
    C("resources gpu infinite", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "resources: {gpu: .inf}\n"), "resources.gpu"),
    C("resources more CPUs than the machine", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "resources: {cpu: 4096}\n"), "resources.default: asks for 4096 CPUs a trial"),
    C("search weight NaN", "sweep", ["run", "spec.yaml"],
      _spec(SEARCH.replace("{fid: 1.0}", "{fid: .nan}")), "search.metric.forget.fid"),
    C("asha grace infinite", "sweep", ["run", "spec.yaml"],
      _spec(SEARCH.replace("grace_period: 1", "grace_period: .inf")), "search.asha.grace_period"),
    C("seed beyond 64 bits", "sweep", ["run", "spec.yaml"],
      _spec(SPEC.replace("seed: [0, 1]", "seed: [0, 36893488147419103232]")), "grid.seed[1]"),
    C("trial seed beyond 64 bits", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL + "seed: 36893488147419103232\n"), "seed: 36893488147419103232 is beyond 64"),
    C("zero unlearning steps", "sweep", ["run", "spec.yaml"], _spec(SPEC + "unlearn: {steps: 0}\n"),
      "unlearn.steps: must be >= 1"),
    C("negative images", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "eval: {images_per_class: -5}\n"), "eval.images_per_class: must be >= 2"),
    C("more images than the data set has", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "eval: {images_per_class: 1000000000}\n"), "eval.images_per_class: must be <="),
    C("mask hides nothing", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "task: {kind: center_inpaint, mask_ratio: 0}\n"), "task.mask_ratio"),
    C("mask hides everything", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "task: {kind: center_inpaint, mask_ratio: 1.0}\n"), "task.mask_ratio"),
    C("batch beyond any machine", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "unlearn: {batch_size: 100000000}\n"), "unlearn.batch_size: must be <= 65536"),
    C("gan samples beyond memory", "sweep", ["run", "spec.yaml"],
      _spec(GAN + "eval: {samples: 1000000000}\n"), "eval.samples: must be <= 100000"),
    C("gan real images beyond the test split", "l2l", ["trial", "trial.yaml"],
      _trial("family: gan\nmethod: cascade\nforget_set: {classes: [7]}\n"
             "eval: {real_images: 20000}\n"), "eval.real_images: must be <= 10000"),
    C("gan items beyond the data set", "sweep", ["run", "spec.yaml"],
      _spec(GAN.replace("forget_set: {classes: [7]}", "forget_set: {items: 99999999}")),
      "forget_set.items: must be less than"),
    C("analysis negative sample cap", "analysis", ["figures", "--tsne-max", "-1"], "RESULTS",
      "--tsne-max: expected an integer >= 0"),
    # ---- ambiguous text
    C("duplicate key in a spec", "sweep", ["run", "spec.yaml"],
      _spec(SPEC + "alpha: 0.1\nalpha: 0.2\n".replace("alpha: 0.1\n", "noise: normal\n")
            + "noise: uniform\n"), "spec: YAML syntax error at line"),
    C("duplicate key nested", "sweep", ["validate", "spec.yaml"],
      _spec(SPEC + "unlearn: {steps: 5, lr: 0.001, steps: 10}\n"), "duplicate key 'steps'"),
    C("duplicate key in a trial config", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL + "method: original\n"), "duplicate key 'method'"),
    C("duplicate key in a claims file", "analysis", ["claims", "--claims", "c.yaml"],
      {"c.yaml": "- id: a\n  id: b\n"}, "duplicate key 'id'"),
    C("name with a control character", "sweep", ["run", "spec.yaml"],
      _spec(SPEC.replace("name: bad-inputs", 'name: "bad\\x07inputs"')), "name: required"),
    C("name with trailing whitespace", "sweep", ["run", "spec.yaml"],
      _spec(SPEC.replace("name: bad-inputs", 'name: "bad-inputs "')), "name: required"),
    C("sweep id empty", "sweep", ["run", "spec.yaml", "--sweep-id", ""], _spec(SPEC),
      "--sweep-id: letters, digits"),
    C("sweep id with a control character", "sweep", ["run", "spec.yaml", "--sweep-id", "a\tb"],
      _spec(SPEC), "--sweep-id: letters, digits"),
    C("sweep id with trailing whitespace", "sweep", ["run", "spec.yaml", "--sweep-id", "abc "],
      _spec(SPEC), "--sweep-id: letters, digits"),
    C("experiment empty", "sweep", ["run", "spec.yaml", "--experiment", ""], _spec(SPEC),
      "--experiment: must not be empty"),
    C("results path empty", "sweep", ["run", "spec.yaml", "--results", ""], _spec(SPEC),
      "--results: must not be empty"),
    C("method with trailing whitespace", "l2l", ["trial", "trial.yaml"],
      _trial(TRIAL.replace("method: l2l", "method: 'l2l '")), "method: unknown value 'l2l '"),
    C("class listed twice in a class file", "sweep", ["run", "spec.yaml"],
      {**_spec(SPEC.replace("forget_set: {classes: [5, 7, 9]}", "forget_set: {classes: [0]}")
               .replace("[original, l2l]", "[original]")
               + "dataset: image_folder\nimage_folder: {root: imgs, classes_file: c.txt}\n"
               + "retain: {classes: [1]}\n"),
       "imgs/train": None, "imgs/val": None, "c.txt": "cat\ndog\ncat\n"},
      "image_folder.classes_file: class 'cat' listed twice (lines 1 and 3)"),
    # ---- partial writes: several files are written all or none
    C("tables: one format's file cannot be written", "analysis",
      ["tables", "--out", "out", "--format", "md,tex,csv"], "RESULTS+CLASH",
      "cannot write out/s-a/i2i_main.csv"),
    C("compare: the second file cannot be written", "analysis",
      ["compare", "--a", "original", "--b", "l2l", "--out", "out"], "RESULTS+CLASH",
      "cannot write out/compare.csv"),
    # ---- resume and restore with damaged state
    C("resume sweep.json empty", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": ""}, "not valid JSON"),
    C("resume sweep.json a list", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": "[]"}, "expected a JSON object, got list"),
    C("resume settings of the wrong type", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": _record(settings=[1, 2])}, "settings: expected an object, got list"),
    C("resume a setting of the wrong type", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": _record(settings={**SETTINGS, "sweep_id": 7})},
      "settings.sweep_id: wrong type int"),
    C("resume without settings", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": _record(settings=None)}, "settings: expected an object, got nothing"),
    C("resume a newer format", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": _record(format=99)}, "format 99 is not one this version reads"),
    C("resume kept trials of the wrong type", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": _record(format=3, kept_trials="t000")},
      "kept_trials: expected a list of trial ids"),
    C("resume kept trials the spec does not have", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": _record(format=3, kept_trials=["t999-deadbeef"])},
      "kept_trials: t999-deadbeef is not a trial of the spec"),
    C("resume an unknown identity version", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": _record(identity_version=7)}, "identity_version 7 unknown"),
    C("resume a recorded spec that no longer validates", "sweep",
      ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": _record(spec={"name": "x", "optimiser": "adam"})},
      "does not validate with this version: optimiser: unknown field"),
    C("resume sweep.json is a fifo", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": FIFO}, "not a regular file"),
    C("resume sweep.json is a directory", "sweep", ["resume", "s1", "--storage", "ray"],
      {"ray/s1/sweep.json": None}, "it is a directory"),
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
        if files.endswith("+DIR"):
            (d / "adir").mkdir()
        if files.endswith("+CLASH"):  # a directory where one of several outputs goes
            (d / "out" / "s-a" / "i2i_main.csv").mkdir(parents=True)
            (d / "out" / "compare.csv").mkdir()
        return
    for rel, text in files.items():
        p = d / rel
        if text is None:
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        if callable(text):  # a FIFO, a device link, a large or unreadable file
            text(p)
        elif isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text)


def _tree(d: Path) -> dict[str, tuple[int, int]]:
    """Every path under d with its size and modification time: any write shows."""
    out = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(root) / name
            st = p.lstat()
            regular = not p.is_symlink() and p.is_file()
            # a directory is compared by what it holds (a temporary file made and removed
            # inside it changes its mtime, not its content)
            out[str(p.relative_to(d))] = (st.st_size, st.st_mtime_ns) if regular else \
                ("dir" if p.is_dir() and not p.is_symlink() else "other", 0)
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
    t0 = time.monotonic()
    try:
        with _deadline(CASE_SECONDS):
            rc = MAINS[command](list(argv))
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    seconds = time.monotonic() - t0
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, f"exit code {rc}; stderr: {err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert expected in lines[0], lines[0][:2000]
    assert len(lines[0]) <= 500, f"an error line of {len(lines[0])} characters"
    assert _tree(tmp_path) == before, "the command wrote files"
    assert seconds < CASE_SECONDS


CASE_SECONDS = 10  # every bad input is answered within this (a hang fails the case, not CI)


@contextlib.contextmanager
def _deadline(seconds: int):
    """Raises in the main thread after `seconds`: a command that hangs (a FIFO read, an
    exponential expansion) fails its case instead of stalling the suite."""
    def hung(signum, frame):
        raise AssertionError(f"no answer within {seconds} s: the command hangs on this input")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


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


def test_a_failure_while_renaming_into_place_restores_every_earlier_file(tmp_path, monkeypatch):
    """All or none even past the temporary files: the second rename fails, and the first
    target gets its old content back; no temporary or kept-aside file is left."""
    from analysis import files
    from analysis.load import AnalysisError

    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text("old a")
    real, calls = os.replace, []

    def flaky(src, dst):
        calls.append(dst)
        if Path(dst) == b:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", flaky)
    with pytest.raises(AnalysisError, match="cannot write .*b.md: No space left"):
        files.write_all({a: "new a", b: "new b"})
    assert a.read_text() == "old a" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md"]


def test_an_unreadable_spec_is_one_line_even_as_root(tmp_path, monkeypatch, capsys):
    """Root reads a file of mode 000, so the corpus case above is skipped there: here the
    read itself is refused, as it is for any other user."""
    from contract import inputs

    (tmp_path / "spec.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(inputs.os, "open", denied)
    assert sweep_main(["validate", "spec.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: spec: cannot read spec.yaml: Permission denied"]


@pytest.mark.parametrize("requested, cpus, gpus, message", [
    ({"default": {"cpu": 8.0, "gpu": 0.0}}, 4, 0, "resources.default: asks for 8 CPUs a trial"),
    ({"mae": {"cpu": 1.0, "gpu": 2.0}, "default": {"cpu": 1.0, "gpu": 0.0}}, 16, 1,
     "resources.mae: asks for 2 GPUs a trial, but the Ray cluster has 1"),
])
def test_a_trial_larger_than_the_cluster_is_refused_before_it_waits(requested, cpus, gpus,
                                                                    message):
    from sweeps.plan import ResourceError, check_fits

    with pytest.raises(ResourceError, match=re.escape(message)):
        check_fits(requested, cpus, gpus)
    check_fits(requested, 64, 8)  # a cluster that has them: nothing to say


def test_gpu_requests_on_a_machine_without_gpus_fall_back_rather_than_wait():
    from sweeps.plan import check_fits

    check_fits({"default": {"cpu": 1.0, "gpu": 4.0}}, 2, 0)  # they run on the CPU, with a notice
