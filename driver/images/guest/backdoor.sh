#!/bin/bash
# photon-driver backdoor: a root shell on a flow-controlled virtio serial port.
# Protocol, one round trip per command:
#   host -> guest  "<nonce> <length>\n" then <length> bytes of bash source
#   guest -> host  "<nonce> <status> <stdout-bytes> <stderr-bytes>\n" then stdout, stderr
# Lines that do not start with the expected nonce are skipped by the host, so a client
# that reconnects resynchronises on its next command.
export LC_ALL=C HOME=/root TERM=dumb SYSTEMD_PAGER=cat PAGER=cat SYSTEMD_COLORS=0
# Keep the unit's PATH: on NixOS it is the only one (no FHS /usr/bin); Debian units get
# systemd's default. The FHS list is a fallback for a shell started without any PATH.
export PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}
cd /root 2>/dev/null || cd /
photon_sleep_fifo=/run/photon-backdoor.sleep
[[ -p $photon_sleep_fifo ]] || mkfifo "$photon_sleep_fifo"
# Sleep without spawning a process (every fork+exec costs ~14 ms under TCG).
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
exec 3<>"$port"
errf=/run/photon-backdoor.stderr
echo "photon-backdoor: ready on $port" >&2
printf 'PHOTON-BACKDOOR-READY\n' >&3
while :; do
  if ! IFS=' ' read -r nonce len <&3; then
    photon_sleep 0.1
    continue
  fi
  [[ $len =~ ^[0-9]+$ ]] || continue
  cmd=""
  ((len > 0)) && IFS= read -r -N "$len" cmd <&3
  # The EXIT trap appends a sentinel even when the command calls `exit`, so trailing
  # newlines survive the command substitution.
  out=$(trap 'printf x' EXIT; eval "$cmd" </dev/null 2>"$errf")
  status=$?
  out=${out%x}
  err=""
  [[ -s $errf ]] && IFS= read -r -d '' err <"$errf"
  printf '%s %d %d %d\n%s%s' "$nonce" "$status" "${#out}" "${#err}" "$out" "$err" >&3
done
