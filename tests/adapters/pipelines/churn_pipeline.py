"""A tiny two-step churn pipeline that the KFP adapter's tests compile, pin and run with kfp.local."""

# No ``from __future__ import annotations`` here: KFP reads the parameter annotations as types.
from typing import NamedTuple

from kfp import dsl

#: Where the dev environment keeps the training image; the tests pin it to another environment's.
TRAIN_IMAGE = "127.0.0.1:5000/dev/churn-train@sha256:" + "a" * 64


# A real training image carries kfp itself, and kfp.local runs these in this virtualenv, which
# has it: installing it at run time would only cost time (and need a network).
@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def make_dataset(customers: int, dataset: dsl.Output[dsl.Dataset]) -> None:
    """Customers as [monthly minutes, churned]: fewer minutes, more churn, every 7th one noise."""
    import json

    rows = []
    for index in range(customers):
        minutes = index * 10
        churned = minutes < customers * 5
        rows.append([minutes, churned != (index % 7 == 3)])
    with open(dataset.path, "w") as file:
        json.dump(rows, file)
    dataset.metadata["rows"] = len(rows)


@dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)
def train_threshold(
    dataset: dsl.Input[dsl.Dataset], fail: bool, metrics: dsl.Output[dsl.Metrics]
) -> float:
    """The minutes threshold below which a customer churns, chosen for accuracy."""
    import json

    if fail:
        raise RuntimeError("training data rejected: asked to fail")
    with open(dataset.path) as file:
        rows = json.load(file)

    def accuracy(threshold: int) -> float:
        return sum((minutes < threshold) == churned for minutes, churned in rows) / len(rows)

    best = max(range(0, rows[-1][0] + 20, 10), key=accuracy)
    print(f"threshold {best} minutes, accuracy {accuracy(best):.3f}")
    metrics.log_metric("accuracy", accuracy(best))
    metrics.log_metric("threshold_minutes", best)
    return accuracy(best)


class ChurnOutputs(NamedTuple):
    accuracy: float
    metrics: dsl.Metrics


@dsl.pipeline(name="churn-classifier", description="Train the churn threshold model.")
def churn_pipeline(customers: int = 20, fail: bool = False) -> ChurnOutputs:
    dataset = make_dataset(customers=customers)
    trained = train_threshold(dataset=dataset.outputs["dataset"], fail=fail)
    return ChurnOutputs(accuracy=trained.outputs["Output"], metrics=trained.outputs["metrics"])
