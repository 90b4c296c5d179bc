"""From topology + profile to node start specs: images, identities, rendered config."""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Mapping
from pathlib import Path

from driver.config.macs import user_mac, vlan_mac
from driver.config.spec import Nic, NodeSpec, load_spec
from driver.config.topology import Node, Profile, Topology
from driver.errors import UsageError
from driver.images.builder import Image, build_image
from driver.images.debian_spec import debian_node_spec
from driver.images.identity import NodeIdentity
from driver.images.node_files import config_files
from driver.images.recipe import ImageRecipe
from driver.keys import CLIENT_KEY_COMMENT, client_key, ssh_keypair
from driver.log import Logger


def image_recipe(topology: Topology, image: str, node: Node | None = None) -> ImageRecipe:
    """The ImageRecipe named ``image`` in the topology's ``[images]`` table, with ``node``'s
    own packages added (nodes that ask for the same set share one image)."""
    if image not in topology.images:
        raise UsageError(f"{topology.path}: images.{image}: not defined")
    table = topology.images[image]
    packages = tuple(table.get("packages", []))
    extra = tuple(p for p in (node.config.packages if node else ()) if p not in packages)
    return ImageRecipe(
        name=f"{image}+{'+'.join(sorted(extra)[:3])}"[:80] if extra else image,
        packages=tuple(sorted({*packages, *extra})),
        disable_units=tuple(table.get("disable_units", [])),
    )


def node_mac(topology: Topology, node: str, vlan: int) -> str:
    """Stable MAC for ``node``'s NIC on ``vlan``."""
    return vlan_mac(sorted(topology.nodes).index(node) + 1, vlan)


def template_vars(topology: Topology, node: Node) -> dict[str, str]:
    """Variables for config templates: ``$node``, ``$address``, ``$role``, ``$domain``,
    and ``$<name>_address`` for every node."""
    values = {
        "node": node.name,
        "address": node.address(),
        "role": node.role,
        "domain": topology.domain,
    }
    for other in topology.nodes.values():
        values[f"{other.name.replace('-', '_')}_address"] = other.address()
    return values


def image_files(topology: Topology, image: str) -> dict[str, tuple[bytes, int]]:
    """The ``files`` of ``[images.IMAGE]``: guest path -> (content, mode). A value is a
    path next to the topology file, or a table with ``content`` (and ``mode``)."""
    files: dict[str, tuple[bytes, int]] = {}
    for target, source in topology.images.get(image, {}).get("files", {}).items():
        if isinstance(source, dict) and "source" in source:
            content = (topology.path.parent / source["source"]).read_bytes()
            mode = int(str(source.get("mode", "0644")), 8)
        elif isinstance(source, dict):
            content = str(source["content"]).encode()
            mode = int(str(source.get("mode", "0644")), 8)
        else:
            content = (topology.path.parent / source).read_bytes()
            mode = 0o755 if content.startswith(b"#!") else 0o644
        files[target.lstrip("/")] = (content, mode)
    return files


def render_files(topology: Topology, profile: Profile, node: Node) -> dict[str, tuple[bytes, int]]:
    """The profile's config files for ``node``, rendered from ``nodes/<source>``."""
    files: dict[str, tuple[bytes, int]] = {}
    values = template_vars(topology, node)
    for service in profile.services_on(node.name):
        for target, source in service.files.items():
            path = topology.path.parent / source
            try:
                text = string.Template(path.read_text()).substitute(values)
            except FileNotFoundError:
                raise UsageError(
                    f"{topology.path}: service {service.name}: file {source} not found"
                ) from None
            except (KeyError, ValueError) as exc:
                raise UsageError(f"{path}: bad template variable {exc}") from None
            mode = 0o755 if text.startswith("#!") else 0o644
            files[target.lstrip("/")] = (text.encode(), mode)
    return files


def node_identity(
    topology: Topology,
    profile: Profile,
    node: Node,
    state: Path,
    extra_files: Mapping[str, tuple[bytes, int]] | None = None,
) -> NodeIdentity:
    """Hostname, addresses, hosts, keys, units and config of ``node`` (plus ``extra_files``:
    guest path -> (content, mode))."""
    files = {**image_files(topology, profile.image), **render_files(topology, profile, node)}
    provided = {p.removeprefix("etc/systemd/system/") for p in files}
    provided |= {p.lstrip("/").removeprefix("etc/systemd/system/") for p in node.config.files}
    try:
        added = config_files(node.config, template_vars(topology, node), provided)
    except UsageError as exc:
        raise UsageError(f"{topology.path}: nodes.{node.name}.{exc}") from None
    files.update(added.files)
    files.update(extra_files or {})
    units = [service.unit for service in profile.services_on(node.name)]
    units += added.enable_units
    client_private, client_public = ssh_keypair(client_key(state), CLIENT_KEY_COMMENT)
    del client_private
    host_key = ssh_keypair(state / node.name / "ssh_host_ed25519_key", f"root@{node.name}")
    return NodeIdentity(
        hostname=node.name,
        addresses={
            node_mac(topology, node.name, topology.vlans[v]): (
                cidr,
                *node.extra_addresses.get(v, ()),
            )
            for v, cidr in node.addresses.items()
        },
        user_mac=user_mac(node.name),
        hosts=hosts_lines(topology),
        enable_units=tuple(dict.fromkeys(units)),
        files=files,
        ssh_host_key=host_key,
        authorized_keys=client_public.decode(),
        routes=node_routes(topology, node),
        symlinks=added.symlinks,
        removals=added.removals,
    )


