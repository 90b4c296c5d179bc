#!/bin/bash
# photon-driver backdoor: a root shell on a flow-controlled virtio serial port.
# Protocol, one round trip per command:
#   host -> guest  "<nonce> <length> <timeout-centiseconds>\n" then <length> bytes of bash source
#                  (timeout 0: no limit)
#   guest -> host  "<nonce> <status> <timed-out 0|1>\n" then stdout, then stderr, each as
#                  records "<tag><n>\n<n bytes>": tag o/e is a piece followed by a NUL byte,
#                  O/E the last piece of stdout/stderr. Output is byte-exact, NULs included.
#   host -> guest  "<nonce> CANCEL\n" while <nonce> runs: its process group is killed and
#                  the answer comes within 0.1 s (timed-out 1). The host sends the next
#                  command only after an answer, so anything else that arrives while a
#                  command runs (a new client's command, or the host gone) ends it too; the
#                  main loop then reads it as usual (a CANCEL line is skipped).
# Lines that do not start with the expected nonce are skipped by the host, so a client
# that reconnects resynchronises on its next command.
#
# Each command runs in a background subshell with its own process group (job control),
# stdout/stderr going to files: the reply comes when the command's shell exits, whatever
# its background children hold open. The main loop only waits for it; a watchdog process
# enforces the deadline and the cancel (the whole process group is killed and the reply
# says so). Builtins only on the hot path (every fork+exec costs ~14 ms under TCG): one
# fork per command, no exec, no notification besides the exit itself.
# Test commands get the login environment, as on NixOS (whose backdoor sources /etc/profile):
# /etc/profile, /etc/profile.d/*.sh and the variables the topology declares there. The unit's
# PATH stays on the end: on NixOS it is the driver's tool list; Debian units get systemd's
# default. The FHS list is a fallback for a shell started without any PATH.
unit_path=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}
export USER=root HOME=/root
if [[ -r /etc/profile ]]; then
  # shellcheck disable=SC1091
  source /etc/profile >/dev/null 2>&1 || :
fi
export PATH=${PATH:+$PATH:}$unit_path
export LC_ALL=C TERM=dumb SYSTEMD_PAGER=cat PAGER=cat SYSTEMD_COLORS=0
unset unit_path
cd /tmp 2>/dev/null || cd /
# A command's stderr also goes to the console, as on NixOS (at most CONSOLE_ECHO_MAX bytes
# of one command: a huge stderr would cost seconds of emulated UART under TCG).
exec {console_fd}>>/dev/console || exec {console_fd}>/dev/null
CONSOLE_ECHO_MAX=65536
# The unit makes the directory (RuntimeDirectory=): no mkdir while the node boots.
run=/run/photon-backdoor
[[ -d $run ]] || mkdir -p "$run"
out_file=$run/stdout err_file=$run/stderr
# Sleep without spawning a process: a read with a timeout on a pipe that never has data
# (opened read-write, so it never sees EOF either). Commands inherit the descriptor: the
# driver's in-guest waits sleep with photon_sleep too. No mkfifo, no exec: the backdoor's
# start is on every boot's critical path, when an exec costs a busy vCPU the most.
exec {photon_sleep_fd}<> <(:)
photon_sleep() { read -r -t "$1" -u "$photon_sleep_fd" || :; }
# The channel: a VM's virtio serial port, or on a container node (no virtio) the connection
# systemd accepted on the socket the host binds in (photon-backdoor@.service: stdin is the
# socket). A container's shell ends with its connection; the next one gets a new shell.
port=""
if [[ ${PHOTON_BACKDOOR_CHANNEL-} == socket ]]; then
  port="a container socket"
  exec 3<&0 1>&3
else
  while [[ -z $port ]]; do
    for d in /sys/class/virtio-ports/*; do
      [[ -r $d/name ]] || continue
      read -r n <"$d/name" || continue
      [[ $n == photon.backdoor ]] && port=/dev/${d##*/}
    done
    [[ -n $port ]] || photon_sleep 0.02
  done
  exec 3<>"$port" 1>&3
fi

