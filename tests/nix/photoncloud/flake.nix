# A stand-in for PhotonCloud's flake that declares exactly the contract this project assumes
# (nodes/cluster.toml, [profiles.photoncloud]; tests/test_flake.py copies that file in as
# ./cluster.toml): services.photoncloud.node.*, services.photoncloud.<service>.enable, and for
# each enabled service its systemd unit and its CLIs on the PATH.
{
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11"; # always `follows` ours
  outputs = { self, nixpkgs }: {
    nixosModules.default = import ./module.nix;
  };
}
