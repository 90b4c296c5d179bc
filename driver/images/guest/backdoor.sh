#!/bin/bash
# photon-driver backdoor: a root shell on a flow-controlled virtio serial port.
# Protocol, one round trip per command:
#   host -> guest  "<nonce> <length> <timeout-seconds>\n" then <length> bytes of bash source
#   guest -> host  "<nonce> <status> <timed-out 0|1>\n" then stdout, then stderr, each as
#                  records "<tag><n>\n<n bytes>": tag o/e is a piece followed by a NUL byte,
#                  O/E the last piece of stdout/stderr. Output is byte-exact, NULs included.
#   host -> guest  "<nonce> CANCEL\n" while <nonce> runs: its process group is killed and
#                  the answer comes at once (timed-out 1). A header that arrives while a
#                  command runs is kept for the main loop.
# Lines that do not start with the expected nonce are skipped by the host, so a client
# that reconnects resynchronises on its next command.
#
# Each command runs in a background subshell with its own process group (job control),
# stdout/stderr going to files: the reply comes when the command's shell exits, whatever
# its background children hold open. The guest enforces the deadline: when it passes, the
# whole process group is killed and the reply says so. Builtins only on the hot path (every
# fork+exec costs ~14 ms under TCG): one fork per command, no exec.
export LC_ALL=C HOME=/root TERM=dumb SYSTEMD_PAGER=cat PAGER=cat SYSTEMD_COLORS=0
# Keep the unit's PATH: on NixOS it is the only one (no FHS /usr/bin); Debian units get
# systemd's default. The FHS list is a fallback for a shell started without any PATH.
export PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}
cd /root 2>/dev/null || cd /
run=/run/photon-backdoor
[[ -d $run ]] || mkdir -p "$run"
photon_sleep_fifo=$run/sleep done_fifo=$run/done out_file=$run/stdout err_file=$run/stderr
[[ -p $photon_sleep_fifo ]] || mkfifo "$photon_sleep_fifo"
[[ -p $done_fifo ]] || mkfifo "$done_fifo"
# Sleep without spawning a process.
photon_sleep() { read -r -t "$1" <>"$photon_sleep_fifo" || :; }
port=""
while [[ -z $port ]]; do
  for d in /sys/class/virtio-ports/*; do
    [[ -r $d/name ]] || continue
    read -r n <"$d/name" || continue
    [[ $n == photon.backdoor ]] && port=/dev/${d##*/}
  done
  [[ -n $port ]] || photon_sleep 0.02
done
exec 3<>"$port" 5<>"$done_fifo"
set -m

# append_file TAG FILE: FILE's bytes appended to $reply as records split at NUL bytes (see
# the protocol above); an empty file is not even opened.
append_file() {
  local piece tag=${1,,}
  if [[ ! -s $2 ]]; then
    reply+="${1}0"$'\n'
    return
  fi
  exec 6<"$2"
  while IFS= read -r -d '' -u 6 piece; do
    reply+="$tag${#piece}"$'\n'"$piece"
  done
  reply+="$1${#piece}"$'\n'"$piece"
  exec 6<&-
}

# run_command SOURCE TIMEOUT NONCE: sets status and timed_out (TIMEOUT 0: no limit).
run_command() {
  local pid word stat up deadline=0 cn ca cb
  (
    exec 3>&- 5>&-
    trap 'printf "%d\n" "$BASHPID" >"$done_fifo"' EXIT
    eval "$1"
  ) </dev/null >"$out_file" 2>"$err_file" &
  pid=$!
  timed_out=0
  # Deadlines on the boot clock (/proc/uptime, centiseconds): stepping the wall clock
  # (date -s, a clock-skew fault, a restored snapshot) must not end or extend a command.
  if (($2 > 0)); then
    read -r up _ </proc/uptime
    deadline=$((10#${up/./} + $2 * 100))
  fi
  while :; do
    word=""
    IFS= read -r -t 0.1 -u 5 word
    [[ $word == "$pid" ]] && break
    # No word (yet): the shell may have exec'd a program that has exited, or the word was
    # lost to a signal; bash itself may already have reaped the child.
    read -r stat 2>/dev/null <"/proc/$pid/stat" || break
    stat=${stat##*) }
    [[ ${stat%% *} == Z ]] && break
    # The host may cancel this command, or already send the next one (kept for later).
    if ((!pending)) && IFS= read -r -t 0 -u 3 2>/dev/null; then
      IFS=' ' read -r cn ca cb <&3
      if [[ $cn == "$3" && $ca == CANCEL ]]; then
        timed_out=1
        kill -KILL -- "-$pid" 2>/dev/null
        break
      fi
      [[ -n $ca && $ca != *[!0-9]* ]] && pending=1 pending_nonce=$cn pending_len=$ca pending_limit=$cb
    fi
    if ((deadline > 0)); then
      read -r up _ </proc/uptime
      if ((10#${up/./} >= deadline)); then
        timed_out=1
        kill -KILL -- "-$pid" 2>/dev/null
        break
      fi
    fi
  done
  wait "$pid" 2>/dev/null
  status=$?
  if ((timed_out)); then
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -KILL -- "-$pid" 2>/dev/null || break
      photon_sleep 0.01
    done
  fi
}

echo "photon-backdoor: ready on $port" >&2
printf 'PHOTON-BACKDOOR-READY\n' >&3
pending=0
while :; do
  if ((pending)); then
    nonce=$pending_nonce len=$pending_len limit=$pending_limit pending=0
  elif ! IFS=' ' read -r nonce len limit <&3; then
    # End of file: no host is connected to the port (a detached cluster). A write to the
    # port blocks until one connects (virtio_console), so the shell sleeps there instead of
    # polling; the host skips the line (it carries no nonce).
    printf 'photon-backdoor: host connected\n' >&3 2>/dev/null || photon_sleep 0.1
    continue
  fi
  # Glob tests, not regexes: bash compiles a =~ pattern on every use, and under TCG every
  # statement on this path costs (the round trip is counted in bench/results/driver.json).
  [[ -n $len && $len != *[!0-9]* ]] || continue
  [[ -n $limit && $limit != *[!0-9]* ]] || limit=900
  cmd=""
  ((len > 0)) && IFS= read -r -N "$len" cmd <&3
  run_command "$cmd" "$limit" "$nonce"
  if [[ -s $out_file || -s $err_file ]]; then
    reply="$nonce $status $timed_out"$'\n'
    append_file O "$out_file"
    append_file E "$err_file"
  else
    reply="$nonce $status $timed_out"$'\nO0\nE0\n'
  fi
  printf '%s' "$reply" >&3  # the whole answer in one write
done
