"""Arbiter snapshot backups: a second garbd on the Arbiter asks a data node for a state transfer by our own
SST method (``wsrep_sst_studio_backup``, rendered by :mod:`wizard.render`), which streams mariabackup to a
receiver on the Arbiter host (:mod:`wizard.agent.receiver`, shipped in the agent too).

* :mod:`wizard.backups.take`: choose the donor, start receiver and garbd, follow progress, judge the result;
* :mod:`wizard.backups.catalog`: what the backup root holds and the state of each backup;
* :mod:`wizard.backups.verify`: prepare a copy, run a throwaway server on it, check every table;
* :mod:`wizard.backups.prune`: which backups a retention policy removes (pure) and removing them.
"""

from __future__ import annotations


class BackupError(Exception):
    """A backup step failed.  ``message`` says what, ``hint`` what to do, ``log`` the lines that show why
    (the donor's or garbd's log)."""

    def __init__(self, message: str, hint: str = "", log: list[str] | None = None) -> None:
        self.message = message
        self.hint = hint
        self.log = list(log or [])
        super().__init__(message + (f" ({hint})" if hint else ""))
