# PhotonCloud's services per role, from the `photoncloud` flake input's NixOS modules.
# Which service runs where comes from the topology's photoncloud profile (one place); the
# options set here are the contract in nodes/cluster.toml ([profiles.photoncloud.contract],
# rendered into docs/photoncloud-contract.md).
{ lib, name, topology, photoncloud, ... }:
let
  topo = import ./lib.nix { inherit lib topology; };
  node = topology.nodes.${name};
  controlPeers = lib.filterAttrs (_: n: n.role == "control") topology.nodes;
in
{
  imports = [ photoncloud.nixosModules.default ];

  services.photoncloud = {
    node = {
      inherit name;
      role = node.role;
      address = topo.address node "cluster";
      peers = lib.mapAttrsToList (n: v: { name = n; address = topo.address v "cluster"; }) controlPeers;
    };
  } // builtins.listToAttrs (map (s: {
    name = s.name;
    value = { enable = true; };
  }) (topo.servicesOn "photoncloud" name));

  virtualisation.libvirtd.enable = node.role == "worker";
  boot.kernelModules = lib.optionals (node.nested_virtualisation or false) [ "kvm-amd" "kvm-intel" ];
}
