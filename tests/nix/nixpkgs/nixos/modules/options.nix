# Typed stubs of the NixOS options this project's modules set, with the types NixOS 25.11
# gives them (no freeform submodules: an unknown or misspelt option is an error, with the
# module system's own message). system.build.toplevel is a derivation that depends on the
# whole evaluated configuration, as in NixOS.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  opt = type: default: mkOption { inherit type default; };
  str = types.str;
  bool = types.bool;
  strs = types.listOf types.str;
  unitOption = types.oneOf [ types.str types.int types.bool (types.listOf types.str) ];
  unitSection = types.attrsOf unitOption;
  serviceType = types.submodule {
    options = {
      enable = opt bool true;
      description = opt str "";
      wantedBy = opt strs [ ];
      requiredBy = opt strs [ ];
      after = opt strs [ ];
      before = opt strs [ ];
      wants = opt strs [ ];
      requires = opt strs [ ];
      path = opt (types.listOf (types.either types.package types.str)) [ ];
      environment = opt (types.attrsOf str) { };
      script = opt types.lines "";
      unitConfig = opt unitSection { };
      serviceConfig = opt unitSection { };
    };
  };
  unitFileType = types.submodule {
    options = {
      enable = opt bool true;
      text = opt (types.nullOr types.str) null;
    };
  };
  networkType = types.submodule {
    options = {
      matchConfig = opt unitSection { };
      address = opt strs [ ];
      DHCP = opt (types.nullOr (types.enum [ "yes" "no" "ipv4" "ipv6" ])) null;
      dhcpV4Config = opt unitSection { };
    };
  };
  fileSystemType = types.submodule {
    options = {
      device = opt (types.nullOr str) null;
      fsType = opt str "auto";
      options = opt strs [ "defaults" ];
      neededForBoot = opt bool false;
      autoFormat = opt bool false;
    };
  };
  etcType = types.submodule {
    options.source = mkOption { type = types.either types.path str; };
  };
in
{
  options = {
    networking = {
      hostName = mkOption { type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$"; };
      useDHCP = opt bool true;
      useNetworkd = opt bool false;
      firewall.enable = opt bool true;
      hosts = opt (types.attrsOf strs) { };
    };
    systemd = {
      services = opt (types.attrsOf serviceType) { };
      units = opt (types.attrsOf unitFileType) { };
      network.networks = opt (types.attrsOf networkType) { };
      network.config.networkConfig = opt unitSection { };
      settings.Manager = opt unitSection { };
    };
    boot = {
      kernelParams = opt strs [ ];
      kernelModules = opt strs [ ];
      initrd.availableKernelModules = opt strs [ ];
      initrd.kernelModules = opt strs [ ];
      loader.grub.enable = opt bool true;
    };
    fileSystems = opt (types.attrsOf fileSystemType) { };
    nix.enable = opt bool true;
    services = {
      openssh.enable = opt bool false;
      getty.autologinUser = opt (types.nullOr str) null;
      journald.console = opt str "";
    };
    environment = {
      systemPackages = opt (types.listOf types.package) [ ];
      etc = opt (types.attrsOf etcType) { };
    };
    virtualisation.libvirtd.enable = opt bool false;
    system = {
      stateVersion = mkOption { type = str; };
      build = mkOption { type = types.submodule { freeformType = types.lazyAttrsOf types.unspecified; }; default = { }; };
    };
  };

  config = {
    # As in NixOS: the services on the node are real units of the system.
    systemd.services = { };
    system.build.toplevel = derivation {
      name = "nixos-system-${config.networking.hostName}-${config.system.stateVersion}";
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" "exit 1" ];
      units = builtins.toJSON (lib.mapAttrs (_: s: s.serviceConfig) config.systemd.services);
      unitFiles = builtins.toJSON (lib.mapAttrs (_: u: u.text) config.systemd.units);
      fileSystems = builtins.toJSON config.fileSystems;
      kernelParams = config.boot.kernelParams;
      packages = config.environment.systemPackages;
      etc = builtins.toJSON (lib.mapAttrs (_: e: toString e.source) config.environment.etc);
    };
  };
}
