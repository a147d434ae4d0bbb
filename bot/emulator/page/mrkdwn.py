"""Slack's mrkdwn as HTML that is safe to put in a page: every character of text is escaped.

Slack escapes `&`, `<` and `>` in message text and uses `<…>` for links, mentions and dates.
Code and control sequences are taken out first (code is not formatted; a control sequence is
one unit), the rest is decoded to what a person reads and HTML-escaped, and only then are
`*bold*`, `_italic_`, `~strike~`, quotes and line breaks turned into tags. Nothing the text
says can become markup: the only tags are the ones written here, and the only URLs in them
are http(s) or mailto.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from bot.emulator.page.directory import Directory

_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_HOLE = "\x00"
_CODE_BLOCK = re.compile(r"```\n?(.*?)```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
_CONTROL = re.compile(r"<([^<>\n]+)>")
_HOLE_REF = re.compile(_HOLE + r"(\d+)" + _HOLE)
# Slack formats only at word edges: `snake_case_names` stay as they are.
_EMPHASIS = [
    (re.compile(rf"(?<![\w{m}]){m}(?=\S)([^{m}\n]*?\S){m}(?![\w{m}])"), tag)
    for m, tag in ((r"\*", "b"), ("_", "i"), ("~", "s"))
]
_EMOJI = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "warning": "⚠️",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "rocket": "🚀",
    "tada": "🎉",
    "rotating_light": "🚨",
    "vertical_traffic_light": "🚦",
    "leftwards_arrow_with_hook": "↩️",
    "arrow_right": "➡️",
    "eyes": "👀",
    "wave": "👋",
    "thumbsup": "👍",
    "+1": "👍",
    "thumbsdown": "👎",
    "-1": "👎",
    "information_source": "\u2139\ufe0f",
    "bulb": "💡",
    "lock": "🔒",
    "gear": "⚙️",
    "package": "📦",
    "clock3": "🕒",
    "bell": "🔔",
    "construction": "🚧",
    "fire": "🔥",
}
_SHORTCODE = re.compile(r":([a-z0-9_+-]+):")


def emoji(text: str) -> str:
    """`:name:` shortcodes Slack would draw, as the characters (unknown ones stay as typed)."""
    return _SHORTCODE.sub(lambda m: _EMOJI.get(m.group(1), m.group(0)), text)


def plain_html(text: str, *, emoji_codes: bool = True) -> str:
    """A `plain_text` object's text: shown exactly as written, shortcodes drawn if asked."""
    return html.escape(emoji(text) if emoji_codes else text).replace("\n", "<br>")


