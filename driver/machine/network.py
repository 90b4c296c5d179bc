"""Ports, links, host forwards, and HTTP / Prometheus probes."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from driver.config.spec import NodeSpec
from driver.duration import Duration, seconds
from driver.machine.base import DEFAULT_TIMEOUT, NodeBase
from driver.metrics import Metrics, parse_metrics


@dataclass(frozen=True)
class HttpResponse:
    """Status and body of an HTTP probe."""

    status: int
    body: str


class NetworkMixin(NodeBase):
    """Networking DSL methods."""

    spec: NodeSpec

    @staticmethod
    def _port_check(port: int, address: str | None, protocol: str) -> str:
        if protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol must be tcp or udp, not {protocol!r}")
        if address is not None and protocol == "tcp":
            return f"nc -z -w 2 {shlex.quote(address)} {port}"
        # The kernel's socket tables read with builtins: an attempt is one fork and no exec
        # (ss was three execs every attempt, on the vCPU the starting service needs).
        # Listening TCP sockets are in state 0A, bound UDP sockets in 07.
        files = (
            "/proc/net/tcp /proc/net/tcp6" if protocol == "tcp" else "/proc/net/udp /proc/net/udp6"
        )
        state = "0A" if protocol == "tcp" else "07"
        return (
            f"for f in {files}; do [[ -r $f ]] || continue; "
            f"while read -r _ l _ s _; do [[ $s == {state} && ${{l##*:}} == {port:04X} ]] "
            "&& exit 0; done <$f; done; exit 1"
        )

    def _wait_port(
        self, port: int, address: str | None, timeout: Duration, protocol: str, want_open: bool
    ) -> None:
        state = "open" if want_open else "closed"
        limit = seconds(timeout)
        with self.nested(f"waiting for {protocol} port {port} ({state})"):
            check = self._port_check(port, address, protocol)
            # Builtins cannot hang: no attempt timeout (and its `timeout` exec) is needed.
            bounded = 10.0 if address is not None else None
            polled = self._guest_loop(check, limit, want_success=want_open, attempt_timeout=bounded)
            if not polled.reached:
                raise self._timed_out(limit, f"{protocol} port {port} is not {state}")

    def wait_for_open_port(
        self,
        port: int,
        addr: str | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
        protocol: str = "tcp",
    ) -> None:
        """Wait until something listens on ``port`` (TCP or UDP, on any address; with
        ``addr``, until a TCP connect to ``addr`` succeeds); fails after ``timeout`` s.
        (The NixOS driver's default ``addr`` is localhost; ours, any address, also
        accepts a service bound only to a cluster address.)"""
        self._wait_port(port, addr, timeout, protocol, want_open=True)

    def wait_for_closed_port(
        self,
        port: int,
        addr: str | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
        protocol: str = "tcp",
    ) -> None:
        """Wait until nothing listens on ``port`` any more (with ``addr``: until a TCP
        connect to it fails); fails after ``timeout`` s."""
        self._wait_port(port, addr, timeout, protocol, want_open=False)

    def wait_for_open_unix_socket(
        self, path: str, is_datagram: bool = False, timeout: Duration = DEFAULT_TIMEOUT
    ) -> None:
        """Wait until a process listens on the unix socket ``path``; fails ("action timed
        out") after ``timeout``."""
        kind = "u_dgr" if is_datagram else "u_str"
        check = f"ss -Hlx | grep -E '^{kind}' | grep -qF -- ' {path} '"
        limit = seconds(timeout)
        with self.nested(f"waiting for unix socket {path}"):
            polled = self._guest_loop(check, limit, attempt_timeout=10.0)
            if not polled.reached:
                raise self._timed_out(limit, f"unix socket {path} did not open")

    # --- links and forwards --------------------------------------------------------

    def _nic_ids(self, vlan: int | None, every: bool) -> list[int]:
        ids = [
            i
            for i, nic in enumerate(self.spec.nics)
            if (every and vlan is None) or nic.vlan == vlan
        ]
        if vlan is None and not every:
            ids = [0] if self.spec.nics else []
        if not ids:
            raise self._failure(f"no NIC on VLAN {vlan}" if vlan else "no VLAN NIC to block")
        return ids

    def block(self, vlan: int | None = None, every: bool = False) -> None:
        """Cut the link of this node's first VLAN NIC (eth1), as NixOS's ``block()`` does
        (the user-mode eth0 stays up); ``vlan=N`` cuts the NIC on VLAN N instead, and
        ``every=True`` every VLAN NIC."""
        for nic in self._nic_ids(vlan, every):
            self._port.set_link(nic, False)

    def unblock(self, vlan: int | None = None, every: bool = False) -> None:
        """Restore the link(s) cut by ``block`` (same arguments)."""
        for nic in self._nic_ids(vlan, every):
            self._port.set_link(nic, True)

    def forward_port(
        self, host_port: int = 8080, guest_port: int = 80, protocol: str = "tcp"
    ) -> None:
        """Forward 127.0.0.1:``host_port`` on the host to ``guest_port`` in the guest."""
        rule = f"{protocol}:127.0.0.1:{host_port}-:{guest_port}"
        reply = self.send_qmp_command(
            "human-monitor-command", **{"command-line": f"hostfwd_add user0 {rule}"}
        )
        if isinstance(reply, str) and reply.strip():
            raise self._failure(f"forward_port {rule}: {reply.strip()}")

    def host_port(self, guest_port: int, protocol: str = "tcp") -> int:
        """The 127.0.0.1 host port forwarded to ``guest_port`` by the spec."""
        for fwd, port in self._port.forwards():
            if fwd.guest_port == guest_port and fwd.protocol == protocol:
                return port
        raise self._failure(f"no host forward for guest {protocol} port {guest_port}")

    # --- probes --------------------------------------------------------------------

    def http_get(
        self, url: str, timeout: Duration = 10.0, expect_status: int | None = 200
    ) -> HttpResponse:
        """GET ``url`` from inside this node with curl; checks the status if given."""
        fmt = "\\n%{http_code}"
        limit = seconds(timeout)
        result = self.run(
            f"curl -sS -m {limit:g} -o - -w '{fmt}' {shlex.quote(url)}", timeout=limit + 10
        )
        if result.status != 0:
            raise self._failure(f"GET {url} failed: {result.stderr.strip()}")
        body, _, code = result.stdout.rpartition("\n")
        response = HttpResponse(int(code), body)
        if expect_status is not None and response.status != expect_status:
            raise self._failure(f"GET {url}: status {response.status}, expected {expect_status}")
        return response

    def host_http_get(
        self,
        guest_port: int,
        path: str = "/",
        timeout: Duration = 10.0,
        expect_status: int | None = 200,
    ) -> HttpResponse:
        """GET ``path`` from the host through this node's forward of ``guest_port``."""
        import urllib.error  # here: ~12 ms on every driver start that makes no host GET
        import urllib.request

        url = f"http://127.0.0.1:{self.host_port(guest_port)}{path}"
        try:
            with urllib.request.urlopen(url, timeout=seconds(timeout)) as reply:
                response = HttpResponse(reply.status, reply.read().decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            response = HttpResponse(exc.code, exc.read().decode(errors="replace"))
        except OSError as exc:
            raise self._failure(f"host GET {url} failed: {exc}") from None
        if expect_status is not None and response.status != expect_status:
            raise self._failure(f"host GET {url}: status {response.status}, want {expect_status}")
        return response

    def scrape_metrics(self, url: str, timeout: Duration = 10.0) -> Metrics:
        """Scrape a Prometheus endpoint from inside this node and parse it."""
        body = self.http_get(url, timeout).body
        try:
            return parse_metrics(body)
        except ValueError as exc:
            raise self._failure(f"{url}: not Prometheus text: {exc}") from None
