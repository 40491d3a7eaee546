"""The bug store's tables, and the migrations that bring any older store up to date.

The schema version is SQLite's `PRAGMA user_version`: N means MIGRATIONS[:N] have run. A
migration is a list of single statements (sqlite3's executescript would commit halfway),
applied in one write transaction with the new version, so a crash or a concurrent kto
leaves either the old schema or the new one. Never edit a released migration: append one.

Run ids sort by time (YYYYmmdd-HHMMSS first), so "first seen", "after the last incident"
and "since" are comparisons of run ids.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: runs, jobs, bugs with their titles, incidents, per-cell tallies, the event log.
    [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,           -- the run directory's name
            label TEXT NOT NULL,
            compare_key TEXT,
            created TEXT,                  -- run.json's, else from the id
            nightly INTEGER NOT NULL,      -- a matrix run: the tree's head, counts as a night
            path TEXT NOT NULL,
            ingested TEXT NOT NULL
        )""",
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            name TEXT NOT NULL,            -- the job's folder in the run
            cell TEXT NOT NULL,            -- tree.series.config.arch.test: the same work
            tree TEXT NOT NULL,
            series TEXT NOT NULL,
            config TEXT NOT NULL,
            arch TEXT NOT NULL,
            test TEXT NOT NULL,
            status TEXT NOT NULL,          -- the effective verdict (waivers applied)
            judged INTEGER NOT NULL,       -- PASS/FAIL/XFAIL: a verdict about the kernel
            head INTEGER NOT NULL,         -- 0: it booted an earlier night's kernel again
            git_commit TEXT,
            describe TEXT,
            path TEXT NOT NULL,
            reproducer TEXT,
            digest TEXT NOT NULL,          -- status and titles: an unchanged job is skipped
            UNIQUE (run_id, name)
        )""",
        "CREATE INDEX jobs_cell ON jobs (cell, run_id) WHERE judged AND head",
        """CREATE TABLE bugs (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,           -- the normalised primary title
            seq INTEGER NOT NULL,          -- 2 for "title (2)": a closed bug came back
            state TEXT NOT NULL CHECK (state IN ('open', 'fixed', 'invalid', 'dup')),
            dup_of INTEGER REFERENCES bugs(id),
            prev_id INTEGER REFERENCES bugs(id),  -- the closed bug this one is the return of
            fixed_commit TEXT,
            closed_reason TEXT,
            closed_at TEXT,
            closed_by TEXT,
            created TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1,   -- KCIDB issue version: +1 per state change
            -- Derived from the incidents of the bug and its dups (ingest.refresh):
            first_run TEXT,
            last_run TEXT,
            first_job INTEGER,
            last_job INTEGER,
            n_incidents INTEGER NOT NULL DEFAULT 0,
            fails INTEGER NOT NULL DEFAULT 0,
            runs INTEGER NOT NULL DEFAULT 0,
            arches TEXT NOT NULL DEFAULT '',
            kinds TEXT NOT NULL DEFAULT '',
            trees TEXT NOT NULL DEFAULT '',
            quiet_nights INTEGER NOT NULL DEFAULT 0,
            quiet_runs INTEGER NOT NULL DEFAULT 0,
            best_incident INTEGER,
            best_report TEXT
        )""",
        "CREATE INDEX bugs_state ON bugs (state, first_run)",
        """CREATE TABLE titles (
            title TEXT NOT NULL,
            bug_id INTEGER NOT NULL REFERENCES bugs(id),
            role TEXT NOT NULL,            -- primary | together | alt
            PRIMARY KEY (title, bug_id)
        )""",
        "CREATE INDEX titles_bug ON titles (bug_id)",
        """CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            bug_id INTEGER NOT NULL REFERENCES bugs(id),
            job_id INTEGER NOT NULL REFERENCES jobs(id),
            title TEXT NOT NULL,
            kind TEXT NOT NULL,
            finding INTEGER,               -- index in the job's findings.json (None: verdict)
            first_line INTEGER,
            score INTEGER NOT NULL,        -- how good a report it is (ingest.score)
            waived INTEGER NOT NULL,
            UNIQUE (job_id, title)
        )""",
        "CREATE INDEX incidents_bug ON incidents (bug_id, job_id)",
        """CREATE TABLE bug_cells (
            bug_id INTEGER NOT NULL REFERENCES bugs(id),
            cell TEXT NOT NULL,
            tree TEXT NOT NULL,
            arch TEXT NOT NULL,
            first_run TEXT NOT NULL,
            last_run TEXT NOT NULL,
            fails INTEGER NOT NULL,
            runs INTEGER NOT NULL,
            PRIMARY KEY (bug_id, cell)
        )""",
        "CREATE INDEX bug_cells_cell ON bug_cells (cell)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            bug_id INTEGER NOT NULL REFERENCES bugs(id),
            at TEXT NOT NULL,
            who TEXT NOT NULL,
            action TEXT NOT NULL,          -- created, back, fixed, invalid, dup, undup, ...
            reason TEXT NOT NULL DEFAULT '',
            run_id TEXT
        )""",
        "CREATE INDEX events_bug ON events (bug_id)",
    ],
    # 2: what the bot did about a bug: bisections (culprit or fix) and fixes tested.
    [
        """CREATE TABLE bisections (
            id INTEGER PRIMARY KEY,
            bug_id INTEGER NOT NULL REFERENCES bugs(id),
            kind TEXT NOT NULL CHECK (kind IN ('culprit', 'fix')),
            run_id TEXT NOT NULL,          -- the bisect's own run directory
            night TEXT,                    -- the matrix run that started it (None: by hand)
            cell TEXT NOT NULL,
            good TEXT NOT NULL,            -- a commit without the bug (fix: the newer end)
            bad TEXT NOT NULL,
            status TEXT NOT NULL,          -- running, interrupted, found, not-found, refused
            commit_sha TEXT,               -- the culprit (or the fix)
            subject TEXT,
            author TEXT,
            confidence REAL,
            flags TEXT NOT NULL DEFAULT '[]',  -- JSON: why the culprit is implausible
            mail TEXT,                     -- the .eml written for it (None: not mailed)
            started TEXT NOT NULL,
            finished TEXT
        )""",
        "CREATE INDEX bisections_bug ON bisections (bug_id, kind)",
        """CREATE TABLE fix_tests (
            id INTEGER PRIMARY KEY,
            bug_id INTEGER NOT NULL REFERENCES bugs(id),
            run_id TEXT NOT NULL,
            patches TEXT NOT NULL,         -- what was tested: the series' path or subject
            verdict TEXT NOT NULL,         -- gone, present, inconclusive, error
            fails INTEGER NOT NULL,        -- with the fix
            runs INTEGER NOT NULL,
            control_fails INTEGER NOT NULL,  -- without it, same cell and commit
            control_runs INTEGER NOT NULL,
            confidence REAL,
            mail TEXT,
            created TEXT NOT NULL
        )""",
        "CREATE INDEX fix_tests_bug ON fix_tests (bug_id)",
    ],
]

VERSION = len(MIGRATIONS)
