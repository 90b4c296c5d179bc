"""The PhotonCloud contract as a page for PhotonCloud's engineers to review:
``python3 -m driver.config.contract > docs/photoncloud-contract.md``.

Everything comes from the topology's ``photoncloud`` profile (nodes/cluster.toml), the one
place where this project declares what it assumes of PhotonCloud's flake."""

from __future__ import annotations

import sys

from driver.config.topology import Profile, Topology, load_topology


def render(topology: Topology, profile: Profile) -> str:
    """The contract page in Markdown."""
    contract = profile.contract
    types = contract.get("node_option_types", {})
    lines = [
        "# What photoncloud-test-driver assumes of PhotonCloud's flake",
        "",
        f"Generated from `{topology.path.name}` (profile `{profile.name}`) by "
        "`python3 -m driver.config.contract`; correct an entry there, in one line, and regenerate.",
        "",
        f"The flake input `photoncloud` exposes `{contract.get('flake_output', '?')}`, a NixOS "
        "module that declares the options below. nodes/photoncloud.nix sets them on each node; "
        "the node specs (nodes/node-spec.nix) take every unit name from the evaluated "
        "`config.systemd.services`, so a unit missing there stops evaluation with a message "
        "naming the service.",
        "",
        "## Node options",
        "",
        "| option | type and meaning |",
        "|---|---|",
    ]
    for option in contract.get("node_options", []):
        lines.append(f"| `services.photoncloud.node.{option}` | {types.get(option, '')} |")
    lines += [
        "",
        "## Services",
        "",
        "Each is enabled with `services.photoncloud.<service>.enable = true` on the nodes "
        "listed, must define the systemd unit named, and must put each CLI's first word on "
        "the node's PATH (`environment.systemPackages`).",
        "",
        "| service | enable option | nodes | unit | endpoints | CLI actions used by the tests |",
        "|---|---|---|---|---|---|",
    ]
    for service in profile.services:
        endpoints = ", ".join(f"{e.name} {e.protocol}/{e.port}{e.path}" for e in service.endpoints)
        clis = "<br>".join(f"{action}: `{command}`" for action, command in service.cli.items())
        lines.append(
            f"| {service.name} | `services.photoncloud.{service.name}.enable` | "
            f"{', '.join(service.nodes)} | `{service.unit}` | {endpoints} | {clis} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    """Print the page for the bundled topology."""
    topology = load_topology()
    sys.stdout.write(render(topology, topology.profile("photoncloud")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
