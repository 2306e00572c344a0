"""The Textual front end: the wizard (start -> nodes -> credentials -> checks -> plan -> apply) and the monitor.

A thin layer over the core: screens collect input, run core functions in thread workers and draw the
values those return.  Nothing here talks to SSH, SQL or Redis except through the core.  The pure helpers
(:mod:`wizard.tui.form`, :mod:`wizard.tui.history`) do not import Textual either, so they are unit-tested
on their own.
"""