# append_file TAG FILE: FILE's bytes appended to $reply as records split at NUL bytes (see
# the protocol above); an empty file is not even opened.
# With ECHO set, the bytes (but NULs) also go to the console, CONSOLE_ECHO_MAX at most.
append_file() {
  local piece tag=${1,,} echoed=0
  if [[ ! -s $2 ]]; then
    reply+="${1}0"$'\n'
    return
  fi
  exec 6<"$2"
  while IFS= read -r -d '' -u 6 piece; do
    reply+="$tag${#piece}"$'\n'"$piece"
    [[ -n ${ECHO-} ]] && echo_console
  done
  reply+="$1${#piece}"$'\n'"$piece"
  [[ -n ${ECHO-} ]] && echo_console
  exec 6<&-
}
echo_console() {
  if ((echoed < CONSOLE_ECHO_MAX)); then
    printf '%s' "${piece:0:CONSOLE_ECHO_MAX-echoed}" >&"$console_fd" 2>/dev/null
    echoed=$((echoed + ${#piece}))
    if ((echoed > CONSOLE_ECHO_MAX)); then
      printf '\n[photon-backdoor: %d more bytes of stderr not shown]\n' \
        $((echoed - CONSOLE_ECHO_MAX)) >&"$console_fd" 2>/dev/null
    fi
  fi
}

# run_command SOURCE TIMEOUT: sets status and timed_out (TIMEOUT 0: no limit). The main loop
# only waits; the watchdog below enforces the deadline and the host's cancel.
# A signal sent to the backdoor itself (`kill -TERM $$` in a command: $$ is this shell) is
# passed on to the running command's process group, so the command ends as it would on
# NixOS (status 128+N) and the backdoor answers; with no command running, the signal ends
# the backdoor (systemd stopping it). SIGKILL cannot be caught: `kill -9 $$` restarts it.
command_pid=""
forwarded=""
forward_signal() {
  if [[ -z $command_pid ]]; then
    trap - "$1"
    kill -s "$1" "$BASHPID"
    return
  fi
  forwarded=1
  kill -s "$1" -- "-$command_pid" 2>/dev/null || :
}
for sig in TERM INT HUP QUIT USR1 USR2 ALRM; do
  # shellcheck disable=SC2064
  trap "forward_signal $sig" "$sig"
done
run_command() {
  local pid killed
  (
    exec 3>&- 7>&-
    eval "$1"
  ) </dev/null >"$out_file" 2>"$err_file" &
  pid=$!
  command_pid=$pid
  printf '%d %d\n' "$pid" "$2" >&7
  wait "$pid"
  status=$?
  # A trapped signal ends `wait` early: wait again for the command's own status.
  while [[ -n $forwarded ]]; do
    forwarded=""
    wait "$pid"
    status=$?
  done
  command_pid=""
  # Tell the watchdog the command is over before the answer goes out: host input that
  # follows the answer (the next command) must never be taken for a cancel of this one,
  # whose process group may still hold its background jobs.
  printf '%d done\n' "$pid" >&7
  timed_out=0
  if ((status == 137)) && read -r killed <"$killed_file" && [[ $killed == "$pid" ]]; then
    timed_out=1
  fi
}

# The watchdog: told "<pid> <timeout>" of each command, it looks every 0.1 s while that
# command runs. It kills the command's process group (and says so in $killed_file) when the
# deadline passes, or when the host has written to the port meanwhile: a cancel, or a new
# client (the host sends the next command only after the answer). Deadlines run on the
# boot clock (/proc/uptime, centiseconds): stepping the wall clock (date -s, a clock-skew
# fault, a restored snapshot) must not end or extend a command. It reads the pipe that only
# the main loop writes, so it ends when the main loop does.
# watch_deadline: the watchdog's deadline for $alimit centiseconds from now (0: none).
watch_deadline() {
  deadline=0
  if ((alimit > 0)); then
    read -r up _ </proc/uptime
    deadline=$((10#${up/./} + alimit))
  fi
}
# watch_lines: the main loop's newer lines (read in batches, 0.1 s late at most): a new
# command to watch, or "<pid> done" (the watched command ended: apid empty).
watch_lines() {
  local lpid larg
  while read -r -t 0 -u 8; do
    IFS=' ' read -r -u 8 lpid larg || exit 0
    if [[ $larg == done ]]; then
      [[ $lpid == "$apid" ]] && apid=""
    else
      apid=$lpid alimit=$larg
      watch_deadline
    fi
  done
}
# Host input counts against the watched command only if it came while that command was
# the current one: the main loop writes a command's line after reading its bytes, and its
# "done" line before its answer (so before the host sends anything else). Hence: the lines,
# then the input, then no newer line (else look again next round).
watchdog() {
  local apid alimit deadline up stat input
  while IFS=' ' read -r -u 8 apid alimit; do
    [[ $alimit == done ]] && continue # a command that ended before it was watched
    watch_deadline
    while :; do
      photon_sleep 0.1
      watch_lines
      [[ -n $apid ]] || break
      input=0
      read -r -t 0 -u 3 && input=1
      read -r -t 0 -u 8 && continue
      read -r stat 2>/dev/null <"/proc/$apid/stat" || break
      stat=${stat##*) }
      [[ ${stat%% *} == Z ]] && break
      if ((input == 0)); then
        ((deadline > 0)) || continue
        read -r up _ </proc/uptime
        ((10#${up/./} >= deadline)) || continue
      fi
      printf '%d\n' "$apid" >"$killed_file"
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -KILL -- "-$apid" 2>/dev/null || break
        photon_sleep 0.01
      done
      break
    done
  done
}
killed_file=$run/killed
: >"$killed_file"
# The watchdog reads a pipe only the main loop writes (fd 7), made by a process
# substitution rather than mkfifo and rm: it ends when the main loop does.
exec 7> >(
  exec 1>/dev/null 8<&0
  watchdog
)
set -m

echo "photon-backdoor: ready on $port" >&2
printf 'PHOTON-BACKDOOR-READY\n'
while :; do
  if ! IFS=' ' read -r -u 3 nonce len limit; then
    [[ ${PHOTON_BACKDOOR_CHANNEL-} == socket ]] && exit 0 # the host closed the connection
    # End of file: no host is connected to the port (a detached cluster). A write to the
    # port blocks until one connects (virtio_console), so the shell sleeps there instead of
    # polling; the host skips the line (it carries no nonce).
    printf 'photon-backdoor: host connected\n' 2>/dev/null || photon_sleep 0.1
    continue
  fi
  # Glob tests, not regexes: bash compiles a =~ pattern on every use, and under TCG every
  # statement on this path costs (the round trip is counted in bench/results/driver.json).
  # A CANCEL that came after its command ended is skipped here.
  [[ -n $len && $len != *[!0-9]* ]] || continue
  [[ -n $limit && $limit != *[!0-9]* ]] || limit=90000
  cmd=""
  ((len > 0)) && IFS= read -r -u 3 -N "$len" cmd
  run_command "$cmd" "$limit"
  if [[ -s $out_file || -s $err_file ]]; then
    reply="$nonce $status $timed_out"$'\n'
    append_file O "$out_file"
    ECHO=1 append_file E "$err_file"
  else
    reply="$nonce $status $timed_out"$'\nO0\nE0\n'
  fi
  printf '%s' "$reply"  # the whole answer in one write
done
