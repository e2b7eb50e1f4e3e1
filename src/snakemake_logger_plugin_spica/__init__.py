"""Snakemake logger plugin ``spica``: job events for SPICA's in-progress view.

Snakemake (>= 9) finds logger plugins by module name: any importable top-level
package named ``snakemake_logger_plugin_<name>`` that defines ``LogHandler``
(a :class:`snakemake_interface_logger_plugins.base.LogHandlerBase`) and,
optionally, ``LogHandlerSettings``. This one is selected with ``--logger spica``
(the workflow profile sets it); its setting ``--logger-spica-url URL``
overrides config key ``monitor.url``. The handler writes to a database, not to
the terminal, so Snakemake keeps its own terminal output beside it. The logic
is in :mod:`spica.monitor`; this module only adapts the interface.
"""

from dataclasses import dataclass, field
from logging import LogRecord
from typing import Optional

from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

__all__ = ["LogHandlerSettings", "LogHandler"]


@dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    """Settings of the plugin (command line ``--logger-spica-<name>``)."""

    url: Optional[str] = field(
        default=None,
        metadata={
            "help": "SQLAlchemy URL of the job-events database "
                    "(default: config key monitor.url of the workflow's config files)",
            "env_var": False,
            "required": False,
        },
    )


class LogHandler(LogHandlerBase):
    """Passes Snakemake's log records to :class:`spica.monitor.EventRecorder`."""

    def __post_init__(self) -> None:
        # imported here: Snakemake imports every plugin at each start, jobs included
        from spica.monitor.recorder import EventRecorder

        url = getattr(self.settings, "url", None)
        self.recorder = None if self.common_settings.dryrun else EventRecorder(url)

    def emit(self, record: LogRecord) -> None:
        if self.recorder is not None:
            self.recorder.handle(record.__dict__)

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        super().close()

    @property
    def writes_to_stream(self) -> bool:
        return False  # Snakemake keeps its default terminal handler

    @property
    def writes_to_file(self) -> bool:
        return False  # a database: not a log file Snakemake should announce

    @property
    def has_filter(self) -> bool:
        return True  # every record, whatever --quiet says (no default filter)

    @property
    def has_formatter(self) -> bool:
        return True  # records are not formatted into text

    @property
    def needs_rulegraph(self) -> bool:
        return False
