"""Gatekeeper's database: candidates, votes, promotions, champions, Slack refs, outbox, audit."""
