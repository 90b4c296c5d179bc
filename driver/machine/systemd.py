"""systemd helpers: unit state, waits that loop inside the guest, jobs."""

from __future__ import annotations

import shlex

from driver.duration import Duration, seconds
from driver.machine.base import DEFAULT_TIMEOUT, ShellBase

# One attempt of wait_for_unit's in-guest poll: exit 0 when active, 1 to keep waiting,
# 3 (the poll's stop status) when the unit can no longer become active, with its journal.
# While the unit is on its way, the attempt blocks on its pending job through
# photon-active@UNIT.target (driver/images/guest) until the wait's deadline ($d, the guest
# loop's, in centiseconds of /proc/uptime, which the loop's boot_cs reads): starting it
# succeeds once the job has ended with the unit active, with no further systemctl. A sleeping subshell, not `timeout`,
# ends it at the deadline: no process between systemctl's exit and the answer. Without
# that template (an image from elsewhere, a user's systemd) the attempt polls.
_UNIT_STATE = r"""{define_sc}
u={unit}
unit_state() {{
  while IFS='=' read -r k v; do
    case "$k" in LoadState) ls=$v ;; ActiveState) as=$v ;; SubState) ss=$v ;; Result) rs=$v ;; esac
  done < <(sc show -p LoadState,ActiveState,SubState,Result -- "$u")
}}
unit_state
case "$as" in
  active | failed) ;;
  *)
    boot_cs; left=$(( ${{d:-0}} - cs ))
    if {block} && [ "$ls" != not-found ] && ((left > 0)) \
       && [ -e /etc/systemd/system/photon-active@.target ]; then
      printf -v left '%d.%02d' $((left / 100)) $((left % 100))
      systemctl start -- "photon-active@$u.target" >/dev/null 2>&1 & sp=$!
      {{ photon_sleep "$left"; kill "$sp"; }} 2>/dev/null & tp=$!
      if wait "$sp"; then kill "$tp" 2>/dev/null; echo active; exit 0; fi
      kill "$tp" 2>/dev/null
      unit_state
    fi ;;
esac
case "$as" in
  active) echo active; exit 0 ;;
  failed) echo "reached state \"failed\" (result: $rs)"; journalctl {journal_unit} "$u" -n {lines} --no-pager -o cat; exit 3 ;;
esac
if [ "$ls" = not-found ]; then echo "is not loaded (not-found)"; exit 3; fi
if [ "$as" = inactive ] && [ -z "$(sc list-jobs --no-legend -- "$u")" ] \
   && [ "$(sc show -p ActiveState --value -- "$u")" = inactive ]; then
  echo "is inactive and there are no pending jobs"; journalctl {journal_unit} "$u" -n {lines} --no-pager -o cat
  exit 3
fi
echo "is $as/$ss"; exit 1"""


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
            raise self._failure(
                f'retrieving systemctl info for unit "{unit}"'
                + ("" if user is None else f' under user "{user}"')
                + f" failed with exit code {status}"
            )
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
            raise self._failure(
                f'retrieving systemctl property "{property}" for unit "{unit}"'
                + ("" if user is None else f' under user "{user}"')
                + f" failed with exit code {status}"
            )
        return output.rstrip("\n")

    def require_unit_state(self, unit: str, require_state: str = "active") -> None:
        """Fail unless ``unit``'s ActiveState is ``require_state`` right now, with the
        NixOS driver's text ("Expected unit 'U' to to be in state 'S' but it is in state
        'T'", its doubled "to" included, since scripts match it)."""
        with self.nested(f"checking if unit '{unit}' has reached state '{require_state}'"):
            state = self.get_unit_property(unit, "ActiveState")
            if state != require_state:
                raise self._failure(
                    f"Expected unit '{unit}' to to be in state '{require_state}' "
                    f"but it is in state '{state}'"
                )

    def wait_for_unit_active_state(
        self,
        unit: str,
        state: str,
        user: str | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
    ) -> None:
        """Wait until ``unit``'s ActiveState is ``state`` (``active``, ``inactive``,
        ``activating``, ``reloading``, ``deactivating``, ``failed``...), polling inside the
        guest every 50 ms so short-lived states are seen; fails ("action timed out", with
        the last state seen) after ``timeout``. Waiting for ``failed`` declares the unit's
        failure expected: the health gate does not report it."""
        limit = seconds(timeout)
        sc = self._systemctl_command(f"show -p ActiveState --value -- {shlex.quote(unit)}", user)
        check = f's=$({sc}); echo "$s"; [ "$s" = {shlex.quote(state)} ]'
        with self.nested(f"waiting for unit {unit} to be {state}"):
            polled = self._guest_loop(
                check, limit, attempt_timeout=None, interval=0.05, max_interval=0.05
            )
            if not polled.reached:
                last = polled.output.strip() or "unknown"
                raise self._timed_out(limit, f"unit {unit} did not reach {state} (it is {last})")
            if state == "failed":
                self._expect_failed_unit(unit if "." in unit else f"{unit}.service")

    def wait_for_unit(
        self,
        unit: str,
        user: str | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
        journal_lines: int = 20,
    ) -> None:
        """Wait until ``unit`` (of ``user``'s systemd with ``user``) is active, polling
        inside the guest; fails after ``timeout`` s. A failed unit, an unknown unit or an
        inactive unit with no pending job fails at once, with its last ``journal_lines``
        journal lines."""
        name = unit if "." in unit else f"{unit}.service"
        limit = seconds(timeout)
        with self.nested(f"waiting for unit {name}"):
            check = _UNIT_STATE.format(
                unit=shlex.quote(name),
                lines=journal_lines,
                journal_unit="-u" if user is None else "--user-unit",
                block="true" if user is None else "false",
                define_sc=(
                    'sc() { systemctl "$@"; }'
                    if user is None
                    else f"sc() {{ su -l {shlex.quote(user)} --shell /bin/sh -c "
                    '"XDG_RUNTIME_DIR=/run/user/\\$(id -u) systemctl --user $*"; }'
                ),
            )
            polled = self._guest_loop(
                check, limit, attempt_timeout=None, interval=0.05, stop_status=3
            )
            if not polled.reached:
                state, _, journal = polled.output.partition("\n")
                if polled.status != 3:
                    state = f"did not become active: action timed out after {limit:g}s ({state})"
                raise self._failure(
                    f'unit "{name}" {state}'
                    + (f"\nlast journal lines:\n{journal.rstrip()}" if journal.strip() else "")
                )

    def start_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        """``systemctl start JOBNAME``; returns (status, stdout)."""
        return self.systemctl(f"start -- {shlex.quote(jobname)}", user)

    def stop_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        """``systemctl stop JOBNAME``; returns (status, stdout)."""
        return self.systemctl(f"stop -- {shlex.quote(jobname)}", user)
