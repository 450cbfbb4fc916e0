"""shiftd configuration: typed models and a YAML loader that points at the offending line.

The configuration is one YAML file (documented key by key in ``config/shiftd.yaml``). It is
validated into frozen pydantic models; nothing is coerced behind the operator's back. Every
problem is reported as ``FILE:LINE: key.path: problem`` so an operator can go straight to it.

YAML 1.1 has traps for configuration files (``10:30`` is the number 630, ``no`` is False,
``01234`` is 668). Durations are therefore typed :data:`Duration` and must be strings with a
unit (``"10m"``); a number where a duration belongs is refused with a message that explains
the quoting. Strings are real strings: pydantic's ``str`` already refuses numbers and booleans.

Relative paths are kept exactly as written; the daemon resolves them against its current
directory.
"""

from __future__ import annotations

from .loader import key_line, load_config, parse_config
from .organizations import (
    CoordinatorConfig,
    OrganizationConfig,
    QuietHoursConfig,
    RepeatConfig,
    StepConfig,
)
from .problems import ConfigError
from .schema import Config
from .sections import (
    HTTP_BACKLOG,
    ActorConfig,
    ClusterConfig,
    ConsoleNotifierConfig,
    ControlConfig,
    EscalationConfig,
    HttpConfig,
    LogConfig,
    NotifierConfig,
    RecordNotifierConfig,
    RepliesConfig,
    RetentionConfig,
    SenderConfig,
    ShutdownConfig,
    SmtpConfig,
    StoreConfig,
    TwilioNotifierConfig,
    parse_listen,
)
from .values import ClockTime, Duration, parse_duration

__all__ = [
    "HTTP_BACKLOG",
    "ActorConfig",
    "ClockTime",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "ConsoleNotifierConfig",
    "ControlConfig",
    "CoordinatorConfig",
    "Duration",
    "EscalationConfig",
    "HttpConfig",
    "LogConfig",
    "NotifierConfig",
    "OrganizationConfig",
    "QuietHoursConfig",
    "RecordNotifierConfig",
    "RepeatConfig",
    "RepliesConfig",
    "RetentionConfig",
    "SenderConfig",
    "ShutdownConfig",
    "SmtpConfig",
    "StepConfig",
    "StoreConfig",
    "TwilioNotifierConfig",
    "key_line",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen",
]
