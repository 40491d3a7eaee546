"""Bugs, not runs: every finding of every job is an incident of a bug kept across nights.

One SQLite file under the results root (`bugs.sqlite`, beside the run directories) holds the
runs and jobs seen, the bugs (a normalised title plus the titles that came with it), their
incidents and their state (open, fixed, invalid, dup). Only the client writes it: the end of
every run ingests that run (results/reports.py), `kto bugs` reads and triages it, and
`bugs.html` beside it is the dashboard. See docs/bugs.md.

Ranked above job and below results: the renderers show a finding as its bug.
"""
