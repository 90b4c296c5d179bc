"""A node's addresses in the topology: ``addresses`` per named VLAN (one CIDR or a list),
or ``vlans`` as NixOS's ``virtualisation.vlans`` with NixOS's automatic addresses, and
``extra_addresses``. The list order is the NIC order (eth1, eth2, ...)."""

from __future__ import annotations

from typing import Any

from driver.config.topology_reader import TopologyReader, optional

# The MAC scheme (config/macs.py) holds a VLAN id in one byte.
MAX_VLAN_ID = 255


def _vlan_name(vlans: dict[str, int], number: int) -> str:
    """The VLAN with id ``number`` (declared, or made now as ``vlanN``)."""
    for name, known in vlans.items():
        if known == number:
            return name
    vlans[f"vlan{number}"] = number
    return f"vlan{number}"


def node_addresses(
    r: TopologyReader,
    table: dict[str, Any],
    where: str,
    vlans: dict[str, int],
    number: int,
) -> dict[str, list[str]]:
    """VLAN name -> the node's CIDRs there (the first is its address), NIC order: the
    ``vlans`` list as NixOS's ``virtualisation.vlans`` (192.168.V.N/24, 2001:db8:V::N/64,
    N = ``number``), or ``addresses`` in the topology's [[vlans]] order."""
    found: dict[str, list[str]] = {}
    if "vlans" in table:
        if "addresses" in table:
            raise r.fail(f"{where}.vlans", "give either vlans (NixOS's addressing) or addresses")
        for i, vlan in enumerate(r.get(table, "vlans", list, where)):
            if not isinstance(vlan, int) or isinstance(vlan, bool) or not 1 <= vlan <= MAX_VLAN_ID:
                raise r.fail(
                    f"{where}.vlans[{i}]", f"must be a VLAN id 1-{MAX_VLAN_ID}, got {vlan!r}"
                )
            name = _vlan_name(vlans, vlan)
            if name in found:
                raise r.fail(f"{where}.vlans[{i}]", f"VLAN {vlan} listed twice")
            found[name] = [f"192.168.{vlan}.{number}/24", f"2001:db8:{vlan}::{number}/64"]
    declared = optional(r, table, "addresses", dict, where, {})
    for vlan in declared:
        if vlan not in vlans:
            raise r.fail(f"{where}.addresses.{vlan}", f"unknown VLAN '{vlan}'")
    for vlan in [v for v in vlans if v in declared]:
        value = declared[vlan]
        cidrs = value if isinstance(value, list) else [value]
        if not cidrs:
            raise r.fail(f"{where}.addresses.{vlan}", "needs at least one address")
        found[vlan] = list(cidrs)
    for key, more in optional(r, table, "extra_addresses", dict, where, {}).items():
        vlan = _vlan_name(dict(vlans), int(key)) if key.isdigit() else key
        if vlan not in found:
            raise r.fail(f"{where}.extra_addresses.{key}", f"the node is not on VLAN '{key}'")
        if not isinstance(more, list):
            raise r.fail(f"{where}.extra_addresses.{key}", f"must be a list, got {more!r}")
        found[vlan] += more
    return found


def load_vlans(r: TopologyReader, raw: dict[str, Any]) -> dict[str, int]:
    vlans: dict[str, int] = {}
    for i, table in enumerate(optional(r, raw, "vlans", list, "", [])):
        where = f"vlans[{i}]"
        if not isinstance(table, dict):
            raise r.fail(where, f"must be a table, got {table!r}")
        name = r.get(table, "name", str, where)
        number = optional(r, table, "id", int, where, i + 1)
        if not 1 <= number <= MAX_VLAN_ID:
            raise r.fail(f"{where}.id", f"must be 1-{MAX_VLAN_ID} (the MAC scheme), got {number}")
        if name in vlans:
            raise r.fail(f"{where}.name", f"duplicate VLAN name '{name}'")
        if number in vlans.values():
            raise r.fail(f"{where}.id", f"duplicate VLAN id {number}")
        vlans[name] = number
    return vlans
