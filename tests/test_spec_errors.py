"""A malformed spec is refused before Ray starts: one line naming the field, exit 2, nothing
written. Run as a real command line so that "before Ray starts" is what a user sees."""
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


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_refused_with_one_line(case, tmp_path):
    text, expected = BAD[case]
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(text))
    r = _run(["run", str(spec)], tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert expected in lines[0]
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
                    ("l2l", "proxy"), ("retrain", "full")}
    assert {t.config.generator.name for t in spec.trials} == {"mae", "vqgan", "diffusion"}
    assert {t.config.seed for t in spec.trials} == {0, 1, 2} and len(spec.trials) == 8 * 3 * 3
    assert {t.config.task.mask_ratio for t in spec.trials} == {ratio}
    # the forget set is the same in every row, the proxy row included
    assert {t.config.forget_classes for t in spec.trials} == {(5, 7, 9)}
