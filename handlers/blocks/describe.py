"""How a candidate reads in words, the same on the card, in the details modal and on App Home."""

from __future__ import annotations

import math

from bot.domain.candidates import ImageRef, Snapshot
from bot.domain.errors import InvalidGate
from bot.domain.gates import GateOutcome, parse_gate
from bot.domain.policy import VerdictKind
from bot.domain.promotion import CandidateState
from bot.services.views import CandidateSummary, GateLine
from handlers.blocks.mrkdwn import clip, code, escape, mention, plural

S = CandidateState

STATE: dict[CandidateState, str] = {
    S.PENDING: "⏳ pending",
    S.BLOCKED: "⛔ blocked",
    S.APPROVED: "👍 approved",
    S.REJECTED: "🚫 rejected",
    S.EXPIRED: "⌛ expired",
    S.PROMOTING: "🚚 promoting",
    S.PROMOTED: "🚀 promoted",
    S.FAILED: "💥 failed and rolled back",
    S.ROLLED_BACK: "↩️ rolled back",
}

VERDICT: dict[VerdictKind, str] = {
    VerdictKind.AUTO_APPROVE: "🤖 passes; the policy approves",
    VerdictKind.NEEDS_APPROVAL: "🙋 passes; needs approval",
    VerdictKind.BLOCKED: "⛔ blocked",
}

GATE: dict[GateOutcome, str] = {
    GateOutcome.PASSED: "✅",
    GateOutcome.FAILED: "❌",
    GateOutcome.MISSING_METRIC: "❌",
    # Nothing to compare with: the policy decides whether that blocks, the reasons say which.
    GateOutcome.NO_CHAMPION: "⚠️",
    GateOutcome.CHAMPION_MISSING_METRIC: "⚠️",
}

MINUS = "\N{MINUS SIGN}"


def title(summary: CandidateSummary) -> str:
    """``churn-classifier v7``, as plain text (headers, modal titles)."""
    return f"{summary.model} v{summary.version}"


def route(summary: CandidateSummary) -> str:
    return f"{code(summary.source_env)} → {code(summary.target_env)}"


def requester(summary: CandidateSummary) -> str:
    who = mention(summary.requester) if summary.requester else "a pipeline"
    if summary.author and summary.author != summary.requester:
        who += f" · built by {mention(summary.author)}"
    return who


def state(summary: CandidateSummary) -> str:
    words = STATE[summary.state]
    return f"{words}: {escape(summary.reason)}" if summary.reason else words


def status(summary: CandidateSummary) -> str:
    """What the candidate waits for or came to, in a few words, for fallback text."""
    match summary.state:
        case S.PENDING:
            missing = summary.missing_approvals
            if missing == 0:
                return "pending"
            if not summary.approvals:
                return f"needs {plural(missing, 'approval')}"
            return f"needs {missing} more approval{'' if missing == 1 else 's'}"
        case S.BLOCKED:
            first = summary.reasons[0] if summary.reasons else "see the card"
            rest = len(summary.reasons) - 1
            return f"blocked: {first}" + (f" (and {rest} more)" if rest > 0 else "")
        case S.REJECTED if summary.rejection is not None:
            return f"rejected by {mention(summary.rejection.voter)}"
        case S.APPROVED:
            return "approved; promotion starts shortly"
    return STATE[summary.state].split(" ", 1)[1]


def fallback(summary: CandidateSummary, limit: int = 500) -> str:
    """``churn-classifier v7: staging → production — needs 2 approvals``."""
    line = f"{title(summary)}: {summary.source_env} → {summary.target_env} — {status(summary)}"
    return clip(escape(line), limit)


def gated_metrics(summary: CandidateSummary) -> list[str]:
    """The metrics the gates judge, in gate order: a reader looks at these first."""
    names: list[str] = []
    for line in summary.gates:
        try:
            metric = parse_gate(line.gate).metric
        except InvalidGate:
            continue
        if metric in summary.metrics and metric not in names:
            names.append(metric)
    return names


def metric_lines(summary: CandidateSummary) -> list[str]:
    """One line a metric, gated ones first: ``accuracy 0.931 (+0.006 vs champion v5)``."""
    first = gated_metrics(summary)
    order = first + sorted(m for m in summary.metrics if m not in first)
    return [f"• {escape(m)} {summary.metrics[m]:.6g} ({delta(summary, m)})" for m in order]


def delta(summary: CandidateSummary, metric: str) -> str:
    """The candidate's value against the champion's: ``+0.006 vs champion v5``."""
    if summary.champion_metrics is None:
        return "no champion"
    champion = f"champion v{summary.champion_version}" if summary.champion_version else "champion"
    if metric not in summary.champion_metrics:
        return f"{escape(champion)} has none"
    ours, theirs = summary.metrics[metric], summary.champion_metrics[metric]
    diff = ours - theirs
    if math.isnan(diff):
        return f"vs {escape(champion)} {theirs:.6g}"
    if math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12):
        return f"±0 vs {escape(champion)}"
    sign = "+" if diff > 0 else MINUS
    return f"{sign}{abs(diff):.6g} vs {escape(champion)}"


def gate_line(line: GateLine) -> str:
    """``✅ accuracy >= 0.9: accuracy 0.931 passes against 0.9``."""
    return f"{GATE[line.outcome]} {escape(line.explanation or line.gate)}"


def approvals(summary: CandidateSummary) -> str:
    """``1 of 2 approvals: <@U0LEAD001>``."""
    if summary.approvals_required == 0 and not summary.approvals:
        return "No approvals needed: the policy approves by itself"
    line = f"{len(summary.approvals)} of {plural(summary.approvals_required, 'approval')}"
    if summary.approvals:
        line += ": " + ", ".join(mention(voter) for voter in summary.approvals)
    return line


def image_line(name: str, image: ImageRef, *, full: bool = False) -> str:
    """``serving  `127.0.0.1:5000/dev/churn-serving@sha256:abc123def456```."""
    digest = image.digest if full else f"sha256:{image.short_digest}"
    return f"• {escape(name)}  {code(f'{image.registry}/{image.repository}@{digest}')}"


def snapshot_line(name: str, snapshot: Snapshot, *, full: bool = False) -> str:
    if full:
        return f"• {escape(name)}  {code(snapshot.url)}  {code('sha256:' + snapshot.sha256)}"
    return f"• {escape(name)}  {code('sha256:' + snapshot.sha256[:12])}"
