# Node start specs (DESIGN.md section 3) for the photoncloud profile, from NixOS systems.
# Pure function of the topology and the built systems: emitted with builtins.toJSON.
{ topology, systems, qemu, hostPkgs }:
let
  lib = hostPkgs.lib;
  vlanIds = builtins.listToAttrs (map (v: { name = v.name; value = v.id; }) topology.vlans);
  nodeIndex = name: lib.lists.findFirstIndex (n: n == name) 0 (builtins.attrNames topology.nodes) + 1;
  hex2 = n: lib.fixedWidthString 2 "0" (lib.toLower (lib.toHexString n));
  specFor = name: node:
    let
      system = systems.${name};
      build = system.config.system.build;
    in {
      version = 1;
      inherit name;
      qemu = "${qemu}/bin/qemu-system-x86_64";
      machine = "pc";
      accel = "auto";
      cpu_tcg = if node.nested_virtualisation or false then "qemu64" else "qemu64,-svm";
      cpu_kvm = "host";
      vcpus = node.vcpus;
      memory_mib = node.memory_mib;
      kernel = "${build.toplevel}/kernel";
      initrd = "${build.toplevel}/initrd";
      cmdline = "init=${build.toplevel}/init console=ttyS0 net.ifnames=0 panic=1 "
        + toString system.config.boot.kernelParams;
      disks = [{ base = "${build.photonRootImage}"; format = "raw"; overlay = true; serial = ""; }];
      shares = [ ];
      nics = lib.mapAttrsToList (vlan: cidr: {
        vlan = vlanIds.${vlan};
        mac = "52:54:00:64:${hex2 vlanIds.${vlan}}:${hex2 (nodeIndex name)}";
        address = cidr;
      }) node.addresses;
      forwards = map (f: {
        guest_port = f.guest_port;
        protocol = f.protocol or "tcp";
        host_port = f.host_port or 0;
        name = f.name;
      }) (node.forwards or [ ]);
      extra_args = [ ];
      meta = { profile = "photoncloud"; };
    };
in
hostPkgs.linkFarm "photoncloud-node-specs" (lib.mapAttrsToList (name: node: {
  name = "${name}.json";
  path = hostPkgs.writeText "${name}.json" (builtins.toJSON (specFor name node));
}) topology.nodes)
