"""systemd helpers: unit state, waits that loop inside the guest, jobs."""

from __future__ import annotations

import shlex

from driver.machine.base import DEFAULT_TIMEOUT, ShellBase

# One guest round trip; polls every 0.05 s without spawning a sleep process.
_WAIT_FOR_UNIT = r"""u={unit}
d=$(( ${{EPOCHREALTIME/./}} + {micros} ))
while :; do
  while IFS='=' read -r k v; do
    case "$k" in LoadState) ls=$v ;; ActiveState) as=$v ;; SubState) ss=$v ;; Result) rs=$v ;; esac
  done < <(systemctl show -p LoadState,ActiveState,SubState,Result -- "$u")
  case "$as" in
    active) echo active; exit 0 ;;
    failed) echo "failed ($rs)"; journalctl -u "$u" -n {lines} --no-pager -o cat; exit 3 ;;
  esac
  if [ "$ls" = not-found ]; then echo "not-found"; exit 4; fi
  if [ "$as" = inactive ] && [ -z "$(systemctl list-jobs --no-legend -- "$u")" ] \
     && [ "$(systemctl show -p ActiveState --value -- "$u")" = inactive ]; then
    echo "inactive with no pending job"; journalctl -u "$u" -n {lines} --no-pager -o cat; exit 5
  fi
  if (( ${{EPOCHREALTIME/./}} >= d )); then echo "timeout ($as/$ss)"; exit 97; fi
  photon_sleep 0.05
done"""


class SystemdMixin(ShellBase):
    """systemd-facing DSL methods."""

    def systemctl(self, arguments: str, user: str | None = None) -> tuple[int, str]:
        """Run ``systemctl ARGUMENTS`` (``--user`` for ``user``); returns (status, stdout)."""
        if user is not None:
            command = f"su -l {shlex.quote(user)} -c " + shlex.quote(
                f"systemctl --user {arguments}"
            )
        else:
            command = f"systemctl {arguments}"
        result = self.run(command)
        return result.status, result.stdout

    def get_unit_info(self, unit: str) -> dict[str, str]:
        """All properties of ``unit`` (``systemctl show``) as a dict."""
        result = self.run(f"systemctl --no-pager show -- {shlex.quote(unit)}")
        if result.status != 0:
            raise self.failure(f"cannot get info of unit {unit}: {result.stderr.strip()}")
        info: dict[str, str] = {}
        for line in result.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key] = value
        return info

    def get_unit_property(self, unit: str, property_name: str) -> str:
        """One property of ``unit``, e.g. ``get_unit_property("etcd", "MainPID")``."""
        result = self.run(
            f"systemctl show -p {shlex.quote(property_name)} --value -- {shlex.quote(unit)}"
        )
        return result.stdout.rstrip("\n")

    def require_unit_state(self, unit: str, require_state: str = "active") -> None:
        """Fail unless ``unit``'s ActiveState is ``require_state`` right now."""
        state = self.get_unit_property(unit, "ActiveState")
        if state != require_state:
            raise self.failure(f"unit {unit} is {state}, expected {require_state}")

    def wait_for_unit(
        self, unit: str, timeout: float = DEFAULT_TIMEOUT, journal_lines: int = 20
    ) -> None:
        """Wait until ``unit`` is active. A failed unit, an unknown unit or an inactive unit
        with no pending job is an error at once, carrying its last journal lines."""
        name = unit if "." in unit else f"{unit}.service"
        with self.logger.nested(f"{self.name}: waiting for unit {name}"):
            script = _WAIT_FOR_UNIT.format(
                unit=shlex.quote(name), micros=int(timeout * 1e6), lines=journal_lines
            )
            result = self.run(script, timeout=timeout + 30.0)
            if result.status != 0:
                state, _, journal = result.stdout.partition("\n")
                raise self.failure(
                    f"unit {name} did not become active: {state}"
                    + (f"\nlast journal lines:\n{journal.rstrip()}" if journal.strip() else "")
                )

    def start_job(self, unit: str) -> tuple[int, str]:
        """``systemctl start UNIT``; returns (status, stdout)."""
        return self.systemctl(f"start -- {shlex.quote(unit)}")

    def stop_job(self, unit: str) -> tuple[int, str]:
        """``systemctl stop UNIT``; returns (status, stdout)."""
        return self.systemctl(f"stop -- {shlex.quote(unit)}")

    def failed_units(self, timeout: float = 10.0) -> list[str]:
        """Units systemd lists as failed (used by the post-test health scan)."""
        result = self.run("systemctl list-units --state=failed --no-legend --plain", timeout)
        return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
