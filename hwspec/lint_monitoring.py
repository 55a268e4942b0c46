"""Lint passes for the monitoring thresholds (top-level ``monitoring:``) against the rest of the spec.

The loader already refuses values out of range (file:line:key, exit 2); these passes judge how the values
fit together: an alert that can only come after `dlverify check` has already failed, thresholds written for
a monitoring stack the spec does not install.
"""

from __future__ import annotations

from dlverify.hwspec.lint_base import LintOut


def lint_monitoring(out: LintOut) -> None:
    """Only where the spec writes a ``monitoring:`` section (defaults need no judging)."""
    if "monitoring" not in out.spec.locations:
        return
    spec = out.spec
    mon = spec.monitoring
    if not spec.software.monitoring:
        out.at("spec.monitoring.installed", "monitoring thresholds have a stack", "monitoring").warn(
            "software.monitoring empty",
            "software.monitoring: {prometheus: ..}",
            "monitoring: sets the check timer and alert thresholds, but software.monitoring pins nothing, "
            "so site.yml installs no monitoring and these values are unused",
        )
    key = "monitoring.gpu_temp_alert_c"
    check = out.at("spec.monitoring.gpu_temp", "GPU temperature alert vs checks", key)
    limit = spec.checks.gpu_temp_max_c
    if mon.gpu_temp_alert_c >= limit:
        check.warn(
            mon.gpu_temp_alert_c,
            f"< {limit}",
            f"{key} ({mon.gpu_temp_alert_c} C) is not below checks.gpu_temp_max_c ({limit} C): "
            f"GpuTemperatureHigh would come only after `dlverify check` already fails gpu.temperature",
        )
    else:
        check.ok(
            mon.gpu_temp_alert_c, f"< {limit}", f"the alert comes before gpu.temperature fails ({limit} C)"
        )
    silent = mon.check_interval_min * mon.check_missed_runs
    if silent > 24 * 60:
        out.at(
            "spec.monitoring.not_run", "a stopped check timer is noticed", "monitoring.check_missed_runs"
        ).warn(
            f"{silent} min",
            "<= 1440 min",
            f"check_interval_min ({mon.check_interval_min}) x check_missed_runs ({mon.check_missed_runs}): "
            "a stopped timer is alerted on only after more than a day",
        )
