# Stub packages: each is a real (never built) derivation, so paths and contexts are real.
{ lib, system }:
let
  builder = "/bin/sh";
  drv = name: attrs: derivation ({ inherit name system builder; args = [ "-c" "exit 1" ]; } // attrs);
  pkg = name: drv name { } // { pname = name; meta = { }; };
  # Attributes a builder would see; non-derivation values (passthru, functions) are dropped.
  envOf = env: lib.filterAttrs (_: v: builtins.isString v || builtins.isList v || builtins.isBool v
    || builtins.isInt v || lib.isDerivation v || builtins.isPath v) env;
  runCommand = name: env: script: drv name (envOf env // { buildCommand = script; });
  names = [
    "bash" "coreutils" "findutils" "gnugrep" "gnused" "gawk" "systemd" "iproute2" "iputils"
    "netcat-openbsd" "curl" "procps" "util-linux" "gnutar" "gzip" "kmod" "dnsutils" "busybox"
    "qemu_kvm" "qemu-utils" "vde2" "openssh" "erofs-utils" "mmdebstrap" "ruff" "mypy"
    "installShellFiles"
  ];
  python3Packages = lib.genAttrs [
    "setuptools" "ptpython" "colorama" "junit-xml" "pexpect" "qemu-qmp" "pytest" "shtab" "prometheus-client"
  ] pkg // {
    buildPythonApplication = { pname, version, src, dependencies ? [ ], build-system ? [ ],
      makeWrapperArgs ? [ ], pyproject ? false, doCheck ? true, nativeBuildInputs ? [ ],
      postInstall ? "" }:
      drv "${pname}-${version}" {
        inherit src dependencies build-system makeWrapperArgs doCheck nativeBuildInputs
          postInstall;
      };
  };
in
lib.genAttrs names pkg // {
  inherit lib runCommand python3Packages;
  pkgsStatic = { busybox = pkg "busybox-static"; };
  writeText = name: text: drv name { inherit text; passAsFile = [ "text" ]; };
  writeShellScript = name: text: drv name { inherit text; passAsFile = [ "text" ]; executable = true; };
  linkFarm = name: entries: runCommand name { paths = map (e: "${e.name}=${e.path}") entries; } "link";
  closureInfo = { rootPaths }: runCommand "closure-info" { inherit rootPaths; } "closure";
  mkShell = { packages ? [ ] }: drv "nix-shell" { inherit packages; };
}
