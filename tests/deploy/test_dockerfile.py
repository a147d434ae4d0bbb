"""Runs deploy/Dockerfile's build as far as a machine without a Docker daemon can.

The builder stage's instructions are executed on the host, in order (ARG/ENV set, WORKDIR made,
COPY copies from the build context that .dockerignore leaves, RUN runs with /bin/sh), into a
fresh virtualenv without dev extras; the runtime stage's entry point, migrations and
HEALTHCHECK then run from that virtualenv against a real `gatekeeper serve`. What only a daemon
can do is not exercised: pulling the base image, building and sizing the image, running it as
the non-root user.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.emulator import SlackEmulator

REPO = Path(__file__).parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "DATABASE_URL", "AUTH", "KEY")


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


def _instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue  # comments inside a continued instruction are dropped, as Docker does
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    result = []
    for line in logical:
        keyword, _, arguments = line.strip().partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def _stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in _instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            assert [len(words), words[1].upper()] == [3, "AS"], f"unnamed stage: {words}"
            stages.append(Stage(_expand(words[0], global_args), words[2]))
        elif not stages:
            assert instruction.keyword == "ARG", f"{instruction.keyword} before the first FROM"
            name, _, default = instruction.arguments.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(instruction)
    return global_args, stages


def _expand(value: str, variables: dict[str, str]) -> str:
    for name, replacement in variables.items():
        value = value.replace("${" + name + "}", replacement).replace("$" + name, replacement)
    return value


def _stage(name: str) -> Stage:
    _, stages = _stages(DOCKERFILE.read_text(encoding="utf-8"))
    return next(stage for stage in stages if stage.name == name)


def _stage_args(stage: Stage) -> dict[str, str]:
    return dict(arg.partition("=")[::2] for arg in stage.all("ARG"))


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule for one path: the last matching pattern decides."""
    ignored = False
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        body = body.rstrip("/")
        if any(
            fnmatch.fnmatchcase(prefix, body)
            or fnmatch.fnmatchcase(prefix, body.replace("**/", ""))
            for prefix in prefixes
        ):
            ignored = not negated
    return ignored


def _build_context(destination: Path) -> Path:
    """The repository as the Docker daemon would receive it: .dockerignore applied."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in sorted(REPO.rglob("*")):
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith(".venv/") or relative.startswith(".git/"):
            continue
        if path.is_file() and not _ignored(relative, patterns):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return destination


@dataclass
class Built:
    venv: Path
    root: Path  # stands for the image's /


def _run_builder(root: Path) -> Built:
    """Execute the builder stage on the host, with the image's / mapped to ``root``."""
    context = _build_context(root / "context")
    stage = _stage("builder")
    venv = root / "opt" / "gatekeeper"
    # `python` in the image is the base image's Python 3.11: here, the interpreter under .venv.
    tools = root / "usr-local-bin"
    tools.mkdir(parents=True)
    (tools / "python").symlink_to(Path(getattr(sys, "_base_executable", sys.executable)))
    env = {
        "PATH": f"{tools}:/usr/bin:/bin",
        # The host's way to PyPI (its pip configuration, mirrors and cache), not the image's.
        "HOME": str(Path.home()),
        **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
    }
    workdir = root
    for instruction in stage.instructions:
        if instruction.keyword == "ARG":
            name, _, default = instruction.arguments.partition("=")
            env[name] = str(venv) if name == "VENV" else default
        elif instruction.keyword == "ENV":
            for assignment in shlex.split(instruction.arguments):
                name, _, value = assignment.partition("=")
                if name != "PIP_NO_CACHE_DIR":  # the host reuses its download cache
                    env[name] = _expand(value, env)
        elif instruction.keyword == "WORKDIR":
            workdir = root / instruction.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            *sources, destination = shlex.split(instruction.arguments)
            target = workdir / destination
            for source in sources:
                origin = context / source
                assert origin.exists(), f"COPY {source}: not in the build context"
                if origin.is_dir():
                    shutil.copytree(origin, target, dirs_exist_ok=True)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        elif instruction.keyword == "RUN":
            done = subprocess.run(
                ["/bin/sh", "-c", instruction.arguments],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=1200,
            )
            assert done.returncode == 0, f"RUN {instruction.arguments}\n{done.stdout}{done.stderr}"
        else:
            pytest.fail(f"the builder runs {instruction.keyword}, which this test cannot execute")
    return Built(venv, root)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _run_builder(tmp_path_factory.mktemp("image"))


