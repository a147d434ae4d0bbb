"""How the emulator's page renders mrkdwn and Block Kit: readable as Slack shows it, and inert."""

from __future__ import annotations

from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.emulator.page.blocks import render_blocks
from bot.emulator.page.directory import Directory
from bot.emulator.page.mrkdwn import to_html

NAMES = Directory(
    users={"U0LEAD001": "lea"},
    channels={"C0ML00001": "ml-models"},
    usergroups={"S0MLLEADS": "ml-leads"},
    tz=ZoneInfo("Europe/Berlin"),
)
MENTION = '<span class="mention" data-mention="{kind}" data-id="{id}">{text}</span>'


@pytest.mark.parametrize(
    ("mrkdwn", "shown"),
    [
        ("*Promotion*\nstaging", "<b>Promotion</b><br>staging"),
        ("_soft_ and ~gone~", "<i>soft</i> and <s>gone</s>"),
        ("churn_classifier_v2 stays", "churn_classifier_v2 stays"),
        ("2*3*4 and a * b *", "2*3*4 and a * b *"),
        ("`accuracy >= 0.9`", "<code>accuracy &gt;= 0.9</code>"),
        ("`*not bold*`", "<code>*not bold*</code>"),
        ("```line 1\n*line* 2```", "<pre>line 1\n*line* 2</pre>"),
        ("a &lt;b&gt; &amp; c", "a &lt;b&gt; &amp; c"),
        ('say "hi"', 'say "hi"'),
        ("&gt; quoted\n&gt; twice\nafter", "<blockquote>quoted<br>twice</blockquote>after"),
        (
            "<https://mlflow.example/x?a=1&amp;b=2|the run>",
            '<a href="https://mlflow.example/x?a=1&amp;b=2" target="_blank" '
            'rel="noopener noreferrer">the run</a>',
        ),
        ("<javascript:alert(1)|click>", "&lt;javascript:alert(1)|click&gt;"),
        ("<@U0LEAD001>", MENTION.format(kind="user", id="U0LEAD001", text="@lea")),
        ("<@U0NOBODY>", MENTION.format(kind="user", id="U0NOBODY", text="@U0NOBODY")),
        ("<#C0ML00001>", MENTION.format(kind="channel", id="C0ML00001", text="#ml-models")),
        (
            "<!subteam^S0MLLEADS>",
            MENTION.format(kind="usergroup", id="S0MLLEADS", text="@ml-leads"),
        ),
        ("<!here>", MENTION.format(kind="special", id="here", text="@here")),
        (
            "*<@U0LEAD001>*",
            "<b>" + MENTION.format(kind="user", id="U0LEAD001", text="@lea") + "</b>",
        ),
        (":no_entry_sign: denied", "🚫 denied"),
        (":not_an_emoji:", ":not_an_emoji:"),
        (
            "<!date^1764230400^{date_num} {time}|2025-11-27 08:00 UTC>",
            '<time datetime="2025-11-27T09:00:00+01:00" title="2025-11-27 08:00 UTC">'
            "2025-11-27 09:00</time>",
        ),
        ("<!date^nonsense^{time}|fallback>", "fallback"),
    ],
)
def test_mrkdwn_basics(mrkdwn: str, shown: str) -> None:
    assert to_html(mrkdwn, NAMES) == shown


def test_text_that_looks_like_html_is_shown_as_text() -> None:
    shown = to_html('<script>alert(1)</script> <img src=x onerror="alert(2)">', NAMES)
    assert shown == (
        "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=&quot;alert(2)&quot;&gt;"
    )


