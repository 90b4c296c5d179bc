"""Client commands the reference profile's test scripts run inside its guests, declared once."""

from __future__ import annotations

__all__ = ["ETCDCTL", "PSQL"]

# etcd's v3 client against the node's own member.
ETCDCTL = "env ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379"

# psql as the postgres user (peer authentication over the local socket), followed by the
# SQL: without PAM (setpriv instead of runuser) and without Debian's Perl wrapper
# /usr/bin/psql (pg_wrapper), which under TCG cost about 1 s of every query.
PSQL = (
    "cd /tmp && setpriv --reuid=postgres --regid=postgres --init-groups"
    " /usr/lib/postgresql/*/bin/psql -XAtq -c"
)
