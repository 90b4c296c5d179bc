# The cluster topology as Nix data: the same TOML the Python driver reads.
builtins.fromTOML (builtins.readFile ./cluster.toml)
