"""Open the emulator's page by hand: `python -m bot.emulator.page --request-url URL`.

Starts the Slack stand-in with a small team (a requester, two approvers, an outsider, the
`ml-leads` group and `#ml-models`), prints the environment the bot needs to talk to it, and
serves the page until interrupted. Start the bot with that environment (`gatekeeper serve`).
"""

from __future__ import annotations

import argparse
import contextlib
import threading

from bot.emulator.page.directory import Person
from bot.emulator.server import SlackEmulator

PEOPLE = (
    Person("U0DS00001", "dana", "requester"),
    Person("U0LEAD001", "lea", "approver"),
    Person("U0SRE0001", "sam", "approver"),
    Person("U0OUTSIDE", "ovid", "outsider"),
)
LEADS = ("S0MLLEADS", "ml-leads", ["U0LEAD001"])
CHANNEL = ("C0ML00001", "ml-models")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.emulator.page", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--request-url", help="the bot's /slack/events URL")
    where.add_argument("--socket-mode", action="store_true", help="the bot uses Socket Mode")
    parser.add_argument("--port", type=int, default=3001, help="the emulator's port (3001)")
    parser.add_argument("--team-id", default="T0GATEKPR")
    parser.add_argument("--bot-token", default="xoxb-emulator")
    parser.add_argument("--app-token", default="xapp-emulator")
    parser.add_argument("--signing-secret", default="emulator-signing-secret")
    args = parser.parse_args(argv)

    slack = SlackEmulator(
        team_id=args.team_id,
        bot_token=args.bot_token,
        app_token=args.app_token,
        signing_secret=args.signing_secret,
        port=args.port,
    )
    with slack:
        workspace = slack.workspace
        for person in PEOPLE:
            workspace.add_user(person.user_id, person.name)
        workspace.add_usergroup(*LEADS)
        workspace.add_channel(*CHANNEL)
        url = slack.open_page(
            request_url=None if args.socket_mode else args.request_url,
            people=PEOPLE,
            channel=CHANNEL[0],
        )
        print("Point the bot at this Slack:")
        print(f"  SLACK_API_URL={slack.api_url}")
        print(f"  SLACK_BOT_TOKEN={args.bot_token}")
        print(f"  SLACK_SIGNING_SECRET={args.signing_secret}")
        if args.socket_mode:
            print(f"  SLACK_APP_TOKEN={args.app_token}")
        print(f"The page: {url}   (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
