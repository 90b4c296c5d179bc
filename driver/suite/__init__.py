"""A suite: many test scripts, each its own ``photon-driver run`` (own cluster, state and
output directory), ``-j N`` at once within the host's CPU and memory budget, sharded over
CI machines, with one merged JUnit file and one index page (``photon-driver suite``,
``photon-driver report merge``)."""
