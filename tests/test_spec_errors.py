"""A malformed spec or command line is refused before Ray starts: one line naming the field,
exit 2, nothing written. Most cases call the CLI's `main` in-process (a Python start per case
costs seconds); a few run as a real command line, to show what a user sees and that nothing
heavy (Ray, torch, MLflow) was even imported."""
import os
import re
import subprocess
import sys
import textwrap

import pytest

GOOD = """
name: tiny
forget_set: {classes: [5, 7, 9]}
grid:
  method: [original, l2l]
  alpha: [0.25]
  seed: [0, 1]
"""

BAD = {
    "unknown method": (GOOD.replace("[original, l2l]", "[original, forget_it]"),
                       "grid.method[1]: unknown value 'forget_it' (allowed: original, retrain, max_loss"),
    "class out of range": (GOOD.replace("[5, 7, 9]", "[5, 7, 10]"),
                           "forget_set.classes[2]: must be <= 9"),
    "overlap": (GOOD + "retain: {classes: [0, 5]}\n", "retain.classes: overlaps forget_set"),
    "missing field": (GOOD.replace("forget_set: {classes: [5, 7, 9]}\n", ""),
                      "forget_set: missing required field"),
    "wrong type": (GOOD + "unlearn: {steps: many}\n", "unlearn.steps: expected an integer"),
    "wrong type in grid": (GOOD.replace("[0.25]", "[0.25, high]"),
                           "grid.alpha[1]: expected a number"),
    "unknown field": (GOOD + "optimiser: adam\n", "optimiser: unknown field"),
    "missing name": (GOOD.replace("name: tiny\n", ""), "name: required"),
    "yaml syntax": (GOOD + "grid: [unclosed\n", "spec: YAML syntax error at line"),
    "bad resources": (GOOD + "resources: {cpu: -1}\n", "resources.cpu: expected a number >= 0"),
    "unknown generator": (GOOD + "generator: {name: stylegan}\n",
                          "generator.name: unknown value 'stylegan' (allowed: mae, vqgan, diffusion)"),
    "bad variant": (GOOD + "variants: [{noise: loud}]\n", "variants[0].noise: unknown value 'loud'"),
    "variant on a grid axis": (GOOD + "variants: [{seed: 3}]\n",
                               "variants[0].seed: also a grid axis"),
    "empty axis": (GOOD.replace("seed: [0, 1]", "seed: []"), "grid.seed: expected a non-empty list"),
}


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120)


