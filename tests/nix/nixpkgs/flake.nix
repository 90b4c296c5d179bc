# A stand-in for nixpkgs, for evaluating this project's flake where no nixpkgs exists: the
# REAL nixpkgs lib (copied in as ./lib by tests/test_flake.py from ../shared/nix/nixpkgs-lib),
# the real module system, and typed stubs of exactly the NixOS options and packages that
# our flake and modules use. No freeform types: a misspelt option fails as in NixOS.
# Derivations instantiate (paths, names, requiredSystemFeatures are real) but never build.
{
  outputs = { self }:
    let
      lib = import ./lib;
      system = "x86_64-linux";
      pkgs = import ./pkgs.nix { inherit lib system; };
    in
    {
      lib = lib // {
        nixosSystem = { system, specialArgs ? { }, modules }:
          let
            eval = lib.evalModules {
              specialArgs = { modulesPath = ./nixos/modules; } // specialArgs;
              modules = [ ./nixos/modules/options.nix { _module.args.pkgs = pkgs; } ] ++ modules;
            };
          in
          { inherit (eval) config options; _module = eval._module; };
      };
      legacyPackages.${system} = pkgs;
    };
}
