"""What one person's Slack window shows right now, as data the page's script lays out.

Each message, the thread, the modal on top and the Home tab come as keyed HTML fragments: the
script replaces a fragment only when its HTML changed, so a message the bot updates changes in
place and a half-typed modal keeps what was typed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.emulator.page.blocks import attr, render_blocks
from bot.emulator.page.directory import Directory, Person
from bot.emulator.page.mrkdwn import plain_html, to_html
from bot.emulator.records import JSON, Content, Ephemeral, Message, View
from bot.emulator.workspace import Workspace

WATCHED_KINDS_IGNORED = frozenset({"api_called", "response_url_posted", "view_state"})
"""Changes nobody sees: the page does not redraw for them."""


def screen(
    workspace: Workspace,
    people: Sequence[Person],
    viewer: str,
    channel: str | None,
    thread: str | None,
) -> dict[str, Any]:
    """Everything `viewer` sees with `channel` open (and the thread of `thread`, if given)."""
    version = workspace.version  # read first: a change while drawing brings another poll
    names = Directory.of(workspace, viewer)
    channels = _channels(workspace, viewer)
    shown_channel = channel if any(c["id"] == channel for c in channels) else None
    state: dict[str, Any] = {
        "version": version,
        "team": workspace.identity.team_name,
        "bot": workspace.identity.bot_name,
        "viewer": viewer,
        "people": [{"id": p.user_id, "name": p.name, "role": p.role} for p in people],
        "channels": channels,
        "channel": shown_channel,
        "messages": [],
        "thread": None,
        "modal": None,
        "home": None,
    }
    if shown_channel is not None:
        state["messages"] = _timeline(workspace, names, viewer, shown_channel)
        root = workspace.message(shown_channel, thread) if thread else None
        if root is not None and not root.is_reply:
            state["thread"] = {
                "ts": root.ts,
                "items": _thread(workspace, names, viewer, shown_channel, root),
            }
    modals = workspace.modals(viewer)
    if modals:
        top = modals[-1]
        state["modal"] = {"id": top.id, "html": modal_html(top, names)}
    home = workspace.home(viewer)
    if home is not None:
        state["home"] = {"id": home.id, "html": home_html(home, names)}
    return state


def _channels(workspace: Workspace, viewer: str) -> list[JSON]:
    shown: list[JSON] = []
    for channel in workspace.channels:
        if channel.is_im:
            if channel.im_user == viewer:
                shown.append({"id": channel.id, "name": workspace.identity.bot_name, "dm": True})
        elif channel.has_member(viewer) and not channel.is_archived:
            shown.append({"id": channel.id, "name": channel.name, "dm": False})
    return shown


def _timeline(workspace: Workspace, names: Directory, viewer: str, channel: str) -> list[JSON]:
    """The channel's messages and the viewer's own ephemerals outside threads, by time."""
    items = [(m.ts, f"m{m.ts}", message_html(m, names)) for m in workspace.messages(channel)]
    items += [
        (e.ts, f"e{e.ts}", ephemeral_html(e, names, workspace.identity.bot_name))
        for e in workspace.ephemerals(channel, viewer)
        if e.thread_ts is None
    ]
    return [{"key": key, "html": shown} for _, key, shown in sorted(items, key=_by_ts)]


def _thread(
    workspace: Workspace, names: Directory, viewer: str, channel: str, root: Message
) -> list[JSON]:
    items = [(root.ts, f"m{root.ts}", message_html(root, names, in_thread=True))]
    items += [
        (m.ts, f"m{m.ts}", message_html(m, names, in_thread=True))
        for m in workspace.thread(channel, root.ts)
    ]
    items += [
        (e.ts, f"e{e.ts}", ephemeral_html(e, names, workspace.identity.bot_name))
        for e in workspace.ephemerals(channel, viewer)
        if e.thread_ts == root.ts
    ]
    return [{"key": key, "html": shown} for _, key, shown in sorted(items, key=_by_ts)]


def _by_ts(item: tuple[str, str, str]) -> float:
    return float(item[0])


def _time(ts: str, names: Directory) -> str:
    when = datetime.fromtimestamp(float(ts), names.tz)
    return (
        f'<time class="message-time" datetime="{when.isoformat()}" '
        f'title="{when:%Y-%m-%d %H:%M:%S %Z}">{when:%H:%M}</time>'
    )


def _author(user: str, names: Directory, *, is_app: bool) -> str:
    name = names.users.get(user, user)
    badge = '<span class="app-badge">APP</span>' if is_app else ""
    return f'<span class="author">{html.escape(name)}</span>{badge}'


def _avatar(user: str, names: Directory) -> str:
    name = names.users.get(user, user) or "?"
    return f'<div class="avatar" aria-hidden="true">{html.escape(name[:1].upper())}</div>'


def content_html(content: Content, names: Directory) -> str:
    """What a message shows: its blocks when it has any (the text is then only a fallback)."""
    if content.blocks:
        shown = render_blocks(content.blocks, names)
    else:
        shown = f'<div class="message-text">{to_html(content.text, names)}</div>'
    for attachment in content.attachments or []:
        shown += _attachment(attachment, names)
    return shown


def message_html(message: Message, names: Directory, *, in_thread: bool = False) -> str:
    """A message in the channel (with its "N replies" link) or in the thread pane."""
    if message.tombstone:
        body = '<div class="message-text tombstone">This message was deleted.</div>'
        is_app = False
    else:
        body = content_html(message.content, names)
        is_app = message.bot_id is not None
    edited = '<span class="edited">(edited)</span>' if message.edited else ""
    replies = ""
    if message.replies and not in_thread:
        count = len(message.replies)
        replies = (
            f'<button type="button" class="replies" data-testid="replies" '
            f'data-thread-ts="{attr(message.ts)}">{count} '
            f"{'reply' if count == 1 else 'replies'}</button>"
        )
    broadcast = (
        '<div class="broadcast">replied to a thread</div>' if message.reply_broadcast else ""
    )
    reactions = "".join(
        f'<span class="reaction">{to_html(f":{name}:", names)} {len(users)}</span>'
        for name, users in message.reactions.items()
    )
    return (
        f'<div class="message" data-testid="message" data-surface="message" '
        f'data-channel="{attr(message.channel)}" data-ts="{attr(message.ts)}">'
        f'{_avatar(message.user, names)}<div class="message-body">'
        f'<div class="message-meta">{_author(message.user, names, is_app=is_app)}'
        f"{_time(message.ts, names)}{edited}</div>{broadcast}"
        f'<div class="message-content">{body}</div>'
        f"{f'<div class=reactions>{reactions}</div>' if reactions else ''}{replies}</div></div>"
    )


def ephemeral_html(ephemeral: Ephemeral, names: Directory, bot_name: str) -> str:
    """A message only the viewer sees, marked as Slack marks it."""
    author = "Slackbot" if ephemeral.via == "slack" else bot_name
    return (
        f'<div class="message ephemeral" data-testid="ephemeral" data-surface="message" '
        f'data-channel="{attr(ephemeral.channel)}" data-ts="{attr(ephemeral.ts)}">'
        '<div class="avatar" aria-hidden="true">👁</div><div class="message-body">'
        f'<div class="message-meta"><span class="author">{html.escape(author)}</span>'
        f"{_time(ephemeral.ts, names)}</div>"
        f'<div class="message-content">{content_html(ephemeral.content, names)}</div>'
        '<div class="ephemeral-note">Only visible to you</div></div></div>'
    )


_COLORS = {"good": "2eb67d", "warning": "ecb22e", "danger": "e01e5a"}


def _attachment(attachment: JSON, names: Directory) -> str:
    """A legacy attachment: its colour bar, texts, fields and blocks."""
    color = str(attachment.get("color", "")).lstrip("#")
    color = _COLORS.get(color, color)
    if not (color.isalnum() and len(color) in (3, 6)):
        color = "dddddd"
    parts = [
        f'<div class="att-{key}">{to_html(str(attachment[key]), names)}</div>'
        for key in ("pretext", "title", "text")
        if attachment.get(key)
    ]
    for field in attachment.get("fields", []) or []:
        parts.append(
            f'<div class="bk-field"><b>{plain_html(str(field.get("title", "")))}</b><br>'
            f"{to_html(str(field.get('value', '')), names)}</div>"
        )
    if attachment.get("blocks"):
        parts.append(render_blocks(attachment["blocks"], names))
    return f'<div class="attachment" style="border-left-color:#{color}">{"".join(parts)}</div>'


def modal_html(view: View, names: Directory) -> str:
    """The modal on top of the viewer's stack: title, blocks with inputs, close and submit."""
    definition = view.definition
    title = plain_html(str((definition.get("title") or {}).get("text", "")))
    close = plain_html(str((definition.get("close") or {}).get("text", "Cancel")))
    submit = definition.get("submit")
    submit_button = (
        f'<button type="button" class="bk-button bk-button-primary" data-testid="modal-submit">'
        f"{plain_html(str(submit.get('text', 'Submit')))}</button>"
        if isinstance(submit, dict)
        else ""
    )
    body = render_blocks(view.blocks, names, errors=view.errors, values=view.state_values)
    return (
        f'<div class="dialog modal" data-testid="modal" data-surface="view" '
        f'data-view-id="{attr(view.id)}" data-callback-id="{attr(view.callback_id)}" '
        'role="dialog" aria-modal="true">'
        f'<div class="modal-header"><h2 class="dialog-title" data-testid="modal-title">{title}</h2>'
        '<button type="button" class="modal-x" data-testid="modal-x" aria-label="Close">'
        "&times;</button>"
        f'</div><div class="modal-body">{body}</div>'
        '<div class="modal-error" data-testid="modal-error"></div>'
        '<div class="dialog-buttons">'
        f'<button type="button" class="bk-button" data-testid="modal-close">{close}</button>'
        f"{submit_button}</div></div>"
    )


def home_html(view: View, names: Directory) -> str:
    """The viewer's App Home tab as the bot last published it."""
    return (
        f'<div class="home" data-testid="home-tab" data-surface="view" '
        f'data-view-id="{attr(view.id)}">{render_blocks(view.blocks, names)}</div>'
    )
