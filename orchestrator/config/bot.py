"""The bot's settings (configs/bot.yaml): auto-bisect, its budget and confidence floor,
fix tests, and where a mail's `Closes:` tag points. Validated like every kto data file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from orchestrator.config.schema import load_file_as
from orchestrator.errors import ConfigError
from orchestrator.paths import configs_dir


@dataclass(frozen=True)
class BisectSettings:
    auto: bool = True
    confidence: float = 0.999
    floor: float = 0.95
    budget_runs: int = 80
    budget_minutes: int = 60


@dataclass(frozen=True)
class FixTestSettings:
    confidence: float = 0.95
    max_runs: int = 30


@dataclass(frozen=True)
class MailSettings:
    bug_url: str = ""


@dataclass(frozen=True)
class BotSettings:
    bisect: BisectSettings = BisectSettings()
    fix_test: FixTestSettings = FixTestSettings()
    mail: MailSettings = MailSettings()


@cache
def settings() -> BotSettings:
    path = configs_dir() / "bot.yaml"
    if not path.is_file():
        return BotSettings()
    s = load_file_as(BotSettings, path, "bot settings")
    for name, value in (
        ("bisect.confidence", s.bisect.confidence),
        ("bisect.floor", s.bisect.floor),
        ("fix_test.confidence", s.fix_test.confidence),
    ):
        if not 0.5 <= value < 1:
            raise ConfigError(f"{path}: {name}: {value} is not between 0.5 and 1 (say 0.95)")
    return s
