{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  profile = (builtins.fromTOML (builtins.readFile ./cluster.toml)).profiles.photoncloud;
  cfg = config.services.photoncloud;
  unitAttr = s: lib.removeSuffix ".service" s.unit;
  cliNames = s: lib.unique (map (c: builtins.head (lib.splitString " " c)) (builtins.attrValues (s.cli or { })));
  # A stub package per service, holding its daemon and CLIs.
  package = s: derivation {
    name = "photoncloud-${s.name}-stub";
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "exit 1" ];
    bins = cliNames s;
  };
  nodeOptions = {
    name = mkOption { type = types.str; };
    role = mkOption { type = types.enum [ "control" "worker" "gateway" ]; };
    address = mkOption { type = types.str; };
    peers = mkOption {
      type = types.listOf (types.submodule {
        options.name = mkOption { type = types.str; };
        options.address = mkOption { type = types.str; };
      });
      default = [ ];
    };
  };
in
{
  options.services.photoncloud = {
    node = lib.filterAttrs (n: _: builtins.elem n profile.contract.node_options) nodeOptions;
  } // builtins.listToAttrs (map (s: {
    name = s.name;
    value.enable = lib.mkEnableOption "PhotonCloud ${s.name}";
  }) profile.services);

  config = lib.mkMerge (map (s: lib.mkIf cfg.${s.name}.enable {
    systemd.services.${unitAttr s} = {
      description = "PhotonCloud ${s.name} (stub)";
      wantedBy = [ "multi-user.target" ];
      serviceConfig.ExecStart = "${package s}/bin/${s.name} --node ${cfg.node.name}";
    };
    environment.systemPackages = [ (package s) ];
  }) profile.services);
}
