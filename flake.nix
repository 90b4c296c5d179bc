{
  description = "photoncloud-test-driver: a NixOS-test-driver-style QEMU VM test cluster for PhotonCloud";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";
    photoncloud.url = "github:photoncloud/photoncloud";
    photoncloud.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, photoncloud }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      topology = import ./nodes/topology.nix;
      py = pkgs.python3Packages;

      driver = py.buildPythonApplication {
        pname = "photoncloud-test-driver";
        version = "0.1.0";
        pyproject = true;
        src = ./.;
        build-system = [ py.setuptools ];
        dependencies = [ py.ptpython py.colorama py.junit-xml py.pexpect py.qemu-qmp ];
        makeWrapperArgs = [
          "--prefix PATH : ${pkgs.lib.makeBinPath [ pkgs.qemu_kvm pkgs.vde2 pkgs.openssh pkgs.qemu-utils ]}"
        ];
        doCheck = false;
      };

      nodeSystems = builtins.mapAttrs (name: _: nixpkgs.lib.nixosSystem {
        inherit system;
        specialArgs = { inherit name topology photoncloud; };
        modules = [ ./nodes/common.nix ./nodes/photoncloud.nix ];
      }) topology.nodes;

      nodeSpecs = import ./nodes/node-spec.nix {
        inherit topology;
        systems = nodeSystems;
        qemu = pkgs.qemu_kvm;
        hostPkgs = pkgs;
      };

      driverApp = pkgs.writeShellScript "photon-driver-photoncloud" ''
        exec ${driver}/bin/photon-driver --profile photoncloud \
          run --specs ${nodeSpecs} "$@"
      '';
      clusterApp = pkgs.writeShellScript "photon-cluster" ''
        export PHOTON_NODE_SPECS=${nodeSpecs}
        verb="''${1:-status}"; shift || true
        case "$verb" in
          start|status|ssh|stop|clean) exec ${driver}/bin/photon-driver --profile photoncloud cluster "$verb" "$@" ;;
          *) exec ${driver}/bin/photon-driver --profile photoncloud "$verb" "$@" ;;
        esac
      '';
    in
    {
      packages.${system} = {
        inherit driver nodeSpecs;
        default = driver;
      };
      nixosConfigurations = nodeSystems;
      apps.${system} = {
        driver = { type = "app"; program = "${driverApp}"; };
        cluster = { type = "app"; program = "${clusterApp}"; };
        default = self.apps.${system}.driver;
      };
      devShells.${system}.default = pkgs.mkShell {
        packages = [ driver pkgs.qemu_kvm pkgs.vde2 pkgs.mmdebstrap pkgs.ruff pkgs.mypy py.pytest ];
      };
    };
}
