"""A node's topology configuration (config/node_config.py) as what its identity lays over
the image: files, symlinks, paths to remove, and the first-boot setup unit for what files
alone cannot say (users and groups, owners, files under /run, the setup hook)."""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from driver.config.node_config import Group, NodeConfig, NodeFile
from driver.errors import UsageError

SETUP_SCRIPT = "etc/photon/node-setup.sh"
SETUP_HOOK = "etc/photon/setup-hook"
RUN_FILES = "etc/photon/run"  # files for /run, copied there at every boot
SETUP_DONE = "/var/lib/photon/node-setup-done"
SETUP_UNIT = """[Unit]
Description=photon-driver node setup (users, groups, owners, /run files, setup hook)
DefaultDependencies=no
After=local-fs.target systemd-journald.socket
Before=sysinit.target photon-backdoor.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/bash /etc/photon/node-setup.sh
StandardOutput=journal+console
StandardError=journal+console
"""
# The backdoor answers only once the node's users exist and its setup hook has run.
BACKDOOR_AFTER_SETUP = "[Unit]\nWants=photon-node-setup.service\nAfter=photon-node-setup.service\n"


@dataclass(frozen=True)
class ConfigFiles:
    """What a node's configuration adds to its identity."""

    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (data, mode)
    symlinks: dict[str, str] = field(default_factory=dict)  # path -> target
    removals: tuple[str, ...] = ()  # glob patterns under the root
    enable_units: tuple[str, ...] = ()


def _systemd_quote(key: str, value: str) -> str:
    escaped = f"{key}={value}".replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _content(path: str, spec: NodeFile, variables: Mapping[str, str]) -> bytes:
    if not spec.template:
        return spec.content
    try:
        return string.Template(spec.content.decode()).substitute(variables).encode()
    except (KeyError, ValueError) as exc:
        raise UsageError(f"files.{path}: bad template variable {exc}") from None


def _setup_script(config: NodeConfig) -> str:
    """The first-boot script: /run files and owners at every boot, accounts and the hook
    once (the marker survives reboots, not a fresh run's new overlay)."""
    lines = ["#!/bin/bash", "set -eu", "export PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    if any(p.startswith("/run/") for p in config.files):
        lines.append(f"cp -a /{RUN_FILES}/. /run/")
    lines.append(f"if [ ! -e {SETUP_DONE} ]; then")
    # Groups a user is in are made too when the topology does not declare them.
    wanted = list(config.groups)
    for user in config.users:
        for name in user.groups:
            if name not in {g.name for g in wanted}:
                wanted.append(Group(name))
    for group in wanted:
        gid = f"-g {group.gid} " if group.gid is not None else ""
        lines.append(f"  getent group {group.name} >/dev/null || groupadd {gid}{group.name}")
    for user in config.users:
        flags = [f"-u {user.uid}"] if user.uid is not None else []
        flags += ["-r"] if user.system else []
        flags += ["-m"] if user.create_home else ["-M"]
        flags += ["-d", shlex.quote(user.home), "-s", shlex.quote(user.shell)]
        flags += ["-G", ",".join(user.groups)] if user.groups else []
        lines.append(
            f"  getent passwd {user.name} >/dev/null || useradd {' '.join(flags)} {user.name}"
        )
        if user.password is not None:
            lines.append(
                f"  printf '%s\\n' {shlex.quote(f'{user.name}:{user.password}')} | chpasswd"
            )
    if config.setup:
        lines.append(f"  bash /{SETUP_HOOK}")
    lines += [f"  mkdir -p {SETUP_DONE.rsplit('/', 1)[0]}", f"  touch {SETUP_DONE}", "fi"]
    for path, spec in sorted(config.files.items()):
        if (spec.owner, spec.group) != ("root", "root") and not spec.symlink:
            lines.append(f"chown {spec.owner}:{spec.group} {shlex.quote(path)}")
    return "\n".join(lines) + "\n"


def config_files(
    config: NodeConfig, variables: Mapping[str, str], provided_units: set[str]
) -> ConfigFiles:
    """Files, symlinks and removals for ``config``; ``variables`` fill templated files;
    ``provided_units`` are unit files the node gets under /etc/systemd/system."""
    files: dict[str, tuple[bytes, int]] = {}
    symlinks: dict[str, str] = {}
    for path, spec in config.files.items():
        rel = path.lstrip("/")
        if path.startswith("/run/"):
            rel = f"{RUN_FILES}/{path.removeprefix('/run/')}"
        if spec.symlink:
            symlinks[rel] = spec.symlink
        else:
            files[rel] = (_content(path, spec, variables), spec.mode)
    if config.environment:
        text = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in config.environment.items())
        files["etc/profile.d/zz-photon-topology.sh"] = (text.encode(), 0o644)
    if config.service_environment:
        values = " ".join(_systemd_quote(k, v) for k, v in config.service_environment.items())
        text = f"[Manager]\nDefaultEnvironment={values}\n"
        files["etc/systemd/system.conf.d/photon-topology-environment.conf"] = (text.encode(), 0o644)
    if config.sysctl:
        text = "".join(f"{k} = {v}\n" for k, v in config.sysctl.items())
        files["etc/sysctl.d/60-photon-topology.conf"] = (text.encode(), 0o644)
    for unit in config.mask_units:
        symlinks[f"etc/systemd/system/{unit}"] = "/dev/null"
    for alias, unit in config.unit_aliases.items():
        home = "/etc/systemd/system" if unit in provided_units else "/lib/systemd/system"
        symlinks[f"etc/systemd/system/{alias}"] = f"{home}/{unit}"
    removals = tuple(f"etc/systemd/system/*.wants/{unit}" for unit in config.disable_units)
    enable = list(config.enable_units)
    if config.needs_setup_unit():
        files[SETUP_SCRIPT] = (_setup_script(config).encode(), 0o755)
        if config.setup:
            files[SETUP_HOOK] = (config.setup.encode(), 0o755)
        files["etc/systemd/system/photon-node-setup.service"] = (SETUP_UNIT.encode(), 0o644)
        symlinks["etc/systemd/system/sysinit.target.wants/photon-node-setup.service"] = (
            "/etc/systemd/system/photon-node-setup.service"
        )
        files["etc/systemd/system/photon-backdoor.service.d/10-node-setup.conf"] = (
            BACKDOOR_AFTER_SETUP.encode(),
            0o644,
        )
    return ConfigFiles(files, symlinks, removals, tuple(enable))
