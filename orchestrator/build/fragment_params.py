"""The fragments in configs/kconfig/ and the kernel parameters that come with them
(cmdline.yaml): what every boot of a kto kernel reads, kept apart from the Kconfig code."""

from __future__ import annotations

from pathlib import Path

from orchestrator.paths import configs_dir


def fragments_dir() -> Path:
    return configs_dir() / "kconfig"


def known_fragments() -> list[str]:
    return sorted(p.stem for p in fragments_dir().glob("*.config"))


def fragment_cmdline(fragments: list[str]) -> dict[str, str]:
    """Kernel parameters that come with fragments (configs/kconfig/cmdline.yaml)."""
    defaults = fragment_cmdline_defaults()
    out: dict[str, str] = {}
    for f in fragments:
        out.update(defaults.get(f, {}))
    return out


def fragment_cmdline_defaults() -> dict[str, dict[str, str]]:
    """configs/kconfig/cmdline.yaml: kernel parameters every boot of a kernel built with the
    fragment gets (unless the test sets the same parameter), e.g. rcutorture off."""
    from orchestrator.config.schema import BadYAML, safe_load
    from orchestrator.errors import ConfigError

    path = fragments_dir() / "cmdline.yaml"
    if not path.is_file():
        return {}
    try:
        data = safe_load(path.read_text()) or {}
    except (OSError, BadYAML) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fragment name -> parameters")
    out: dict[str, dict[str, str]] = {}
    known = known_fragments()
    for frag, params in data.items():
        if frag not in known:
            raise ConfigError(f"{path}: `{frag}` is not a fragment in {fragments_dir()}")
        if not isinstance(params, dict) or not all(
            isinstance(v, str | int) and " " not in str(v) for v in params.values()
        ):
            raise ConfigError(f"{path}: `{frag}` must map parameter names to one-word values")
        out[str(frag)] = {str(k): str(v) for k, v in params.items()}
    return out
