"""Image promotion beside `skopeo copy`: a 200 MB layer across registries and within one.

Run on demand (not part of the test suite): `.venv/bin/python -m tests.benchmarks.bench_images`.
Runs alternate between the tools, each after a sync, so neither pays for the other's dirty
pages. Each run copies into a registry (across) or repository (within) that has never seen the
image, so nothing is skipped: across registries a fresh target registry per run, because skopeo
remembers where it saw each blob and would mount it from an earlier run's repository. Across
runs go first: skopeo mounts within a registry only from places its blob-info cache knows, and
reading the source during those runs is how it learns them, as in real use.
Our figures are in-process (a new client per run, its /v2/ ping included); skopeo's include
starting its process. Bytes uploaded are ours from the copy report, skopeo's from its --debug
log: the blobs it PUT to finish an upload, at their sizes in the manifest.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bot.adapters.oci import ImageRef, ImageRegistries
from tests.oci_fixtures import PushedImage, Pusher, RunningRegistry, start_registry

MB = 1024 * 1024
_PUT_BLOB = re.compile(r"PUT \S+/blobs/uploads/\S*digest=(sha256(?::|%3A)[0-9a-f]{64})")

Copy = Callable[[RunningRegistry, RunningRegistry], tuple[float, int]]


def ours(image: PushedImage) -> Copy:
    def copy(source: RunningRegistry, target: RunningRegistry) -> tuple[float, int]:
        started = time.perf_counter()
        with ImageRegistries() as registries:
            report = registries.copy_image(
                ImageRef(source.host, image.repository, image.digest),
                target.host,
                f"stg/ours-{uuid.uuid4().hex[:8]}",
                ["churn-7"],
            )
        return time.perf_counter() - started, report.bytes_uploaded

    return copy


def skopeo(image: PushedImage) -> Copy:
    sizes = dict(image.blobs)

    def copy(source: RunningRegistry, target: RunningRegistry) -> tuple[float, int]:
        started = time.perf_counter()
        done = subprocess.run(
            [
                "skopeo", "--debug", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                f"docker://{source.host}/{image.repository}@{image.digest}",
                f"docker://{target.host}/stg/skopeo-{uuid.uuid4().hex[:8]}:churn-7",
            ],
            capture_output=True,
            text=True,
            check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        uploaded = {match.replace("%3A", ":") for match in _PUT_BLOB.findall(done.stderr)}
        return seconds, sum(sizes[digest] for digest in uploaded)

    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-images-") as scratch:
        root = Path(scratch)
        source = start_registry(root / "source")
        started: list[RunningRegistry] = [source]
        try:
            pusher = Pusher(source.url)
            image = pusher.large_image(
                "dev/churn-serving", root / "layer.tgz", options.layer_mb * MB
            )
            pusher.close()
            (root / "layer.tgz").unlink()
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

            rows: list[tuple[str, str, list[float], int]] = []
            tools = (("gatekeeper", ours(image)), ("skopeo copy", skopeo(image)))
            for case in ("across registries", "within one registry"):
                times: dict[str, list[float]] = {name: [] for name, _ in tools}
                uploaded: dict[str, int] = {}
                for run in range(options.runs):
                    # Interleaved, each after a sync: neither tool pays for the other's dirty pages.
                    for name, copy in tools:
                        target = source
                        if case == "across registries":
                            target = start_registry(root / f"{name.split()[0]}-{run}")
                            started.append(target)
                        os.sync()
                        seconds, uploaded[name] = copy(source, target)
                        times[name].append(seconds)
                        if target is not source:
                            target.stop()
                rows += [(case, name, times[name], uploaded[name]) for name, _ in tools]
            rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        finally:
            for registry in started:
                registry.stop()

    total = sum(size for _, size in image.blobs)
    print(
        f"\nimage: {options.layer_mb} MB layer + config = {total:,} bytes; {options.runs} runs each\n"
    )
    print(
        f"{'case':<21} {'tool':<12} {'median s':>9} {'min s':>7} {'max s':>7} {'bytes uploaded':>15}"
    )
    for case, name, times, uploaded in rows:
        print(
            f"{case:<21} {name:<12} {statistics.median(times):>9.3f} {min(times):>7.3f} "
            f"{max(times):>7.3f} {uploaded:>15,}"
        )
    print(f"\npeak RSS growth of this process over all of our copies: {rss_growth / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
