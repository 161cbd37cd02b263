"""The architecture's one-way arrows, checked on what Python actually imports."""
import subprocess
import sys

import yaml

FORBIDDEN_IN_L2L = {"ray", "mlflow", "pyarrow", "duckdb", "sweeps", "analysis"}


def _imported_top_level(code: str) -> set[str]:
    r = subprocess.run([sys.executable, "-c", code + "; import sys; "
                        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
                       text=True, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_l2l_imports_no_launcher_or_result_store():
    mods = _imported_top_level("import l2l.trial, l2l.cli, l2l.methods, l2l.metrics")
    assert not mods & FORBIDDEN_IN_L2L, mods & FORBIDDEN_IN_L2L


def test_analysis_imports_no_training_stack():
    mods = _imported_top_level("import analysis.cli, analysis.table")
    assert not mods & {"torch", "ray", "l2l", "sweeps"}


def test_a_trial_runs_from_the_command_line_without_ray(tiny, tmp_path):
    cfg = {**tiny, "method": "l2l", "alpha": 0.25, "unlearn": {**tiny["unlearn"], "steps": 5},
           "eval": {"images_per_class": 20}}
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code = ("import sys, runpy; sys.argv = ['l2l', 'trial', %r, '--json', %r, '-q']; "
            "from l2l.cli import main; rc = main(); "
            "assert not {m.split('.')[0] for m in sys.modules} & %r; sys.exit(rc)"
            % (str(path), str(tmp_path / "rows.json"), FORBIDDEN_IN_L2L))
    r = subprocess.run([sys.executable, "-c", code], text=True, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "forget" in r.stdout and "cosine" in r.stdout
    import json

    rows = json.loads((tmp_path / "rows.json").read_text())
    assert {r["split"] for r in rows} == {"forget", "retain", "all"}  # all: samples_seen
    assert {"fid", "kid", "ssim", "mia_auc", "retrain_distance"} <= {r["metric"] for r in rows}
    n = {(r["split"], r["metric"]): r["n"] for r in rows}
    assert n["forget", "fid"] == 60 and n["retain", "fid"] == 80
    assert n["forget", "mia_auc"] == 120 and n["retain", "mia_auc"] == 160  # members + held out
    assert all(r["method"] == "l2l" for r in rows)


def test_trial_cli_rejects_a_bad_config(tmp_path):
    path = tmp_path / "trial.yaml"
    path.write_text("method: l2l\nforget_set: {classes: [3]}\nalpha: -1\n")
    r = subprocess.run([sys.executable, "-m", "l2l", "trial", str(path)], text=True,
                       capture_output=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == "error: alpha: must be >= 0.0, got -1.0"