class _Tags(HTMLParser):
    """Every tag and attribute in a fragment, as a browser would parse it."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


ALLOWED = {
    "b": set(),
    "i": set(),
    "s": set(),
    "code": set(),
    "pre": set(),
    "br": set(),
    "blockquote": set(),
    "time": {"datetime", "title"},
    "span": {"class", "data-mention", "data-id"},
    "a": {"href", "target", "rel"},
}


@given(
    st.text(alphabet=st.sampled_from(list("<>&\"'`*_~|!^@#:/ \nabcUC0=;()javscrpt")), max_size=80)
)
def test_no_text_can_make_markup_of_its_own(text: str) -> None:
    parser = _Tags()
    parser.feed(to_html(text, NAMES))
    for tag, attrs in parser.tags:
        assert tag in ALLOWED
        assert set(attrs) <= ALLOWED[tag]
        if tag == "a":
            assert str(attrs["href"]).startswith(("http:", "https:", "mailto:"))


CARD = [
    {"type": "header", "block_id": "h", "text": {"type": "plain_text", "text": "churn <v7>"}},
    {
        "type": "section",
        "block_id": "facts",
        "fields": [
            {"type": "mrkdwn", "text": "*Promotion*\n`staging` → `production`"},
            {"type": "mrkdwn", "text": "*Requested by*\n<@U0LEAD001>"},
        ],
    },
    {"type": "divider", "block_id": "d"},
    {"type": "context", "block_id": "c", "elements": [{"type": "mrkdwn", "text": "Candidate #1"}]},
    {
        "type": "actions",
        "block_id": "candidate.actions",
        "elements": [
            {
                "type": "button",
                "action_id": "candidate.approve",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
                "confirm": {
                    "title": {"type": "plain_text", "text": "Approve for production?"},
                    "text": {"type": "mrkdwn", "text": "*churn v7* goes on"},
                    "confirm": {"type": "plain_text", "text": "Approve"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
            {
                "type": "button",
                "action_id": "candidate.reject",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Reject"},
            },
        ],
    },
]


def test_a_card_renders_header_fields_divider_context_and_styled_buttons() -> None:
    shown = render_blocks(CARD, NAMES)
    assert '<h3 class="bk-header-text">churn &lt;v7&gt;</h3>' in shown
    assert shown.count('<div class="bk-field">') == 2
    assert "<b>Requested by</b><br>" in shown
    assert '<hr class="bk-divider"' in shown
    assert '<span class="bk-context-item">Candidate #1</span>' in shown
    assert 'class="bk-button bk-button-primary" data-testid="button" ' in shown
    assert 'data-action-id="candidate.approve" data-confirm="yes">Approve</button>' in shown
    assert 'class="bk-button bk-button-danger"' in shown
    assert 'data-action-id="candidate.reject" data-confirm="no">Reject</button>' in shown
    confirm = shown[shown.index("<template") : shown.index("</template>")]
    assert "Approve for production?" in confirm
    assert "<b>churn v7</b> goes on" in confirm
    assert 'data-block-id="candidate.actions"' in shown


def test_an_input_shows_what_was_typed_and_the_error_beside_it() -> None:
    blocks = [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {
                "type": "plain_text_input",
                "action_id": "text",
                "multiline": True,
                "min_length": 1,
                "max_length": 1000,
                "placeholder": {"type": "plain_text", "text": 'Why "not"?'},
            },
        }
    ]
    shown = render_blocks(
        blocks,
        NAMES,
        errors={"reason": "only <@U0SRE0001> may vote"},
        values={"reason": {"text": {"type": "plain_text_input", "value": "</textarea><b>x"}}},
    )
    assert 'minlength="1" maxlength="1000"' in shown
    assert 'placeholder="Why &quot;not&quot;?"' in shown
    assert ">&lt;/textarea&gt;&lt;b&gt;x</textarea>" in shown
    # Slack shows an input's error as plain text: mentions in it are not resolved.
    assert 'data-block-id="reason">only &lt;@U0SRE0001&gt; may vote</div>' in shown


def test_what_the_page_cannot_draw_says_so() -> None:
    shown = render_blocks(
        [
            {"type": "video", "block_id": "v"},
            {"type": "actions", "elements": [{"type": "overflow"}]},
        ],
        NAMES,
    )
    assert "[video block: not shown by the emulator page]" in shown
    assert "[overflow element: not shown by the emulator page]" in shown
