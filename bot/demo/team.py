"""Who is in the demo's workspace, and the gatekeeper.yaml the demo writes for them.

The people and the policy make the whole loop visible: a data scientist whose pipeline asks,
two approvers (one through a user group), one of whom may roll back, and an outsider whose
press is refused. Staging's gates are relative to the champion; production's are stricter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODEL = "breast-cancer-classifier"
TEAM = "T0GKDEMO1"
CHANNEL, CHANNEL_NAME = "C0MLDEMO1", "ml-models"
LEADS, LEADS_HANDLE = "S0MLLEADS", "ml-leads"
BOT_TOKEN = "xoxb-gatekeeper-demo"
WEBHOOK_SECRET_BYTES = 24


@dataclass(frozen=True)
class Member:
    user_id: str
    name: str
    role: str


REQUESTER = Member("U0DANA001", "dana", "data scientist (requester)")
LEAD = Member("U0LEA0001", "lea", "ML lead (approver, in @ml-leads)")
SRE = Member("U0SAM0001", "sam", "SRE (approver, may roll back)")
OUTSIDER = Member("U0OVID001", "ovid", "outsider")
PEOPLE = (REQUESTER, LEAD, SRE, OUTSIDER)

STAGING_GATES = (
    "accuracy >= 0.90",
    "accuracy >= champion - 0.005",
    "auc >= champion - 0.01",
    "latency_p95_ms <= 50",
)


@dataclass(frozen=True)
class Places:
    """Where each environment's pieces are: MLflow URLs, the registry host (None: no images),
    and the folder holding the snapshot stores."""

    mlflow: dict[str, str]
    registry: str | None
    root: Path

    def images(self, prefix: str) -> str:
        return f', images: "{self.registry}/{prefix}"' if self.registry else ""

    def snapshots(self, environment: str) -> str:
        return (self.root / "snapshots" / environment).as_uri()


def gatekeeper_yaml(places: Places, *, seed: bool = False) -> str:
    """The demo's gatekeeper.yaml; ``seed`` lets staging's gates approve by themselves, which
    is how the demo makes its first champion without anyone pressing a button."""
    staging_gates = ", ".join(f'"{gate}"' for gate in STAGING_GATES)
    staging_people = (
        "approvals: 0"
        if seed
        else f"approvals: 2\n    approvers: [{LEADS}, {SRE.user_id}]\n    self_approval: false\n"
        f"    rollback_by: [{SRE.user_id}]\n    expires_after: 72h\n    remind_after: 24h"
    )
    return f"""\
# Written by `gatekeeper demo`; every server named here runs on loopback until it stops.
environments:
  dev:        {{mlflow: "{places.mlflow["dev"]}"{places.images("dev")},
               snapshots: "{places.snapshots("dev")}"}}
  staging:    {{mlflow: "{places.mlflow["staging"]}"{places.images("stg")}, kfp: local,
               snapshots: "{places.snapshots("staging")}"}}
  production: {{mlflow: "{places.mlflow["production"]}"{places.images("prod")}, kfp: local,
               snapshots: "{places.snapshots("production")}"}}
promotion_path: [dev, staging, production]
models:
  {MODEL}: {{channel: {CHANNEL}, champion_alias: champion, owners: [{REQUESTER.user_id}]}}
policies:
  staging:
    gates: [{staging_gates}]
    {staging_people}
  production:
    gates: ["accuracy >= 0.95", "accuracy >= champion", "latency_p95_ms <= champion * 1.10"]
    approvals: 2
    approvers: [{LEADS}, {SRE.user_id}]
    self_approval: false
    rollback_by: [{SRE.user_id}]
    expires_after: 72h
slack: {{team_ids: [{TEAM}]}}
intake: {{request_alias: challenger}}
"""
