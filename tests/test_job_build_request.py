"""Every driver's build goes through job.runner.build_request: the trust choices a JobSpec
carries (`kto run --tree PATH --trusted`, `--no-sandbox --i-trust-this-series`) reach the
build's trust policy (build/trust.py) on every path, not only `kto build`'s."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.job.plan import plan_job
from orchestrator.job.runner import build_request
from orchestrator.records.spec import JobSpec


@pytest.mark.parametrize(
    "choices",
    [
        {},
        {"trusted_tree": True},
        {"sandbox": False, "i_trust_this_series": True},
        {"sandbox": True},
    ],
)
def test_the_spec_trust_choices_reach_the_build(choices: dict[str, object]) -> None:
    spec = replace(JobSpec(arch="x86_64", tree="debian-6.1", test="smoke"), **choices)
    req = build_request(plan_job(spec))
    got = {k: getattr(req, k) for k in ("sandbox", "trusted_tree", "i_trust_this_series")}
    want = {"sandbox": None, "trusted_tree": False, "i_trust_this_series": False, **choices}
    assert got == want
