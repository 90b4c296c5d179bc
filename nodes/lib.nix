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
}
