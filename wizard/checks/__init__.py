"""Prerequisite checks: a registry of small checks and a parallel runner."""

from wizard.checks.base import CLUSTER, Check, CheckContext, CheckResult, Status, all_checks
from wizard.checks.runner import planned, run_checks, worst

__all__ = ["CLUSTER", "Check", "CheckContext", "CheckResult", "Status", "all_checks", "planned", "run_checks",
           "worst"]
