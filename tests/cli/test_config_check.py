"""`gatekeeper config check`, run as an operator runs it: a real process, real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "gatekeeper.example.yaml"

BROKEN = """\
environments:
  dev: {mlflow: "http://127.0.0.1:5001"}
  staging: {mlflow: "ftp://127.0.0.1:5002", kfp: remote}
promotion_path: [dev, staging, prod]
models:
  churn-classifier: {channel: "#ml"}
policies:
  staging:
    gates: ["accuracy >> 0.9"]
    approvals: 2
    approvers: ["@alice"]
    expires_after: soon
"""
BROKEN_PATHS = (
    "environments.staging.mlflow",
    "environments.staging.kfp",
    "models.churn-classifier.channel",
    "policies.staging.gates.0",
    "policies.staging.approvers.0",
    "policies.staging.expires_after",
    "promotion_path.2",
)


def gatekeeper(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    installed = shutil.which("gatekeeper", path=str(Path(sys.executable).parent))
    command = (
        [installed] if installed else [sys.executable, "-c", "from bot.cli import main; main()"]
    )
    environment = {k: v for k, v in os.environ.items() if k.upper() != "GATEKEEPER_CONFIG"}
    environment["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env={**environment, **env},
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_the_example_is_ok() -> None:
    result = gatekeeper("config", "check", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "OK (3 environments, 1 model, 2 policies)" in result.stdout


def test_the_file_defaults_to_gatekeeper_config() -> None:
    result = gatekeeper("config", "check", GATEKEEPER_CONFIG=str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_a_broken_file_lists_every_problem_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "gatekeeper.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    result = gatekeeper("config", "check", str(path))
    assert result.returncode == 1
    assert f"{len(BROKEN_PATHS)} problem" in result.stderr
    for key_path in BROKEN_PATHS:
        assert f"  {key_path}: " in result.stderr
    assert "Copy member ID" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_yaml_syntax_error_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "gatekeeper.yaml"
    path.write_text("environments:\n  dev: [\n", encoding="utf-8")
    result = gatekeeper("config", "check", str(path))
    assert result.returncode == 1
    assert "(file): YAML syntax error at line 3" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_missing_file(tmp_path: Path) -> None:
    result = gatekeeper("config", "check", str(tmp_path / "gatekeeper.yaml"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert "GATEKEEPER_CONFIG" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
