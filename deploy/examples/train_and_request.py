"""A training pipeline whose last step asks Gatekeeper to promote what it registered.

It trains a small classifier on a dataset that ships with scikit-learn, keeps the training data
as a snapshot with its checksum, logs and registers the model in the dev environment's MLflow,
then runs ``request_promotion``: the bundle tags go on the new version, ``gatekeeper.promote``
last, and Gatekeeper's intake turns the request into a candidate card in Slack.

Compile it (needs kfp and gatekeeper installed where you compile, not in the cluster)::

    python deploy/examples/train_and_request.py train_and_request.yaml

``snapshot_root`` must be a ``file://`` URL here; on a cluster, write the data to the snapshot
store your environment names in gatekeeper.yaml (s3://, gs:// ...) the same way.
"""

# No ``from __future__ import annotations`` here: KFP reads the parameter annotations as types.
import sys
from typing import NamedTuple

from kfp import compiler, dsl

from bot.kfp_components import MLFLOW_PACKAGE, request_promotion


@dsl.component(base_image="python:3.11", packages_to_install=["scikit-learn~=1.9", MLFLOW_PACKAGE])
def train(mlflow_tracking_uri: str, model_name: str, snapshot_root: str) -> NamedTuple(
    "Trained", [("version", str), ("snapshot", str)]
):
    """Fit a logistic regression, log its accuracy and the model, register a version."""
    # Inside the function: the cluster runs only this function's source.
    import hashlib
    import os
    from collections import namedtuple
    from urllib.parse import urlsplit

    import mlflow
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_breast_cancer(return_X_y=True, as_frame=True)
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.25, random_state=7
    )

    # The data the model was built from, as a snapshot Gatekeeper copies with the model.
    folder = urlsplit(snapshot_root).path
    os.makedirs(folder, exist_ok=True)
    data_path = os.path.join(folder, "breast_cancer_train.csv")
    train_x.assign(label=train_y).to_csv(data_path, index=False)
    with open(data_path, "rb") as data:
        checksum = hashlib.sha256(data.read()).hexdigest()

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(train_x, train_y)
    accuracy = float(model.score(test_x, test_y))

    mlflow.set_tracking_uri(mlflow_tracking_uri)
    mlflow.set_experiment(model_name)
    with mlflow.start_run():
        mlflow.log_metric("accuracy", accuracy)
        logged = mlflow.sklearn.log_model(model, name="model", registered_model_name=model_name)
    version = str(logged.registered_model_version)
    print(f"registered {model_name} v{version}, accuracy {accuracy:.3f}")
    trained = namedtuple("Trained", ["version", "snapshot"])
    return trained(version, f"file://{data_path}#sha256={checksum}")


@dsl.pipeline(
    name="train-and-request",
    description="Train a classifier, register it in MLflow, and request its promotion.",
)
def train_and_request(
    mlflow_tracking_uri: str,
    serving_image: str,
    snapshot_root: str,
    model_name: str = "churn-classifier",
    target: str = "staging",
) -> None:
    trained = train(
        mlflow_tracking_uri=mlflow_tracking_uri,
        model_name=model_name,
        snapshot_root=snapshot_root,
    )
    request_promotion(
        mlflow_tracking_uri=mlflow_tracking_uri,
        model_name=model_name,
        model_version=trained.outputs["version"],
        target=target,
        images={"serving": serving_image},
        snapshots={"train": trained.outputs["snapshot"]},
    )


if __name__ == "__main__":
    compiler.Compiler().compile(
        train_and_request, sys.argv[1] if len(sys.argv) > 1 else "train_and_request.yaml"
    )
