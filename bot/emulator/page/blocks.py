"""Block Kit as HTML, close enough to Slack's client to read a card the way an approver reads it.

Every piece of text goes through `mrkdwn.to_html` or `mrkdwn.plain_html`, every attribute
through `html.escape`; the page's script inserts only what this module writes. Interactive
elements carry `data-action-id`/`data-block-id`, which the script sends back on a press; a
confirm object travels beside its button in a `<template>` the script shows before sending.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from bot.emulator.page.directory import Directory
from bot.emulator.page.mrkdwn import plain_html, safe_url, to_html

JSON = dict[str, Any]
_TEXT_INPUTS = {
    "plain_text_input": "text",
    "email_text_input": "email",
    "url_text_input": "url",
    "number_input": "number",
}


def attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def text(obj: object, names: Directory) -> str:
    """A text object (`plain_text` or `mrkdwn`) as HTML; anything else shows nothing."""
    if not isinstance(obj, Mapping):
        return ""
    raw = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return to_html(raw, names)
    return plain_html(raw, emoji_codes=obj.get("emoji", True) is not False)


def render_blocks(
    blocks: list[JSON],
    names: Directory,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> str:
    """A message's or a view's blocks; `errors` and `values` (a view's state) fill inputs."""
    return "".join(
        _block(block, names, errors or {}, values or {})
        for block in blocks
        if isinstance(block, Mapping)
    )


def _block(
    block: JSON, names: Directory, errors: Mapping[str, str], values: Mapping[str, Any]
) -> str:
    kind = str(block.get("type", ""))
    block_id = attr(block.get("block_id", ""))
    opening = (
        f'<div class="bk-{attr(kind)}" data-block-id="{block_id}" data-block-type="{attr(kind)}">'
    )
    match kind:
        case "header":
            body = f'<h3 class="bk-header-text">{text(block.get("text"), names)}</h3>'
        case "section":
            body = _section(block, names)
        case "context":
            body = "".join(_context_element(e, names) for e in block.get("elements", []))
        case "divider":
            return '<hr class="bk-divider" data-block-type="divider">'
        case "actions":
            body = "".join(_element(e, names) for e in block.get("elements", []))
        case "image":
            title = block.get("title")
            body = _image(block) + (
                f"<figcaption>{text(title, names)}</figcaption>" if title else ""
            )
        case "input":
            body = _input(block, names, errors, values)
        case "rich_text":
            body = _rich_text(block, names)
        case _:
            body = _unsupported(f"{kind or 'nameless'} block")
    return f"{opening}{body}</div>"


def _section(block: JSON, names: Directory) -> str:
    parts = []
    if block.get("text"):
        parts.append(f'<div class="bk-text">{text(block["text"], names)}</div>')
    fields = block.get("fields") or []
    if fields:
        cells = "".join(f'<div class="bk-field">{text(f, names)}</div>' for f in fields)
        parts.append(f'<div class="bk-fields">{cells}</div>')
    body = f'<div class="bk-section-body">{"".join(parts)}</div>'
    accessory = block.get("accessory")
    if isinstance(accessory, Mapping):
        body += f'<div class="bk-accessory">{_element(accessory, names)}</div>'
    return body


def _context_element(element: object, names: Directory) -> str:
    if isinstance(element, Mapping) and element.get("type") == "image":
        return f'<span class="bk-context-item">{_image(element, small=True)}</span>'
    return f'<span class="bk-context-item">{text(element, names)}</span>'


def _image(image: Mapping[str, Any], *, small: bool = False) -> str:
    alt = attr(image.get("alt_text", ""))
    url = safe_url(str(image.get("image_url", "")))
    if url is None:
        return f'<span class="bk-image-missing">[{alt}]</span>'
    size = ' class="bk-context-image"' if small else ' class="bk-image"'
    return f'<img{size} src="{attr(url)}" alt="{alt}" loading="lazy" referrerpolicy="no-referrer">'


def _element(element: object, names: Directory) -> str:
    if not isinstance(element, Mapping):
        return ""
    kind = str(element.get("type", ""))
    if kind == "button":
        return _button(element, names)
    if kind == "image":
        return _image(element, small=True)
    return _unsupported(f"{kind} element")


def _button(button: Mapping[str, Any], names: Directory) -> str:
    action_id = attr(button.get("action_id", ""))
    style = str(button.get("style", ""))
    classes = "bk-button" + (f" bk-button-{attr(style)}" if style in ("primary", "danger") else "")
    label = text(button.get("text"), names)
    url = safe_url(str(button.get("url", ""))) if button.get("url") else None
    extra = f' data-url="{attr(url)}"' if url else ""
    confirm = button.get("confirm")
    shown = (
        f'<button type="button" class="{classes}" data-testid="button" data-action-id="{action_id}"'
        f'{extra} data-confirm="{"yes" if confirm else "no"}">{label}</button>'
    )
    if isinstance(confirm, Mapping):
        shown += f'<template class="bk-confirm">{_confirm(confirm, names)}</template>'
    return f'<span class="bk-button-wrap">{shown}</span>'


def _confirm(confirm: Mapping[str, Any], names: Directory) -> str:
    """The "are you sure?" dialog a button's confirm object asks Slack to show first."""
    yes = text(confirm.get("confirm"), names) or "Yes"
    no = text(confirm.get("deny"), names) or "Cancel"
    style = "bk-button-danger" if confirm.get("style") == "danger" else "bk-button-primary"
    return (
        '<div class="dialog confirm" data-testid="confirm-dialog" role="dialog" aria-modal="true">'
        f'<h2 class="dialog-title">{text(confirm.get("title"), names)}</h2>'
        f'<div class="dialog-body">{text(confirm.get("text"), names)}</div>'
        '<div class="dialog-buttons">'
        f'<button type="button" class="bk-button" data-testid="confirm-no">{no}</button>'
        f'<button type="button" class="bk-button {style}" data-testid="confirm-yes">{yes}</button>'
        "</div></div>"
    )


def _input(
    block: JSON, names: Directory, errors: Mapping[str, str], values: Mapping[str, Any]
) -> str:
    block_id = str(block.get("block_id", ""))
    element = block.get("element") if isinstance(block.get("element"), Mapping) else {}
    assert isinstance(element, Mapping)
    action_id = str(element.get("action_id", ""))
    optional = bool(block.get("optional"))
    label = text(block.get("label"), names)
    field_id = attr(f"input-{block_id}-{action_id}")
    state = values.get(block_id, {}).get(action_id, {}) if isinstance(values, Mapping) else {}
    field = _field(element, field_id, state, names)
    hint = (
        f'<div class="bk-hint">{text(block.get("hint"), names)}</div>' if block.get("hint") else ""
    )
    error = errors.get(block_id, "")
    return (
        f'<label class="bk-label" for="{field_id}">{label}'
        f"{' <span class=bk-optional>(optional)</span>' if optional else ''}</label>"
        f"{field}{hint}"
        f'<div class="bk-input-error" data-testid="input-error" data-block-id="{attr(block_id)}">'
        f"{html.escape(error)}</div>"
    )


def _field(element: Mapping[str, Any], field_id: str, state: Any, names: Directory) -> str:
    kind = str(element.get("type", ""))
    action_id = attr(element.get("action_id", ""))
    common = f'id="{field_id}" data-input="{attr(kind)}" data-action-id="{action_id}"'
    placeholder = element.get("placeholder")
    if placeholder:
        common += f' placeholder="{attr(placeholder.get("text", ""))}"'
    if kind in _TEXT_INPUTS:
        given = state.get("value") if isinstance(state, Mapping) else None
        value = given if given is not None else element.get("initial_value") or ""
        for key, name in (("min_length", "minlength"), ("max_length", "maxlength")):
            if isinstance(element.get(key), int):
                common += f' {name}="{element[key]}"'
        if element.get("multiline"):
            return f"<textarea {common} rows=4>{html.escape(str(value))}</textarea>"
        return f'<input type="{_TEXT_INPUTS[kind]}" {common} value="{attr(value)}">'
    if kind == "static_select":
        chosen = (state.get("selected_option") if isinstance(state, Mapping) else None) or (
            element.get("initial_option") or {}
        )
        options = ['<option value="">Select an item</option>']
        for option in element.get("options", []):
            value = str(option.get("value", ""))
            selected = " selected" if value == chosen.get("value") else ""
            label = text(option.get("text"), names)
            options.append(f'<option value="{attr(value)}"{selected}>{label}</option>')
        return f"<select {common}>{''.join(options)}</select>"
    return _unsupported(f"{kind} input")


def _rich_text(block: JSON, names: Directory) -> str:
    """Rich text as people type it: sections of text, links and mentions (the common part)."""
    out = []
    for part in block.get("elements", []):
        inner = []
        for element in part.get("elements", []) if isinstance(part, Mapping) else []:
            kind = element.get("type")
            if kind == "text":
                inner.append(plain_html(str(element.get("text", "")), emoji_codes=False))
            elif kind == "link":
                inner.append(
                    to_html(f"<{element.get('url', '')}|{element.get('text', '')}>", names)
                )
            elif kind == "user":
                inner.append(to_html(f"<@{element.get('user_id', '')}>", names))
            elif kind == "emoji":
                inner.append(to_html(f":{element.get('name', '')}:", names))
        out.append(f"<div>{''.join(inner)}</div>")
    return "".join(out)


def _unsupported(what: str) -> str:
    return (
        f'<span class="bk-unsupported">[{html.escape(what)}: not shown by the emulator page]</span>'
    )
