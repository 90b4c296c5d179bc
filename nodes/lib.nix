# Topology helpers shared by the NixOS modules and the node specs (pure Nix, no pkgs).
{ lib, topology }:
rec {
  # The node's address on a VLAN, without the prefix length.
  address = node: vlan: builtins.head (lib.splitString "/" node.addresses.${vlan});

  # The services of a profile that run on node `name` (by node name or by role).
  servicesOn = profileName: name:
    let
      node = topology.nodes.${name};
      services = topology.profiles.${profileName}.services or [ ];
    in
    builtins.filter (s: builtins.elem name (s.nodes or [ ]) || builtins.elem node.role (s.roles or [ ])) services;

  # "chainfire.service" -> "chainfire": the attribute name under systemd.services.
  unitAttr = unit: lib.removeSuffix ".service" unit;

  # The VLANs node `name` is on, in the topology's [[vlans]] order: its NICs eth1, eth2, ...
  vlansOf = name: builtins.filter (v: topology.nodes.${name}.addresses ? ${v.name}) topology.vlans;

  # The MAC of node `name`'s NIC on VLAN `id` (driver/config/macs.py vlan_mac): the node's
  # 1-based position among the sorted node names, and the VLAN id.
  vlanMac = name: id:
    let
      index = lib.lists.findFirstIndex (n: n == name) 0 (builtins.attrNames topology.nodes) + 1;
      hex2 = n: lib.fixedWidthString 2 "0" (lib.toLower (lib.toHexString n));
    in
    "52:54:00:64:${hex2 id}:${hex2 index}";
}