def slack_unescape(text: str) -> str:
    """What a person reads for Slack-escaped text (`&lt;` is `<`, and so on)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def safe_url(url: str) -> str | None:
    """`url` if it may go into an `href` or `src`, else None (`javascript:` and the like)."""
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in _SAFE_SCHEMES else None


def to_html(text: str, names: Directory | None = None) -> str:
    """mrkdwn as HTML: formatting, links, mentions, dates, code, quotes and line breaks."""
    names = names or Directory()
    holes: list[str] = []

    def hold(fragment: str) -> str:
        holes.append(fragment)
        return f"{_HOLE}{len(holes) - 1}{_HOLE}"

    text = text.replace(_HOLE, "")
    text = _CODE_BLOCK.sub(lambda m: hold(_pre(m.group(1))), text)
    text = _CODE.sub(lambda m: hold(f"<code>{_literal(m.group(1))}</code>"), text)
    text = _CONTROL.sub(lambda m: hold(_control(m.group(1), names)), text)
    shown = html.escape(emoji(slack_unescape(text)), quote=False)
    for pattern, tag in _EMPHASIS:
        shown = pattern.sub(rf"<{tag}>\1</{tag}>", shown)
    shown = _lines(shown)
    while _HOLE_REF.search(shown):  # a control sequence may hold code: fill holes in holes
        shown = _HOLE_REF.sub(lambda m: holes[int(m.group(1))], shown)
    return shown.replace(_HOLE, "")


def _literal(text: str) -> str:
    return html.escape(slack_unescape(text))


def _pre(text: str) -> str:
    return f"<pre>{_literal(text)}</pre>"


def _lines(shown: str) -> str:
    """Line breaks, and `>` lines grouped into block quotes (`>` is `&gt;` once escaped)."""
    out: list[str] = []
    quoted: list[str] = []
    for line in shown.split("\n"):
        if line.startswith("&gt;"):
            quoted.append(line.removeprefix("&gt;").removeprefix(" "))
            continue
        if quoted:
            out.append("<blockquote>" + "<br>".join(quoted) + "</blockquote>")
            quoted = []
        out.append(line)
    if quoted:
        out.append("<blockquote>" + "<br>".join(quoted) + "</blockquote>")
    joined = ""
    for index, part in enumerate(out):
        if (
            index
            and not part.startswith("<blockquote>")
            and not out[index - 1].endswith("</blockquote>")
        ):
            joined += "<br>"
        joined += part
    return joined


def _control(inner: str, names: Directory) -> str:
    """One `<…>` sequence: a mention, a special mention, a date, or a link."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        user = target[1:]
        name = names.users.get(user) or label.lstrip("@") or user
        return _mention("@" + name, "user", user)
    if target.startswith("#"):
        channel = target[1:]
        name = names.channels.get(channel) or label.lstrip("#") or channel
        return _mention("#" + name, "channel", channel)
    if target.startswith("!subteam^"):
        group = target.removeprefix("!subteam^")
        name = names.usergroups.get(group) or label.lstrip("@") or group
        return _mention("@" + name, "usergroup", group)
    if target.startswith("!date^"):
        return _date(target, label, names)
    if target in ("!here", "!channel", "!everyone"):
        return _mention("@" + target[1:], "special", target[1:])
    url = safe_url(slack_unescape(target))
    if url is None:
        return _literal("<" + inner + ">")
    shown = _literal(label) if label else html.escape(url)
    return (
        f'<a href="{html.escape(url, quote=True)}" target="_blank" '
        f'rel="noopener noreferrer">{shown}</a>'
    )


def _mention(text: str, kind: str, slack_id: str) -> str:
    return (
        f'<span class="mention" data-mention="{kind}" '
        f'data-id="{html.escape(slack_id, quote=True)}">{html.escape(text)}</span>'
    )


def _date(target: str, fallback: str, names: Directory) -> str:
    """`<!date^unix^tokens|fallback>` in the viewer's timezone, as Slack shows it."""
    parts = target.split("^")
    try:
        when = datetime.fromtimestamp(int(parts[1]), names.tz)
    except (IndexError, ValueError, OverflowError, OSError):
        return _literal(fallback)
    tokens = parts[2] if len(parts) > 2 else ""
    now = datetime.now(names.tz)
    shown = re.sub(r"\{(\w+)\}", lambda m: _date_token(m.group(1), when, now), tokens)
    return (
        f'<time datetime="{when.isoformat()}" title="{html.escape(fallback, quote=True)}">'
        f"{html.escape(shown)}</time>"
    )


def _date_token(token: str, when: datetime, now: datetime) -> str:
    day = f"{when.day}{_ordinal(when.day)}"
    pretty = _relative_day(when, now)
    formats = {
        "date_num": when.strftime("%Y-%m-%d"),
        "date": f"{when:%B} {day}, {when.year}",
        "date_short": f"{when:%b} {when.day}, {when.year}",
        "date_long": f"{when:%A}, {when:%B} {day}, {when.year}",
        "time": when.strftime("%H:%M"),
        "time_secs": when.strftime("%H:%M:%S"),
        "ago": ago(when, now),
    }
    formats["date_pretty"] = pretty or formats["date"]
    formats["date_short_pretty"] = pretty or formats["date_short"]
    formats["date_long_pretty"] = pretty or formats["date_long"]
    return formats.get(token, "{" + token + "}")


def _ordinal(day: int) -> str:
    if 10 <= day % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _relative_day(when: datetime, now: datetime) -> str | None:
    days = (now.date() - when.date()).days
    return {0: "today", 1: "yesterday", -1: "tomorrow"}.get(days)


def ago(when: datetime, now: datetime) -> str:
    """Slack's `{ago}`: "3 minutes ago", "in 2 hours"."""
    seconds = (now - when) / timedelta(seconds=1)
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            phrase = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {phrase}" if future else f"{phrase} ago"
    return "in a few seconds" if future else "a few seconds ago"