def test_a_bad_spec_on_the_real_command_line(tmp_path):
    text, expected = BAD["unknown method"]
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(text))
    r = _run(["run", str(spec)], tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # nothing written


def test_missing_spec_file(tmp_path):
    r = _run(["run", str(tmp_path / "nope.yaml")], tmp_path)
    assert r.returncode == 2 and "spec: file not found" in r.stderr


def test_unwritable_results_dir(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD)
    (tmp_path / "file").write_text("")
    r = _run(["run", str(spec), "--results", str(tmp_path / "file" / "results")], tmp_path)
    assert r.returncode == 2 and "--results" in r.stderr


def test_validate_lists_trials_and_dedupes_methods_without_alpha(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD.replace("[0.25]", "[0.1, 0.25]"))
    r = _run(["validate", str(spec)], tmp_path)
    assert r.returncode == 0, r.stderr
    # original ignores alpha: 2 seeds; l2l: 2 alphas x 2 seeds
    assert "6 trials" in r.stdout
    assert r.stdout.count(" original ") == 2 and r.stdout.count(" l2l alpha=") == 4


def test_spec_validation_does_not_import_ray_or_torch():
    code = ("import sys; from sweeps.spec import load_spec; "
            "load_spec('sweeps/specs/quickstart.yaml'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'torch', 'mlflow'}))")
    r = subprocess.run([sys.executable, "-c", code], text=True, capture_output=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stderr


@pytest.mark.parametrize("name, ratio", [("i2i_table1", 0.5), ("i2i_table2", 0.25)])
def test_paper_table_specs_have_the_papers_rows(name, ratio):
    from sweeps.spec import load_spec

    spec = load_spec(f"sweeps/specs/{name}.yaml")
    rows = {(t.config.method, t.config.retain.mode) for t in spec.trials}
    assert rows == {("original", "full"), ("max_loss", "full"), ("noisy_label", "full"),
                    ("retain_label", "full"), ("random_encoder", "full"), ("l2l", "full"),
                    ("l2l", "proxy"), ("retrain", "full"), ("finetune_retain", "full")}
    assert {t.config.generator.name for t in spec.trials} == {"mae", "vqgan", "diffusion"}
    # five independent originals (pretraining seeds), one unlearning seed each
    assert {(t.config.pretrain.seed, t.config.seed) for t in spec.trials} == \
        {(s, 0) for s in range(5)} and len(spec.trials) == 9 * 3 * 5
    assert {t.config.task.mask_ratio for t in spec.trials} == {ratio}
    # the forget set is the same in every row, the proxy row included
    assert {t.config.forget_classes for t in spec.trials} == {(5, 7, 9)}


def test_by_generator_gives_each_generator_its_own_fields_under_the_variants_and_grid():
    from sweeps.spec import parse_spec

    spec = parse_spec({
        "name": "x", "forget_set": {"classes": [5, 7, 9]}, "pretrain": {"epochs": 20},
        "grid": {"generator": [{"name": "mae"}, {"name": "vqgan"}], "seed": [0]},
        "by_generator": {"vqgan": {"pretrain": {"epochs": 24}, "alpha": 0.5}},
        "variants": [{"method": "l2l"}, {"method": "l2l", "alpha": 0.1}]})
    got = {(t.config.generator.name, t.config.alpha, t.config.pretrain.epochs)
           for t in spec.trials}
    # pretrain merges key by key (the top level's other pretrain fields stay); a variant wins
    assert got == {("mae", 0.25, 20), ("mae", 0.1, 20), ("vqgan", 0.5, 24), ("vqgan", 0.1, 24)}


# ----------------------------------------------------------------------------------------------
# Searches, failures, resume, dry runs. Checked in-process (the same `main` as the command
# line above, much faster): one line, exit 2, nothing written.

SEARCH = """
name: tiny-search
method: l2l
forget_set: {classes: [5, 7, 9]}
grid:
  seed: [0, 1]
search:
  num_samples: 4
  max_concurrent: 2
  metric: {forget: {fid: 1.0}, retain: {fid: -1.0}}
  space:
    alpha: {loguniform: [0.01, 10]}
    unlearn.lr: {loguniform: [0.0001, 0.01]}
  asha: {grace_period: 1, reduction_factor: 2}
"""

BAD_MORE = {
    "search not a mapping": (GOOD + "search: optuna\n", "search: expected a mapping"),
    "search unknown field": (SEARCH + "  sampler: tpe\n", "search.sampler: unknown field"),
    "search algorithm": (SEARCH + "  algorithm: hyperopt\n",
                         "search.algorithm: unknown value 'hyperopt' (allowed: optuna)"),
    "num_samples missing": (SEARCH.replace("  num_samples: 4\n", ""),
                            "search.num_samples: expected an integer >= 1"),
    "max_concurrent zero": (SEARCH.replace("max_concurrent: 2", "max_concurrent: 0"),
                            "search.max_concurrent: expected an integer >= 1"),
    "metric missing": (SEARCH.replace("  metric: {forget: {fid: 1.0}, retain: {fid: -1.0}}\n", ""),
                       "search.metric: expected {split: {metric: weight}}"),
    "metric weight": (SEARCH.replace("{fid: -1.0}", "{fid: heavy}"),
                      "search.metric.retain.fid: expected a non-zero number"),
    "metric unknown": (SEARCH.replace("retain: {fid: -1.0}", "retain: {fidd: -1.0}"),
                       "search.metric.retain.fidd: unknown metric for i2i trials (allowed: fid,"),
    "metric split unknown": (SEARCH.replace("retain: {fid: -1.0}", "test: {fid: -1.0}"),
                             "search.metric.test: unknown split for i2i trials (allowed: all, "
                             "forget, retain)"),
    "mode": (SEARCH + "  mode: best\n", "search.mode: unknown value 'best' (allowed: max, min, pareto)"),
    "space empty": (SEARCH.replace("    alpha: {loguniform: [0.01, 10]}\n    unlearn.lr: "
                                   "{loguniform: [0.0001, 0.01]}\n", "    {}\n")
                    .replace("  space:\n    {}\n", "  space: {}\n"),
                    "search.space: expected {field: {loguniform: [low, high]}}"),
    "space unknown field": (SEARCH.replace("unlearn.lr:", "optimiser.lr:"),
                            "search.space.optimiser.lr: not a searchable trial field"),
    "space seed": (SEARCH.replace("unlearn.lr:", "seed:"),
                   "search.space.seed: not a searchable trial field (seeds are grid.seed)"),
    "space distribution": (SEARCH.replace("alpha: {loguniform:", "alpha: {normal:"),
                           "search.space.alpha.normal: unknown distribution (allowed: "
                           "loguniform, uniform, randint, choice)"),
    "space bounds": (SEARCH.replace("[0.01, 10]", "[10, 0.01]"),
                     "search.space.alpha.loguniform: low must be below high"),
    "space choice of mappings": (SEARCH.replace("alpha: {loguniform: [0.01, 10]}",
                                                "retain: {choice: [{mode: full}, {mode: none}]}"),
                                 "search.space.retain.choice: expected numbers or strings"),
    "space log of zero": (SEARCH.replace("[0.01, 10]", "[0, 10]"),
                          "search.space.alpha.loguniform: low must be > 0"),
    "space value out of range": (SEARCH.replace("[0.01, 10]", "[0.01, 5000]"),
                                 "search.space.alpha: must be <= 1000"),
    "space unused by the method": (SEARCH.replace("method: l2l", "method: original")
                                   .replace("    unlearn.lr: {loguniform: [0.0001, 0.01]}\n", ""),
                                   "search.space.alpha: changes nothing in this trial (method "
                                   "'original' ignores it)"),
    "search with a grid axis": (SEARCH.replace("  seed: [0, 1]", "  seed: [0, 1]\n  alpha: [0.1]"),
                                "grid.alpha: a search takes only seed on its grid"),
    "search with variants": (SEARCH + "variants: [{noise: uniform}]\n",
                             "variants: not allowed with search"),
    "asha unknown field": (SEARCH.replace("reduction_factor: 2}", "reduction_factor: 2, max_t: 9}"),
                           "search.asha.max_t: unknown field"),
    "asha one seed": (SEARCH.replace("seed: [0, 1]", "seed: [0]"),
                      "search.asha: needs at least 2 seeds on grid.seed"),
    "asha grace period": (SEARCH.replace("grace_period: 1", "grace_period: 2"),
                          "search.asha.grace_period: expected an integer in 1..1"),
    "asha reduction factor": (SEARCH.replace("reduction_factor: 2", "reduction_factor: 1"),
                              "search.asha.reduction_factor: expected a number > 1"),
    "max_failures": (GOOD + "max_failures: -1\n", "max_failures: expected an integer >= 0"),
    "by_generator not a mapping": (GOOD + "by_generator: [vqgan]\n",
                                   "by_generator: expected a mapping of generator name"),
    "by_generator unknown generator": (GOOD + "by_generator: {vqgann: {alpha: 1}}\n",
                                       "by_generator.vqgann: unknown generator (allowed: mae,"),
    "by_generator method": (GOOD + "by_generator: {mae: {method: l2l}}\n",
                            "by_generator.mae.method: not a field a generator can set"),
    "by_generator grid axis": (GOOD + "by_generator: {mae: {alpha: 0.5}}\n",
                               "by_generator.mae.alpha: also a grid axis; give it in one place"),
    "by_generator bad value": (GOOD + "by_generator: {mae: {pretrain: {epochs: -3}}}\n",
                               "by_generator.mae.pretrain.epochs: must be >= 1"),
    "by_generator with search": (SEARCH + "by_generator: {mae: {alpha: 1}}\n",
                                 "by_generator: only for grid specs"),
    "resources fraction above 1": (GOOD + "resources: {mae: {cpu: 1, gpu: 1.5}}\n",
                                   "resources.mae.gpu: fractions are allowed only below 1"),
}


@pytest.mark.parametrize("case", sorted(BAD) + sorted(BAD_MORE))
def test_bad_spec_is_refused_with_one_line(case, tmp_path, monkeypatch, capsys):
    """In-process (the same `main` as the command line, without a Python start per case);
    test_a_bad_spec_on_the_real_command_line checks one case end to end."""
    from sweeps.cli import main

    text, expected = {**BAD, **BAD_MORE}[case]
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(text))
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert expected in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # nothing written


@pytest.mark.parametrize("args, expected", [
    (["--max-failures", "-1"], "error: --max-failures: expected an integer >= 0"),
    (["--max-failures", "two"], "error: l2l-sweep run: argument --max-failures: invalid int"),
    (["--mlflow-uri", "mlflow.db"], "error: --mlflow-uri: expected sqlite:///FILE"),
    (["--sweep-id", "a/b"], "error: --sweep-id: letters, digits, '_', '.', '-'"),
    (["--no-such-flag"], "error: l2l-sweep: unrecognized arguments: --no-such-flag"),
])
def test_bad_command_line_is_refused_with_one_line(args, expected, tmp_path, monkeypatch, capsys):
    from sweeps.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["run", str(spec), *args])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(expected), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_an_existing_directory_that_is_no_sweep_is_refused(tmp_path, monkeypatch, capsys):
    from sweeps.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD)
    (tmp_path / "ray_results" / "taken").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec), "--sweep-id", "taken"]) == 2
    assert "error: --sweep-id: ray_results/taken already exists and is not a sweep" \
        in capsys.readouterr().err


