"""From topology + profile to node start specs: images, identities, rendered config."""

from __future__ import annotations

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
from driver.images.recipe import ImageRecipe
from driver.keys import ssh_keypair
from driver.log import Logger


def image_recipe(topology: Topology, image: str) -> ImageRecipe:
    """The ImageRecipe named ``image`` in the topology's ``[images]`` table."""
    if image not in topology.images:
        raise UsageError(f"{topology.path}: images.{image}: not defined")
    table = topology.images[image]
    return ImageRecipe(
        name=image,
        packages=tuple(table.get("packages", [])),
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
        if isinstance(source, dict):
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
    hosts: dict[str, str] = {}
    for other in topology.nodes.values():
        if other.address():
            hosts[other.name] = other.address()
    files = {
        **image_files(topology, profile.image),
        **render_files(topology, profile, node),
        **(extra_files or {}),
    }
    units = []
    for service in profile.services_on(node.name):
        units.append(service.unit)
    client_private, client_public = ssh_keypair(state / "ssh" / "id_ed25519", "photon-driver")
    del client_private
    host_key = ssh_keypair(state / node.name / "ssh_host_ed25519_key", f"root@{node.name}")
    return NodeIdentity(
        hostname=node.name,
        addresses={
            node_mac(topology, node.name, topology.vlans[v]): cidr
            for v, cidr in node.addresses.items()
        },
        user_mac=user_mac(node.name),
        hosts=hosts,
        enable_units=tuple(dict.fromkeys(units)),
        files=files,
        ssh_host_key=host_key,
        authorized_keys=client_public.decode(),
    )


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
    image: Image = build_image(image_recipe(topology, profile.image), cache_root, logger)
    specs: dict[str, NodeSpec] = {}
    for node in topology.nodes.values():
        if names is not None and node.name not in names:
            continue
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