def _runtime_env(built: Built, **extra: str) -> dict[str, str]:
    """The runtime stage's ENV, with its virtualenv at the host's path."""
    stage = _stage("runtime")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(built.root / "home")}
    args = {**_stage_args(stage), "VENV": str(built.venv)}
    for instruction in stage.all("ENV"):
        for assignment in shlex.split(instruction):
            name, _, value = assignment.partition("=")
            env[name] = _expand(_expand(value, args), {"PATH": env["PATH"]})
    return {**env, **extra}


def test_two_stages_on_one_slim_base() -> None:
    global_args, stages = _stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert [stage.name for stage in stages] == ["builder", "runtime"]
    assert {stage.base for stage in stages} == {global_args["PYTHON_IMAGE"]}
    assert global_args["PYTHON_IMAGE"].startswith("python:3.11-slim")


def test_runtime_copies_only_the_virtualenv_and_installs_no_toolchain() -> None:
    runtime = _stage("runtime")
    copies = runtime.all("COPY")
    assert copies == ["--from=builder ${VENV} ${VENV}"]
    commands = " ".join(runtime.all("RUN"))
    for tool in ("apt-get", "pip", "gcc", "curl", "git"):
        assert tool not in commands.split(), f"the runtime stage runs {tool}"


def test_runs_as_a_fixed_non_root_user() -> None:
    runtime = _stage("runtime")
    args = _stage_args(runtime)
    (user,) = runtime.all("USER")
    uid, _, gid = _expand(user, args).partition(":")
    assert uid.isdigit(), "numeric, so runAsNonRoot can verify it"
    assert gid.isdigit()
    assert int(uid) >= 1000
    assert int(gid) >= 1000
    assert runtime.instructions[-1].keyword in {"CMD", "ENTRYPOINT"}
    after_user = runtime.instructions[[i.keyword for i in runtime.instructions].index("USER") :]
    assert "RUN" not in [i.keyword for i in after_user], "nothing runs as root after USER"


def test_entrypoint_serves_on_the_exposed_port_with_a_healthcheck() -> None:
    runtime = _stage("runtime")
    assert runtime.all("ENTRYPOINT") == ['["gatekeeper"]']
    assert runtime.all("CMD") == ['["serve"]']
    env = _runtime_env(Built(Path("/opt/gatekeeper"), Path("/")))
    assert runtime.all("EXPOSE") == [env["PORT"]]
    (healthcheck,) = runtime.all("HEALTHCHECK")
    assert 'CMD ["python", "-c"' in healthcheck
    assert "/healthz" in healthcheck
    assert env["GATEKEEPER_CONFIG"] == "/etc/gatekeeper/gatekeeper.yaml"


def test_no_secret_is_baked_into_the_image() -> None:
    _, stages = _stages(DOCKERFILE.read_text(encoding="utf-8"))
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword in {"ENV", "ARG"}:
                for assignment in shlex.split(instruction.arguments):
                    name = assignment.partition("=")[0].upper()
                    assert not any(word in name for word in SECRET_WORDS), assignment


def test_dockerignore_keeps_the_context_to_the_package() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for kept in ("pyproject.toml", "README.md", "bot/cli.py", "handlers/app.py"):
        assert not _ignored(kept, patterns), kept
    for dropped in (".venv/bin/python", "tests/conftest.py", ".git/HEAD", "gatekeeper.db",
                    "bot/__pycache__/cli.cpython-311.pyc", "deploy/Dockerfile"):  # fmt: skip
        assert _ignored(dropped, patterns), dropped