def test_validate_describes_a_search(tmp_path, capsys):
    from sweeps.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(SEARCH)
    assert main(["validate", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "search (optuna), 4 points x 2 seeds = at most 8 trials" in out
    assert "maximise 1 x forget_fid - 1 x retain_fid, averaged over seeds" in out
    assert "alpha ~ loguniform(0.01, 10); unlearn.lr ~ loguniform(0.0001, 0.01)" in out
    assert "ASHA over seeds (grace period 1, reduction factor 2)" in out


def test_dry_run_prints_trials_resources_and_cost_and_starts_nothing(tmp_path):
    """A real command line: no Ray, torch or MLflow imported, nothing written; GPU requests
    fall back to the CPU with a notice on this CPU-only machine."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD + "resources: {mae: {cpu: 1, gpu: 0.25}}\n")
    code = ("import sys; from sweeps.cli import main; rc = main(['run', %r, '--dry-run']); "
            "print('imported:', sorted({m.split('.')[0] for m in sys.modules} & "
            "{'ray', 'torch', 'mlflow'})); sys.exit(rc)" % str(spec))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # this machine, with no GPU
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, text=True,
                       capture_output=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "dry run: spec tiny (grid): 4 trials" in out
    assert "notice: resources.mae asks for 0.25 GPU but this machine has none" in out
    assert "4 trials  mae/tiny: cpu 1, gpu 0   (spec: cpu 1, gpu 0.25)" in out
    assert re.search(r"4 trials: about [\d.]+ (s|min) of trial time", out)
    assert re.search(r"wall clock: about [\d.]+ (s|min) with \d+ at a time", out)
    assert "nothing was started or written (dry run)" in out
    assert "imported: []" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_dry_run_uses_measured_seconds_from_earlier_results(tmp_path, capsys):
    """Trials with the config hash of earlier results are estimated from what they took,
    whichever identity version the earlier rows were recorded with (a sweep started before
    identity version 2 keeps version 1)."""
    import datetime as dt

    from contract.identity import IDENTITY_VERSION
    from contract.schema import trial_path, write_rows
    from sweeps.cli import main
    from sweeps.spec import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text(GOOD)
    trials = load_spec(spec).trials
    for t, version in zip(trials[:2], (IDENTITY_VERSION, 1)):
        write_rows(trial_path(tmp_path / "results", "old", t.trial_id), [{
            "trial_id": t.trial_id, "status": "ok", "method": t.config.method,
            "config_hash": t.config.identity_hash(version), "identity_version": version,
            "unlearn_seconds": 100.0, "eval_seconds": 20.0, "metric": "fid", "value": 1.0,
            "created_at": dt.datetime.now(dt.timezone.utc)}])
    assert main(["run", str(spec), "--dry-run", "--results", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert f"2 of 4 from earlier results in {tmp_path / 'results'}" in out


def test_gpu_requests_fall_back_only_without_gpus():
    from sweeps.plan import effective_resources

    asked = {"mae": {"cpu": 1.0, "gpu": 0.25}, "default": {"cpu": 2.0, "gpu": 0.0}}
    res, notices = effective_resources(asked, gpus=0)
    assert res["mae"] == {"cpu": 1.0, "gpu": 0.0} and res["default"] == asked["default"]
    assert len(notices) == 1 and notices[0].startswith("notice: resources.mae asks for 0.25 GPU")
    res, notices = effective_resources(asked, gpus=1)
    assert res == asked and notices == []
