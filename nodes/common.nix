# What every PhotonCloud test node has: the photon-driver backdoor on a flow-controlled
# virtio serial port, a root disk image, static addresses from the topology, test-VM tuning.
{ config, lib, pkgs, modulesPath, name, topology, ... }:
let
  node = topology.nodes.${name};
  hosts = lib.mapAttrs' (n: v: lib.nameValuePair (builtins.head (lib.splitString "/" v.addresses.cluster)) [ n ])
    topology.nodes;
in
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];

  networking.hostName = name;
  networking.useDHCP = false;
  networking.useNetworkd = true;
  networking.firewall.enable = false;
  networking.hosts = hosts;
  systemd.network.networks."10-cluster" = {
    matchConfig.Name = "eth0";
    address = [ node.addresses.cluster ];
  };
  systemd.network.networks."20-user" = {
    matchConfig.Name = "eth1";
    DHCP = "ipv4";
  };

  boot.kernelParams = [ "init_on_alloc=0" "quiet" ];
  boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" "virtio_console" "virtio_net" "ext4" ];
  boot.loader.grub.enable = false;
  fileSystems."/" = { device = "/dev/vda"; fsType = "ext4"; };

  services.openssh.enable = true;
  services.getty.autologinUser = lib.mkForce null;
  systemd.services."serial-getty@ttyS0".enable = false;
  services.journald.extraConfig = "ForwardToConsole=yes\nTTYPath=/dev/ttyS0\nMaxLevelConsole=info";
  systemd.extraConfig = "DefaultTimeoutStopSec=10s";

  systemd.services.photon-backdoor = {
    description = "photon-driver backdoor shell";
    wantedBy = [ "sysinit.target" ];
    unitConfig.DefaultDependencies = false;
    path = with pkgs; [ bash coreutils systemd iproute2 netcat-openbsd curl procps ];
    serviceConfig = {
      ExecStart = "${pkgs.bash}/bin/bash ${../driver/images/guest/backdoor.sh}";
      Restart = "always";
      RestartSec = 0;
      KillMode = "process";
      StandardOutput = "journal+console";
      StandardError = "journal+console";
    };
  };

  system.build.photonRootImage = import (modulesPath + "/../lib/make-disk-image.nix") {
    inherit config lib pkgs;
    format = "raw";
    partitionTableType = "none";
    diskSize = 4096;
  };

  system.stateVersion = "24.05";
}