def test_builder_installs_a_working_cli_without_dev_extras(built: Built) -> None:
    python = built.venv / "bin" / "python"
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True, text=True, check=True, env=_runtime_env(built),
    ).stdout.lower()  # fmt: skip
    assert "gatekeeper==" in listed
    for dev_only in ("pytest", "mypy", "ruff", "hypothesis", "import-linter"):
        assert f"{dev_only}==" not in listed, f"{dev_only} is a dev extra, not a runtime need"
    # Imports come from the installed wheel, not from a source tree beside the process.
    where = subprocess.run(
        [str(python), "-c", "import bot, handlers; print(bot.__file__)"],
        cwd=built.root, capture_output=True, text=True, check=True, env=_runtime_env(built),
    ).stdout  # fmt: skip
    assert str(built.venv) in where
    for command in (["--help"], ["serve", "--help"], ["worker", "--help"], ["db", "--help"]):
        done = subprocess.run(
            ["gatekeeper", *command], cwd=built.root, capture_output=True, text=True,
            env=_runtime_env(built),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _procfile() -> dict[str, list[str]]:
    lines = (REPO / "Procfile").read_text(encoding="utf-8").splitlines()
    return {
        name: shlex.split(command) for name, _, command in (line.partition(":") for line in lines)
    }


def test_procfile_names_the_image_s_three_processes() -> None:
    """The image's entry point is `gatekeeper`; the Procfile's commands all start with it."""
    assert _procfile() == {
        "release": ["gatekeeper", "db", "upgrade"],
        "web": ["gatekeeper", "serve", "--no-worker"],
        "worker": ["gatekeeper", "worker"],
    }


CONFIG = """
environments:
  dev: {mlflow: "http://127.0.0.1:1"}
  staging: {mlflow: "http://127.0.0.1:2"}
promotion_path: [dev, staging]
models:
  churn-classifier: {channel: C0ML00001}
policies:
  staging: {gates: ["accuracy >= 0.90"], approvals: 0}
"""


def test_release_web_and_healthcheck_run_from_the_built_virtualenv(
    built: Built, tmp_path: Path
) -> None:
    """The Procfile's release and web commands, then the image's HEALTHCHECK against web."""
    config = tmp_path / "gatekeeper.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    port = _free_port()
    with SlackEmulator(bot_token="xoxb-image", signing_secret="image-signing-secret") as slack:
        env = _runtime_env(
            built,
            DATABASE_URL=f"sqlite:///{tmp_path / 'gatekeeper.db'}",
            GATEKEEPER_CONFIG=str(config),
            PORT=str(port),
            SLACK_BOT_TOKEN="xoxb-image",
            SLACK_SIGNING_SECRET="image-signing-secret",
            SLACK_API_URL=slack.api_url,
        )
        processes = _procfile()
        release = subprocess.run(
            processes["release"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert release.returncode == 0, release.stderr
        runtime = _stage("runtime")
        (healthcheck,) = runtime.all("HEALTHCHECK")
        probe = healthcheck.partition("CMD ")[2]
        probe_argv = [str(a) for a in json.loads(probe)]
        log = tmp_path / "serve.log"
        with log.open("wb") as output:
            web = subprocess.Popen(
                [*processes["web"], "--host", "127.0.0.1"],
                cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            healthy = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and web.poll() is None:
                healthy = subprocess.run(probe_argv, env=env, capture_output=True, timeout=10)
                if healthy.returncode == 0:
                    break
                time.sleep(0.5)
            assert healthy is not None, log.read_text()
            assert healthy.returncode == 0, log.read_text()
        finally:
            web.terminate()
            web.wait(timeout=20)
        after = subprocess.run(probe_argv, env=env, capture_output=True, timeout=10)
    # Once nothing listens the probe fails: its success above was the server answering.
    assert after.returncode != 0


def test_virtualenv_size_is_reported(built: Built) -> None:
    """The image's size cannot be measured without a daemon; its one added layer can."""
    size = sum(
        p.stat().st_size for p in built.venv.rglob("*") if p.is_file() and not p.is_symlink()
    )
    print(f"\nruntime virtualenv: {size / 2**20:.0f} MiB (plus python:3.11-slim, ~130 MiB)")
    # mlflow, kfp and their scientific stack dominate; a doubling would be a dependency slip.
    assert size < 1200 * 2**20, f"{size / 2**20:.0f} MiB"
