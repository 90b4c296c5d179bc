# Node start specs (the contract between image builders and the driver, see
# driver/config/spec.py) for NixOS nodes, emitted with builtins.toJSON.
#
# All nodes of a profile share ONE read-only erofs image of the combined closure of their
# systems, built without a VM (like qemu-vm.nix's useNixStoreImage, but at build time and
# for the whole cluster), under a per-node qcow2 overlay; each node also gets a blank
# per-node root disk that its initrd formats. Same shape as the Debian path: shared base +
# small per-node overlays, no 9p (snapshots stay possible).
{ topology, profileName, systems, qemu, hostPkgs }:
let
  lib = hostPkgs.lib;
  topo = import ./lib.nix { inherit lib topology; };

  toplevels = lib.mapAttrsToList (_: s: s.config.system.build.toplevel) systems;
  closure = hostPkgs.closureInfo { rootPaths = toplevels; };
  storeImage = hostPkgs.runCommand "${profileName}-nix-store-image"
    { nativeBuildInputs = [ hostPkgs.erofs-utils hostPkgs.gnutar ]; }
    ''
      mkdir -p $out
      tar --create --absolute-names --verbatim-files-from \
        --transform 'flags=rSh;s|^/nix/store/||' \
        --files-from ${closure}/store-paths \
        | mkfs.erofs --quiet --force-uid=0 --force-gid=0 -L nix-store -T 0 --tar=f \
            $out/nix-store.img
    '';

  # The units of the profile's services on this node, looked up in the evaluated NixOS
  # configuration: a contract unit that the system does not define stops evaluation here.
  servicesMeta = name: system: builtins.listToAttrs (map (s:
    let attr = topo.unitAttr s.unit; in
    if builtins.hasAttr attr system.config.systemd.services then {
      name = s.name;
      value = { unit = "${attr}.service"; cli = s.cli or { }; };
    } else throw ("photoncloud contract: service ${s.name} on ${name} declares unit ${s.unit} "
      + "(nodes/cluster.toml), but the evaluated NixOS configuration has no "
      + "systemd.services.${attr}")
  ) (topo.servicesOn profileName name));

  specFor = name: node:
    let
      system = systems.${name};
      toplevel = system.config.system.build.toplevel;
    in {
      version = 1;
      inherit name;
      qemu = "${qemu}/bin/qemu-system-x86_64";
      machine = "pc";
      accel = "auto";
      cpu_tcg = if node.nested_virtualisation or false then "qemu64,+npt" else "qemu64,-svm";
      cpu_kvm = "host";
      vcpus = node.vcpus;
      memory_mib = node.memory_mib;
      kernel = "${toplevel}/kernel";
      initrd = "${toplevel}/initrd";
      # nosoftlockup: restored snapshots and busy TCG hosts are no soft lockup;
      # no_timer_check: a busy host can starve the kernel's early timer check into a panic
      # (see driver/images/debian_spec.py).
      cmdline = "init=${toplevel}/init console=ttyS0 net.ifnames=0 panic=1 nosoftlockup no_timer_check "
        + toString system.config.boot.kernelParams;
      disks = [
        { base = "${storeImage}/nix-store.img"; format = "raw"; overlay = true; serial = "nix-store"; size_mib = 0; }
        { base = ""; format = "qcow2"; overlay = true; serial = "root"; size_mib = 4096; }
      ];
      shares = [ ];
      # eth1, eth2, ...: the node's VLANs in the topology's [[vlans]] order (eth0 is the
      # user-mode NIC the driver adds first), as NixOS numbers virtualisation.vlans.
      nics = map (v: {
        vlan = v.id;
        mac = topo.vlanMac name v.id;
        address = node.addresses.${v.name};
      }) (topo.vlansOf name);
      forwards = map (f: {
        guest_port = f.guest_port;
        protocol = f.protocol or "tcp";
        host_port = f.host_port or 0;
        name = f.name;
      }) (node.forwards or [ ]);
      extra_args = [ ];
      meta = {
        profile = profileName;
        builder = "nix";
        # The image carries no key of the driver's: it installs its own over the backdoor.
        provision_ssh_key = true;
        services = servicesMeta name system;
      };
    };
  specs = builtins.mapAttrs specFor topology.nodes;
in
{
  inherit specs storeImage;
  directory = hostPkgs.linkFarm "${profileName}-node-specs" (lib.mapAttrsToList (name: spec: {
    name = "${name}.json";
    path = hostPkgs.writeText "${name}.json" (builtins.toJSON spec);
  }) specs);
}
