# PhotonCloud's services per role, from the `photoncloud` flake input's NixOS modules.
# Which service runs where comes from the topology's photoncloud profile (one place).
{ config, lib, name, topology, photoncloud, ... }:
let
  node = topology.nodes.${name};
  services = topology.profiles.photoncloud.services;
  runsHere = s: builtins.elem name (s.nodes or [ ]) || builtins.elem node.role (s.roles or [ ]);
  here = builtins.filter runsHere services;
  controlPeers = lib.filterAttrs (_: n: n.role == "control") topology.nodes;
  peerAddress = n: builtins.head (lib.splitString "/" n.addresses.cluster);
in
{
  imports = [ photoncloud.nixosModules.default ];

  services.photoncloud = {
    node = {
      inherit name;
      role = node.role;
      address = peerAddress node;
      peers = lib.mapAttrsToList (n: v: { name = n; address = peerAddress v; }) controlPeers;
    };
  } // builtins.listToAttrs (map (s: {
    name = s.name;
    value = { enable = true; };
  }) here);

  virtualisation.libvirtd.enable = node.role == "worker";
  boot.kernelModules = lib.optionals (node.nested_virtualisation or false) [ "kvm-amd" "kvm-intel" ];
}
