"""Running test scripts: ScriptRun (subtests, results), the script namespace and its
pre-boot check, the NixOS driver's imports, the REPL, the debug hook, subtest selection,
reruns, quarantine and live progress."""
