"""Model artifact copy between two MLflow servers: MlflowCopier beside the MLflow CLI.

Run on demand (not part of the test suite):
    .venv/bin/python -m tests.benchmarks.bench_model_copy             # a 100 MB model
    .venv/bin/python -m tests.benchmarks.bench_model_copy --size-mb 1024

Two `mlflow server`s on loopback, each with proxied artifacts in its own directory. Every way
of copying runs in its own process, so each peak RSS (from wait4) is that method's alone:
- the MLflow CLI: `mlflow artifacts download` from dev, then `mlflow artifacts log-artifacts`
  into a staging run, each told its server by MLFLOW_TRACKING_URI;
- MLflow's Python API doing the same two steps in one process (the CLI without its start-up);
- MlflowCopier through both servers' artifact proxies, and store to store;
- `cp -r` between the two artifact directories, the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.mlflow_fixtures import MLFLOW_START_SECONDS, _free_port, _healthy, _stop

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

#: Runs inside a fresh interpreter: reports the copy's seconds and its own peak RSS before
#: and after, so import cost and copy cost can be told apart.
IN_PROCESS = r"""
import json, sys, time
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
args = json.loads(sys.argv[1])
from mlflow.tracking import MlflowClient
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from bot.adapters.mlflow_copy import MlflowCopier, MlflowServer
import tempfile
before = peak_kib()
started = time.perf_counter()
if args["how"] == "api":
    dev = MlflowClient(tracking_uri=args["dev"], registry_uri=args["dev"])
    staging = MlflowClient(tracking_uri=args["staging"], registry_uri=args["staging"])
    with tempfile.TemporaryDirectory() as work:
        location = dev.get_model_version_download_uri(args["name"], args["version"])
        get_artifact_repository(location, tracking_uri=args["dev"]).download_artifacts("", work)
        staging.log_artifacts(args["run_id"], work)
else:
    stores = args["how"] == "store"
    copier = MlflowCopier([
        MlflowServer("dev", args["dev"], args["dev_store"] if stores else None),
        MlflowServer("staging", args["staging"], args["staging_store"] if stores else None),
    ])
    copier.copy_version(args["dev"], args["name"], args["version"], args["staging"],
                        args["target"], {"gatekeeper.lineage.promotion_id": args["target"]})
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "before_kib": before, "after_kib": peak_kib()}))
"""


#: Starts the measured command from a small interpreter: a child's peak RSS (wait4) counts the
#: memory of the process it was forked from, which here would be this one, MLflow and all.
LAUNCHER = r"""
import os, sys
child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(child, 0)
os.write(2, b"\nGK_MAXRSS_KIB=%d\n" % usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Result:
    method: str
    seconds: float
    peak_mib: float
    growth_mib: float | None = None  # peak RSS gained during the copy itself


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    store = root / "artifacts"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(store),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    server = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_new_session=True,
    )
    return server, f"http://127.0.0.1:{port}", store


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + MLFLOW_START_SECONDS
    while not _healthy(url):
        if time.monotonic() > deadline:
            raise SystemExit(f"mlflow server at {url} did not start")
        time.sleep(0.2)


