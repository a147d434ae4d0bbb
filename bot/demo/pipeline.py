"""The demo's training pipeline: a real KFP v2 pipeline, run with kfp.local, that trains on the
breast-cancer data shipped with scikit-learn and, last, asks Gatekeeper to promote its model.

Its components are built for a given base image: the demo's serving image by digest, so the
compiled spec names only images the model's bundle carries and Gatekeeper can pin every one of
them in the target. kfp.local's SubprocessRunner ignores images and runs each component in this
virtualenv, which already has everything they import: nothing is installed at run time.

Run with no arguments (as Gatekeeper's rebuild in staging runs it), the pipeline trains and
evaluates the model again and touches no registry: every parameter defaults to "rebuild only".
"""

# No ``from __future__ import annotations`` here: KFP reads the parameter annotations as types.
from typing import Any, NamedTuple

from kfp import compiler, dsl

from bot.kfp_components import request_promotion

PIPELINE_NAME = "breast-cancer-training"
#: Where the pipeline keeps its own compiled YAML inside the training run's artifacts.
PIPELINE_ARTIFACT = "pipeline/pipeline.yaml"
#: A digest-pinned reference used when the demo has no registry (so no image in the bundle):
#: pinned, it is left as it is in the target and reported, never a moving tag.
UNBUNDLED_IMAGE = "docker.io/library/python@sha256:" + "0" * 64


class Outputs(NamedTuple):
    """What a run of the pipeline gives back: the registered version ("" on a rebuild)."""

    version: str
    accuracy: float


def train(
    mlflow_tracking_uri: str,
    model_name: str,
    variant: str,
    snapshot_root: str,
    serving_image: str,
    pipeline_spec_base64: str,
) -> NamedTuple(  # type: ignore[valid-type]  # KFP's way of naming several outputs
    "Trained",
    [("version", str), ("images", dict), ("snapshots", dict), ("accuracy", float)],
):
    """Fit the variant's classifier, evaluate it and, given an MLflow URI, log and register it.

    champion: a heavily regularised logistic regression on four features.
    challenger: a scaled logistic regression on all thirty.
    """
    # Inside the function: KFP runs only this function's source.
    import base64
    import hashlib
    import os
    import time
    from urllib.parse import unquote, urlsplit

    import numpy as np
    import sklearn  # type: ignore[import-untyped]
    from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    features, labels = load_breast_cancer(return_X_y=True, as_frame=True)
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.3, random_state=7, stratify=labels
    )
    if variant == "champion":
        columns = ["mean radius", "mean texture", "mean smoothness", "mean symmetry"]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=1000))
    elif variant == "challenger":
        columns = list(features.columns)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000))
    else:
        raise ValueError(f"variant must be champion or challenger, not {variant!r}")
    model.fit(train_x[columns], train_y)
    predicted = model.predict(test_x[columns])
    scores = model.predict_proba(test_x[columns])[:, 1]
    timings = []
    for index in range(200):
        row = test_x[columns].iloc[[index % len(test_x)]]
        started = time.perf_counter()
        model.predict(row)
        timings.append((time.perf_counter() - started) * 1000)
    metrics = {
        "accuracy": round(float(accuracy_score(test_y, predicted)), 4),
        "f1": round(float(f1_score(test_y, predicted)), 4),
        "auc": round(float(roc_auc_score(test_y, scores)), 4),
        "latency_p95_ms": round(float(np.percentile(timings, 95)), 3),
    }
    print(f"{variant}: " + ", ".join(f"{k} {v}" for k, v in metrics.items()))
    if not mlflow_tracking_uri:
        return ("", {}, {}, metrics["accuracy"])

    import mlflow

    snapshots = {}
    if snapshot_root:
        # The data the model was built from, kept with its checksum for Gatekeeper to copy.
        folder = os.path.join(unquote(urlsplit(snapshot_root).path), "train")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "breast_cancer_train.csv")
        train_x.assign(label=train_y).to_csv(path, index=False)
        with open(path, "rb") as data:
            checksum = hashlib.sha256(data.read()).hexdigest()
        url = f"{snapshot_root.rstrip('/')}/train/breast_cancer_train.csv"
        snapshots["train"] = f"{url}#sha256={checksum}"

    mlflow.set_tracking_uri(mlflow_tracking_uri)
    mlflow.set_registry_uri(mlflow_tracking_uri)
    mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=variant):
        mlflow.log_params({"variant": variant, "features": len(columns), "C": model[-1].C})
        mlflow.log_metrics(metrics)
        if pipeline_spec_base64:
            # Base64: kfp.local would expand the placeholders ({{$}}) inside a spec passed as is.
            spec = base64.b64decode(pipeline_spec_base64).decode("utf-8")
            mlflow.log_text(spec, "pipeline/pipeline.yaml")
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=model_name,
            # Named here: inferring them would import and inspect the whole environment.
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    version = str(logged.registered_model_version)
    print(f"registered {model_name} v{version}")
    images = {"serving": serving_image} if serving_image else {}
    return (version, images, snapshots, metrics["accuracy"])


def training_pipeline(base_image: str) -> Any:
    """The pipeline, its components built on ``base_image`` (a reference by digest)."""
    # kfp is untyped; install_kfp_package=False: it is installed, and pip would only say so.
    options: dict[str, Any] = {"base_image": base_image, "install_kfp_package": False}
    train_step = dsl.component(**options)(train)
    request_step = dsl.component(**options)(request_promotion.python_func)

    @dsl.pipeline(  # type: ignore[untyped-decorator]
        name=PIPELINE_NAME,
        description="Train a breast-cancer classifier, register it, and request its promotion.",
    )
    def breast_cancer_training(
        mlflow_tracking_uri: str = "",
        model_name: str = "breast-cancer-classifier",
        variant: str = "challenger",
        snapshot_root: str = "",
        serving_image: str = "",
        target: str = "",
        pipeline_spec_base64: str = "",
    ) -> Outputs:
        trained = train_step(
            mlflow_tracking_uri=mlflow_tracking_uri,
            model_name=model_name,
            variant=variant,
            snapshot_root=snapshot_root,
            serving_image=serving_image,
            pipeline_spec_base64=pipeline_spec_base64,
        )
        with dsl.If(target != "", name="promotion-requested"):
            request_step(
                mlflow_tracking_uri=mlflow_tracking_uri,
                model_name=model_name,
                model_version=trained.outputs["version"],
                target=target,
                images=trained.outputs["images"],
                snapshots=trained.outputs["snapshots"],
                pipeline=PIPELINE_ARTIFACT,
            )
        return Outputs(trained.outputs["version"], trained.outputs["accuracy"])

    return breast_cancer_training


def compile_pipeline(base_image: str, path: str) -> str:
    """Compile the pipeline for ``base_image`` to ``path``; the YAML text."""
    compiler.Compiler().compile(training_pipeline(base_image), path)
    with open(path, encoding="utf-8") as compiled:
        return compiled.read()
