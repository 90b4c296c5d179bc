"""systemd helpers: unit state, waits that loop inside the guest, jobs."""

from __future__ import annotations

import shlex

from driver.machine.base import DEFAULT_TIMEOUT, ShellBase

# One guest round trip; polls every 0.05 s without spawning a sleep process.
_WAIT_FOR_UNIT = r"""{define_sc}
u={unit}
d=$(( ${{EPOCHREALTIME/./}} + {micros} ))
while :; do
  while IFS='=' read -r k v; do
    case "$k" in LoadState) ls=$v ;; ActiveState) as=$v ;; SubState) ss=$v ;; Result) rs=$v ;; esac
  done < <(sc show -p LoadState,ActiveState,SubState,Result -- "$u")
  case "$as" in
    active) echo active; exit 0 ;;
    failed) echo "failed ($rs)"; journalctl {journal_unit} "$u" -n {lines} --no-pager -o cat; exit 3 ;;
  esac
  if [ "$ls" = not-found ]; then echo "not-found"; exit 4; fi
  if [ "$as" = inactive ] && [ -z "$(sc list-jobs --no-legend -- "$u")" ] \
     && [ "$(sc show -p ActiveState --value -- "$u")" = inactive ]; then
    echo "inactive with no pending job"; journalctl {journal_unit} "$u" -n {lines} --no-pager -o cat; exit 5
  fi
  if (( ${{EPOCHREALTIME/./}} >= d )); then echo "timeout ($as/$ss)"; exit 97; fi
  photon_sleep 0.05
done"""


class SystemdMixin(ShellBase):
    """systemd-facing DSL methods."""

    @staticmethod
    def _systemctl_command(arguments: str, user: str | None) -> str:
        if user is None:
            return f"systemctl {arguments}"
        return f"su -l {shlex.quote(user)} --shell /bin/sh -c " + shlex.quote(
            f"XDG_RUNTIME_DIR=/run/user/$(id -u) systemctl --user {arguments}"
        )

    def systemctl(self, q: str, user: str | None = None) -> tuple[int, str]:
        """Run ``systemctl Q`` (``systemctl --user`` as ``user``); returns (status, stdout)."""
        result = self.run(self._systemctl_command(q, user))
        return result.status, result.stdout

    def get_unit_info(self, unit: str, user: str | None = None) -> dict[str, str]:
        """All properties of ``unit`` (``systemctl show``) as a dict; fails the test if
        systemctl fails."""
        status, output = self.systemctl(f"--no-pager show -- {shlex.quote(unit)}", user)
        if status != 0:
            raise self.failure(f"cannot get info of unit {unit} (systemctl exit {status})")
        info: dict[str, str] = {}
        for line in output.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key] = value
        return info

    def get_unit_property(self, unit: str, property: str, user: str | None = None) -> str:
        """One property of ``unit``, e.g. ``get_unit_property("etcd", "MainPID")``."""
        status, output = self.systemctl(
            f"show -p {shlex.quote(property)} --value -- {shlex.quote(unit)}", user
        )
        if status != 0:
            raise self.failure(f"cannot get {property} of unit {unit} (systemctl exit {status})")
        return output.rstrip("\n")

    def require_unit_state(self, unit: str, require_state: str = "active") -> None:
        """Fail unless ``unit``'s ActiveState is ``require_state`` right now."""
        state = self.get_unit_property(unit, "ActiveState")
        if state != require_state:
            raise self.failure(f"unit {unit} is {state}, expected {require_state}")

    def wait_for_unit(
        self,
        unit: str,
        user: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        journal_lines: int = 20,
    ) -> None:
        """Wait until ``unit`` (of ``user``'s systemd with ``user``) is active, polling
        inside the guest; fails after ``timeout`` s. A failed unit, an unknown unit or an
        inactive unit with no pending job fails at once, with its last ``journal_lines``
        journal lines."""
        name = unit if "." in unit else f"{unit}.service"
        with self.logger.nested(f"{self.name}: waiting for unit {name}"):
            script = _WAIT_FOR_UNIT.format(
                unit=shlex.quote(name),
                micros=int(timeout * 1e6),
                lines=journal_lines,
                define_sc=(
                    'sc() { systemctl "$@"; }'
                    if user is None
                    else f"sc() {{ su -l {shlex.quote(user)} --shell /bin/sh -c "
                    '"XDG_RUNTIME_DIR=/run/user/\\$(id -u) systemctl --user $*"; }'
                ),
                journal_unit="-u" if user is None else "--user-unit",
            )
            result = self.run(script, timeout=timeout + 30.0)
            if result.status != 0:
                state, _, journal = result.stdout.partition("\n")
                raise self.failure(
                    f"unit {name} did not become active: {state}"
                    + (f"\nlast journal lines:\n{journal.rstrip()}" if journal.strip() else "")
                )

    def start_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        """``systemctl start JOBNAME``; returns (status, stdout)."""
        return self.systemctl(f"start -- {shlex.quote(jobname)}", user)

    def stop_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        """``systemctl stop JOBNAME``; returns (status, stdout)."""
        return self.systemctl(f"stop -- {shlex.quote(jobname)}", user)

    def failed_units(self, timeout: float = 10.0) -> list[str]:
        """Units systemd lists as failed (used by the post-test health scan)."""
        result = self.run("systemctl list-units --state=failed --no-legend --plain", timeout)
        return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