def register_model(url: str, size_mb: int, work: Path) -> tuple[str, str]:
    """A version whose artifacts are an MLmodel and ``size_mb`` MB of weights."""
    model = work / "model"
    model.mkdir()
    (model / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    block = os.urandom(MIB)
    with (model / "weights.bin").open("wb") as weights:
        for index in range(size_mb):
            weights.write(index.to_bytes(4, "big") + block[4:])
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    run = client.create_run("0")
    logged = client.create_logged_model("0", name="big", source_run_id=run.info.run_id)
    client.log_model_artifacts(logged.model_id, str(model))
    client.finalize_logged_model(logged.model_id, "READY")
    name = f"big-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    version = client.create_model_version(
        name, f"models:/{logged.model_id}", run_id=run.info.run_id, model_id=logged.model_id
    )
    shutil.rmtree(model)
    return name, str(version.version)


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Seconds, peak RSS in MiB of the command alone, and its standard output."""
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, *command],
        capture_output=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        tail = process.stderr.decode(errors="replace")[-2000:]
        raise SystemExit(f"{command[:4]} exited with {process.returncode}:\n{tail}")
    report = process.stderr.decode(errors="replace").rsplit("GK_MAXRSS_KIB=", 1)[1]
    return seconds, int(report.split()[0]) / 1024, process.stdout.decode()


def cli_copy(dev: str, staging: str, name: str, version: str, work: Path) -> Result:
    client = MlflowClient(tracking_uri=dev, registry_uri=dev)
    location = client.get_model_version_download_uri(name, version)
    run_id = MlflowClient(tracking_uri=staging).create_run("0").info.run_id
    mlflow = [sys.executable, "-m", "mlflow", "artifacts"]
    download = [*mlflow, "download", "-u", location, "-d", str(work)]
    # The tracking URI reaches only each CLI process, through its environment.
    down_s, down_mib, printed = timed(download, {**os.environ, "MLFLOW_TRACKING_URI": dev})
    upload = [*mlflow, "log-artifacts", "-l", printed.strip(), "-r", run_id]
    up_s, up_mib, _ = timed(upload, {**os.environ, "MLFLOW_TRACKING_URI": staging})
    return Result(CLI, down_s + up_s, max(down_mib, up_mib))


def in_process(how: str, args: dict[str, str]) -> Result:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", IN_PROCESS, json.dumps({**args, "how": how})]
    _, peak, output = timed(command, env)
    report = json.loads(output.strip().splitlines()[-1])
    growth = (report["after_kib"] - report["before_kib"]) / 1024
    return Result(METHODS[how], report["seconds"], peak, growth)


CLI = "mlflow CLI: download + log-artifacts"
METHODS = {
    "api": "mlflow API: download + log_artifacts",
    "proxy": "MlflowCopier via both servers",
    "store": "MlflowCopier store to store",
}
CP = "cp -r between the artifact dirs"


def measure(size_mb: int, repeat: int, root: Path) -> list[Result]:
    (root / "dev").mkdir()
    (root / "staging").mkdir()
    dev_server, dev, dev_store = start_server(root / "dev")
    staging_server, staging, staging_store = start_server(root / "staging")
    try:
        wait_healthy(dev)
        wait_healthy(staging)
        name, version = register_model(dev, size_mb, root)
        args = {
            "dev": dev, "staging": staging, "name": name, "version": version,
            "dev_store": str(dev_store), "staging_store": str(staging_store),
        }  # fmt: skip
        location = MlflowClient(tracking_uri=dev).get_model_version_download_uri(name, version)
        source_dir = dev_store / location.removeprefix("mlflow-artifacts:/")
        results: list[Result] = []
        for attempt in range(repeat):
            results.append(cli_copy(dev, staging, name, version, root / f"cli-{attempt}"))
            run_id = MlflowClient(tracking_uri=staging).create_run("0").info.run_id
            results.append(in_process("api", {**args, "run_id": run_id}))
            for how in ("proxy", "store"):
                target = f"{name}-{how}-{attempt}"
                results.append(in_process(how, {**args, "target": target}))
            cp_s, cp_mib, _ = timed(["cp", "-r", str(source_dir), str(root / f"cp-{attempt}")])
            results.append(Result(CP, cp_s, cp_mib))
            # Only one copy of each kind on disk at a time: a 1 GB run stays within /tmp.
            for leftover in (root / f"cli-{attempt}", root / f"cp-{attempt}"):
                shutil.rmtree(leftover, ignore_errors=True)
        return results
    finally:
        _stop(dev_server)
        _stop(staging_server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100, help="size of the model's weights")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method (median)")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-model-copy-"))
    try:
        results = measure(options.size_mb, options.repeat, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _, floor_mib, _ = timed(["true"])
    print(
        f"\nmodel artifact copy of {options.size_mb} MB, dev -> staging MLflow on loopback, "
        f"{os.cpu_count()} cores, median of {options.repeat}"
    )
    print(f"{'method':<38} {'seconds':>8} {'x CLI':>6} {'peak RSS':>10} {'during copy':>12}")
    cli = statistics.median(r.seconds for r in results if r.method == CLI)
    for method in (CLI, *METHODS.values(), CP):
        runs = [r for r in results if r.method == method]
        seconds = statistics.median(r.seconds for r in runs)
        peak = max(r.peak_mib for r in runs)
        grown = [r.growth_mib for r in runs if r.growth_mib is not None]
        growth = f"{max(grown):+.0f} MiB" if grown else ""
        print(f"{method:<38} {seconds:8.2f} {seconds / cli:6.2f} {peak:6.0f} MiB {growth:>12}")
    print(
        f"peak RSS: the whole process (from wait4; {floor_mib:.0f} MiB is the floor of the "
        "launcher that measures it); during copy: peak growth after imports"
    )


if __name__ == "__main__":
    main()
