"""Records: the data every stage shares (job specs, verdicts, console outcomes, the run and
job records and where they live on disk). Ranked just above config: nothing here builds,
boots or renders."""
