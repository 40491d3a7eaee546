"""The bot: what kto does unattended after a night (docs/bot.md). A confirmed NEW bug in a
tree that moved is bisected, its culprit's author gets a mail written to disk, a proposed
fix is tested against the bug, and a bug that stopped showing gets its fix bisected."""
