{
  description = "photoncloud-test-driver: a NixOS-test-driver-style QEMU VM test cluster for PhotonCloud";

  # nixos-25.11: the first release with python3Packages.qemu-qmp (added to nixpkgs in
  # August 2025), which the driver needs. Lock on a host with access: `nix flake lock`
  # (PhotonCloud's input is private: see README "PhotonCloud on Nix").
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    photoncloud.url = "github:photoncloud/photoncloud";
    photoncloud.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, photoncloud }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      lib = nixpkgs.lib;
      topology = import ./nodes/topology.nix;
      topologyFile = ./nodes/cluster.toml;
      py = pkgs.python3Packages;

      driver = py.buildPythonApplication {
        pname = "photoncloud-test-driver";
        version = "0.1.0";
        pyproject = true;
        src = ./.;
        build-system = [ py.setuptools ];
        dependencies = [ py.ptpython py.colorama py.junit-xml py.pexpect py.qemu-qmp py.shtab py.prometheus-client ];
        nativeBuildInputs = [ pkgs.installShellFiles ];
        # Shell completion for bash and zsh, generated from the CLI grammar (shtab).
        postInstall = ''
          installShellCompletion --cmd photon-driver \
            --bash <($out/bin/photon-driver --print-completion bash) \
            --zsh <($out/bin/photon-driver --print-completion zsh)
        '';
        makeWrapperArgs = [
          "--prefix PATH : ${lib.makeBinPath [ pkgs.qemu_kvm pkgs.vde2 pkgs.openssh pkgs.qemu-utils ]}"
        ];
        doCheck = false;
      };

      # profile -> the NixOS modules of its nodes (besides common.nix)
      profileModules = {
        photoncloud = [ ./nodes/photoncloud.nix ];
        minimal = [ ];
      };
      systemsFor = profileName: builtins.mapAttrs (name: _: lib.nixosSystem {
        inherit system;
        specialArgs = { inherit name topology photoncloud; };
        modules = [ ./nodes/common.nix ] ++ profileModules.${profileName};
      }) topology.nodes;
      nodeSystems = builtins.mapAttrs (profileName: _: systemsFor profileName) profileModules;
      nodeSpecs = builtins.mapAttrs (profileName: systems: import ./nodes/node-spec.nix {
        inherit topology profileName systems;
        qemu = pkgs.qemu_kvm;
        hostPkgs = pkgs;
      }) nodeSystems;

      photonDriver = profileName: "${driver}/bin/photon-driver --profile ${profileName} --topology ${topologyFile}";

      driverApp = pkgs.writeShellScript "photon-driver-photoncloud" ''
        exec ${photonDriver "photoncloud"} run --specs ${nodeSpecs.photoncloud.directory} "$@"
      '';
      clusterApp = pkgs.writeShellScript "photon-cluster" ''
        verb="''${1:-status}"; shift || true
        case "$verb" in
          build) echo "node specs: ${nodeSpecs.photoncloud.directory}"
                 echo "store image: ${nodeSpecs.photoncloud.storeImage}/nix-store.img" ;;
          start) exec ${photonDriver "photoncloud"} cluster start --specs ${nodeSpecs.photoncloud.directory} "$@" ;;
          status|ssh|stop|clean) exec ${photonDriver "photoncloud"} cluster "$verb" "$@" ;;
          *) exec ${photonDriver "photoncloud"} "$verb" --specs ${nodeSpecs.photoncloud.directory} "$@" ;;
        esac
      '';

      # A VM test in the Nix sandbox, like nixpkgs' runNixOSTest: needs a builder with the
      # `kvm` and `nixos-test` features; JUnit XML and every node's console log in $out.
      vmCheck = name: profileName: script: pkgs.runCommand "photoncloud-test-${name}" {
        nativeBuildInputs = [ driver ];
        requiredSystemFeatures = [ "kvm" "nixos-test" ];
      } ''
        export HOME=$TMPDIR PHOTON_VM_DIR=$TMPDIR/vms XDG_CACHE_HOME=$TMPDIR/cache NO_COLOR=1
        mkdir -p $out/logs
        status=0
        ${photonDriver profileName} run --specs ${nodeSpecs.${profileName}.directory} \
          --junit-xml $out/junit.xml -o $out/out ${script} || status=$?
        for log in $TMPDIR/vms*/runs/*/*/vm.log; do
          [ -e "$log" ] || continue
          node=$(basename "$(dirname "$log")")
          cp "$log" "$out/logs/$node.vm.log"
        done
        exit $status
      '';
      scriptName = file: builtins.replaceStrings [ "_" ] [ "-" ] (lib.removeSuffix ".py" file);
      bundledScripts = builtins.filter (f: lib.hasSuffix ".py" f && f != "minimal.py")
        (builtins.attrNames (builtins.readDir ./testscripts));
      scriptChecks = builtins.listToAttrs (map (file: {
        name = "photoncloud-${scriptName file}";
        value = vmCheck (scriptName file) "photoncloud" (./testscripts + "/${file}");
      }) bundledScripts) // {
        minimal-minimal = vmCheck "minimal" "minimal" ./testscripts/minimal.py;
      };
    in
    {
      packages.${system} = {
        inherit driver;
        # The scripts behind `nix run .#driver` / `.#cluster`, buildable on their own.
        driver-app = driverApp;
        cluster-app = clusterApp;
        default = driver;
        nodeSpecs = nodeSpecs.photoncloud.directory;
        nodeSpecsMinimal = nodeSpecs.minimal.directory;
        storeImage = nodeSpecs.photoncloud.storeImage;
      };
      nixosConfigurations = nodeSystems.photoncloud;
      # One check per bundled test script (checks.<system>.<profile>-<script>), so `nix flake
      # check`, Hydra, remote builders and nix-fast-build spread a suite over machines;
      # `smoke` and `minimal` are the short names of the two that CI uses most.
      checks.${system} = scriptChecks // {
        smoke = scriptChecks.photoncloud-smoke;
        minimal = scriptChecks.minimal-minimal;
      };
      apps.${system} = {
        driver = { type = "app"; program = "${driverApp}"; };
        cluster = { type = "app"; program = "${clusterApp}"; };
        default = self.apps.${system}.driver;
      };
      # Evaluated data for tools and tests: node specs per profile (what the JSON files hold).
      lib = {
        nodeSpecs = builtins.mapAttrs (_: s: s.specs) nodeSpecs;
        storeImageNames = builtins.mapAttrs (_: s: s.storeImage.name) nodeSpecs;
      };
      devShells.${system}.default = pkgs.mkShell {
        packages = [ driver pkgs.qemu_kvm pkgs.vde2 pkgs.mmdebstrap pkgs.ruff pkgs.mypy py.pytest ];
      };
    };
}
