"""The Kubeflow Pipelines step a training pipeline ends with: declare the bundle, ask to promote.

The component writes the bundle tags PRODUCT.md describes on the registered model version, and
``gatekeeper.promote`` last: Gatekeeper's intake (webhook or polling) acts on that tag, so by the
time it does, the bundle it reads is complete. It runs in the pipeline's cluster, where Gatekeeper
is not installed: its body is self-contained and checks its inputs itself, with the same rules
as ``bot.domain.candidates.parse_bundle``, before it writes anything.
"""

# No ``from __future__ import annotations`` here: KFP reads the parameter annotations as types.
from kfp import dsl

#: What the cluster installs into the component's image; kfp.local finds it already installed.
MLFLOW_PACKAGE = "mlflow-skinny==3.17.*"


# kfp is untyped: its decorator returns a PythonComponent, which pipelines call as a step.
@dsl.component(  # type: ignore[untyped-decorator]
    base_image="python:3.11", packages_to_install=[MLFLOW_PACKAGE]
)
def request_promotion(
    mlflow_tracking_uri: str,
    model_name: str,
    model_version: str,
    target: str,
    images: dict[str, str],
    snapshots: dict[str, str],
    pipeline: str = "",
) -> str:
    """Tag ``model_name`` version ``model_version`` with its bundle, then ``gatekeeper.promote``.

    images: name → ``<registry>/<repository>@sha256:<64 hex>``, each image by digest.
    snapshots: name → ``<url>#sha256=<64 hex>``, each data snapshot or checkpoint.
    pipeline: the compiled pipeline YAML's path inside the version's run artifacts, or "".
    target: the environment to promote into, as named in gatekeeper.yaml.
    Returns the model version's URI (``models:/<name>/<version>``).
    """
    import re
    from pathlib import PurePosixPath

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name_rule = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    host = r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?"
    component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    image_rule = re.compile(rf"^{host}/{component}(?:/{component})*@sha256:[0-9a-f]{{64}}$")
    snapshot_rule = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^#\s]+#sha256=[0-9a-f]{64}$")

    problems = []
    if not target.strip():
        problems.append("target: name the environment to promote into (e.g. staging)")
    for key, value in sorted(images.items()):
        if not name_rule.fullmatch(key):
            problems.append(f"images[{key!r}]: not a valid name (letters, digits, _ . -)")
        elif not image_rule.fullmatch(str(value).strip()):
            problems.append(
                f"images[{key!r}]: {value!r} is not an image by digest; "
                "expected <registry>/<repository>@sha256:<64 hex digits>"
            )
    for key, value in sorted(snapshots.items()):
        if not name_rule.fullmatch(key):
            problems.append(f"snapshots[{key!r}]: not a valid name (letters, digits, _ . -)")
        elif not snapshot_rule.fullmatch(str(value).strip()):
            problems.append(
                f"snapshots[{key!r}]: {value!r} has no checksum; "
                "expected <url>#sha256=<64 hex digits>"
            )
    if pipeline:
        path = PurePosixPath(pipeline.strip())
        if not path.parts or path.is_absolute() or ".." in path.parts:
            problems.append(
                f"pipeline: {pipeline!r} must be a relative path inside the run's artifacts "
                "(e.g. pipeline/pipeline.yaml)"
            )
    if problems:
        raise ValueError("nothing was tagged: " + "; ".join(problems))

    client = MlflowClient(tracking_uri=mlflow_tracking_uri, registry_uri=mlflow_tracking_uri)
    try:
        client.get_model_version(model_name, model_version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise ValueError(
                f"nothing was tagged: {mlflow_tracking_uri} has no model {model_name!r} "
                f"version {model_version!r}"
            ) from None
        raise

    tags = {f"gatekeeper.image.{k}": str(v).strip() for k, v in images.items()}
    tags.update({f"gatekeeper.snapshot.{k}": str(v).strip() for k, v in snapshots.items()})
    if pipeline:
        tags["gatekeeper.pipeline"] = str(PurePosixPath(pipeline.strip()))
    for key in sorted(tags):
        client.set_model_version_tag(model_name, model_version, key, tags[key])
    # Last: the request is what Gatekeeper acts on, and by now the bundle it reads is complete.
    client.set_model_version_tag(model_name, model_version, "gatekeeper.promote", target.strip())
    print(f"requested promotion of {model_name} v{model_version} to {target.strip()}")
    return f"models:/{model_name}/{model_version}"