def hosts_lines(topology: Topology) -> tuple[tuple[str, str], ...]:
    """/etc/hosts as NixOS writes it for a test: each node's address on its first VLAN
    (and its first IPv6 address there, if any) with ``name.domain`` and ``name``."""
    lines = []
    for other in topology.nodes.values():
        if not other.address():
            continue
        names = f"{other.name}.{topology.domain} {other.name}" if topology.domain else other.name
        lines.append((other.address(), names))
        first = next(iter(other.addresses))
        v6 = [c for c in other.extra_addresses.get(first, ()) if ":" in c]
        if v6:
            lines.append((v6[0].split("/")[0], names))
    return tuple(lines)


def node_routes(topology: Topology, node: Node) -> dict[str, tuple[tuple[str, str], ...]]:
    """MAC -> (destination, gateway) of ``node``'s routes and default gateway, each on the
    VLAN NIC whose subnet holds the gateway ("" destination: the default route)."""
    wanted = [(r.to, r.via) for r in node.config.routes]
    if node.config.default_gateway:
        wanted.append(("", node.config.default_gateway))
    routes: dict[str, tuple[tuple[str, str], ...]] = {}
    for to, via in wanted:
        for vlan, cidr in node.addresses.items():
            cidrs = (cidr, *node.extra_addresses.get(vlan, ()))
            if any(ipaddress.ip_address(via) in ipaddress.ip_interface(c).network for c in cidrs):
                mac = node_mac(topology, node.name, topology.vlans[vlan])
                routes[mac] = (*routes.get(mac, ()), (to, via))
                break
    return routes


def debian_specs(
    topology: Topology,
    profile: Profile,
    state: Path,
    cache_root: Path,
    logger: Logger,
    names: list[str] | None = None,
    extra_files: Mapping[str, tuple[bytes, int]] | None = None,
) -> dict[str, NodeSpec]:
    """Build (or reuse) the profile's image and write every node's spec under ``state``;
    ``extra_files`` go into every node's identity (guest path -> (content, mode)). A run
    with no nodes builds nothing."""
    if not [n for n in topology.nodes if names is None or n in names]:
        return {}
    images: dict[str, Image] = {}
    specs: dict[str, NodeSpec] = {}
    for node in topology.nodes.values():
        if names is not None and node.name not in names:
            continue
        recipe = image_recipe(topology, profile.image, node)
        key = recipe.cache_key()
        if key not in images:
            images[key] = build_image(recipe, cache_root, logger)
        image = images[key]
        identity = node_identity(topology, profile, node, state, extra_files)
        nics = tuple(
            Nic(
                vlan=topology.vlans[v],
                mac=node_mac(topology, node.name, topology.vlans[v]),
                address=cidr,
            )
            for v, cidr in node.addresses.items()
        )
        forwards = node.forwards
        spec = debian_node_spec(
            image,
            identity,
            state / node.name,
            nics=nics,
            forwards=forwards,
            vcpus=node.vcpus,
            memory_mib=node.memory_mib,
            # TCG emulates AMD nested paging: without +npt the worker's KVM shadows the
            # nested guest's page tables, which made its boot about 3 s slower here.
            cpu_tcg="qemu64,+npt" if node.nested_virtualisation else "qemu64,-svm",
            kind=node.kind,
        )
        spec.write(state / node.name / "spec.json")
        specs[node.name] = spec
    return specs


def specs_from_dir(
    directory: Path, state: Path, names: list[str] | None = None
) -> dict[str, NodeSpec]:
    """Node specs prebuilt elsewhere (e.g. by ``nix build .#nodeSpecs``): ``<node>.json``.

    Each is also written to ``<state>/<node>/spec.json``, like the Debian path's, so a
    cluster started from them can be attached to (``smoke``, ``ssh``, ``run --reuse``)."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: spec directory not found")
    specs = {p.stem: load_spec(p) for p in sorted(directory.glob("*.json"))}
    if not specs:
        raise UsageError(f"{directory}: no node spec (*.json) found")
    if names is not None:
        specs = {k: v for k, v in specs.items() if k in names}
    for name, spec in specs.items():
        (state / name).mkdir(parents=True, exist_ok=True)
        spec.write(state / name / "spec.json")
    return specs


def profile_specs(
    topology: Topology,
    profile_name: str,
    state: Path,
    cache_root: Path,
    logger: Logger,
    names: list[str] | None = None,
    spec_dir: Path | None = None,
) -> dict[str, NodeSpec]:
    """Specs for a profile: from ``spec_dir`` when given, else built from Debian images."""
    profile = topology.profile(profile_name)
    if spec_dir is not None:
        return specs_from_dir(spec_dir, state, names)
    if profile.image == "nix":
        raise UsageError(
            f"profile '{profile_name}' runs PhotonCloud's own services, which are built by Nix: "
            "use `nix run .#driver` / `nix run .#cluster`, or pass --specs DIR with prebuilt "
            "node specs (`nix build .#nodeSpecs`)"
        )
    return debian_specs(topology, profile, state, cache_root, logger, names)
