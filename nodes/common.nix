# What every test node built by Nix has: the photon-driver backdoor on a flow-controlled
# virtio serial port, static addresses from the topology, test-VM tuning, and the disk
# layout the node specs (node-spec.nix) give it:
#   virtio disk serial "nix-store": one read-only erofs image of the combined closure of all
#     nodes (shared by the whole cluster, under a per-node qcow2 overlay),
#   virtio disk serial "root": a blank per-node qcow2, formatted on first boot.
# No 9p or virtiofs: a mounted share blocks QEMU snapshots.
{ lib, pkgs, modulesPath, name, topology, ... }:
let
  topo = import ./lib.nix { inherit lib topology; };
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
  # NICs as on a NixOS test node: eth0 is QEMU's user-mode NIC (the host's forwards), the
  # VLAN NICs follow in the topology's [[vlans]] order (eth1, eth2, ...; node-spec.nix
  # lists them so). Each VLAN NIC is matched by its MAC, which node-spec.nix gives it.
  systemd.network.networks = lib.listToAttrs (map (v: lib.nameValuePair "10-vlan-${v.name}" {
    matchConfig.MACAddress = topo.vlanMac name v.id;
    address = [ node.addresses.${v.name} ];
  }) (topo.vlansOf name)) // {
    "20-user" = {
      matchConfig.Name = "eth0";
      DHCP = "ipv4";
      dhcpV4Config = { UseRoutes = false; UseDNS = false; };
    };
  };

  # A partition's blackhole routes are the driver's, not networkd's: networkd must keep them
  # when it starts (the backdoor answers before it does) or restarts.
  systemd.network.config.networkConfig = {
    ManageForeignRoutes = false;
    ManageForeignRoutingPolicyRules = false;
  };

  boot.kernelParams = [ "init_on_alloc=0" "quiet" ];
  boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_blk" "virtio_console" "virtio_net" "ext4" ];
  boot.initrd.kernelModules = [ "erofs" ];
  boot.loader.grub.enable = false;
  fileSystems."/" = {
    device = "/dev/disk/by-id/virtio-root";
    fsType = "ext4";
    autoFormat = true;
  };
  fileSystems."/nix/store" = {
    device = "/dev/disk/by-id/virtio-nix-store";
    fsType = "erofs";
    options = [ "ro" ];
    neededForBoot = true;
  };
  # The store image carries no Nix database: the nodes run tests, not builds.
  nix.enable = false;

  services.openssh.enable = true;
  services.getty.autologinUser = lib.mkForce null;
  systemd.services."serial-getty@ttyS0".enable = false;
  services.journald.console = "/dev/ttyS0";
  systemd.settings.Manager.DefaultTimeoutStopSec = "10s";

  # dig for DNS endpoint checks; a static busybox and the booted kernel for the nested-guest
  # check (driver/testlib.py looks for /etc/photon/busybox and /run/booted-system/kernel).
  environment.systemPackages = [ pkgs.dnsutils ];
  environment.etc."photon/busybox".source = "${pkgs.pkgsStatic.busybox}/bin/busybox";

  # The backdoor runs with this PATH only (NixOS has no FHS /usr/bin). NixOS adds coreutils,
  # findutils, gnugrep, gnused and systemd to every unit's path. tests/nixos_shape.py mirrors
  # this list with Debian packages: keep them together. /run/current-system/sw brings the
  # system's packages (PhotonCloud's CLIs, dig); busybox comes last so that its applets
  # never shadow the real tools. Workers get QEMU for the nested-guest check.
  systemd.services.photon-backdoor = {
    description = "photon-driver backdoor shell";
    wantedBy = [ "sysinit.target" ];
    after = [ "systemd-journald.socket" ];
    unitConfig.DefaultDependencies = false;
    path = with pkgs; [
      bash coreutils findutils gnugrep gnused gawk systemd iproute2 iputils netcat-openbsd
      curl procps util-linux gnutar gzip kmod
    ] ++ lib.optional (node.nested_virtualisation or false) qemu_kvm
      ++ [ "/run/current-system/sw" busybox ];
    serviceConfig = {
      ExecStart = "${pkgs.bash}/bin/bash ${../driver/images/guest/backdoor.sh}";
      Restart = "always";
      RestartSec = 0;
      KillMode = "process";
      RuntimeDirectory = "photon-backdoor";
      RuntimeDirectoryPreserve = "yes";
      TasksMax = 1024; # a runaway command (a fork bomb) hits this, not the node's memory
      StandardOutput = "journal+console";
      StandardError = "journal+console";
    };
  };

  # wait_for_unit blocks on a unit's pending job through this template instead of polling
  # systemctl (driver/machine/systemd.py); the Debian images carry the same file.
  systemd.units."photon-active@.target".text =
    builtins.readFile (../driver/images/guest + "/photon-active@.target");

  system.stateVersion = "25.11";
}
