"""Files the driver ships beside its code: the topology and node files (``nodes/``) and
the test scripts (``testscripts/``).

In a source checkout (or an editable install) they are the repository's top-level folders; a
wheel, ``pip install .`` or the flake's ``buildPythonApplication`` installs them as
``driver/bundled/nodes`` and ``driver/bundled/testscripts`` (see ``pyproject.toml``), so
``photon-driver`` works from any directory."""

from __future__ import annotations

from pathlib import Path

from driver.errors import InfraError

MARKER = Path("nodes") / "cluster.toml"


def data_root(module_file: str = __file__) -> Path:
    """The folder holding ``nodes/`` and ``testscripts/``: the installed copy next to this
    module, else the source tree two levels up."""
    here = Path(module_file).resolve().parent
    for candidate in (here, here.parent.parent):
        if (candidate / MARKER).is_file():
            return candidate
    raise InfraError(
        f"{here}: the driver's bundled files (nodes/cluster.toml, testscripts/) are missing: "
        "reinstall the package"
    )


def default_topology() -> Path:
    """The cluster topology that ships with the driver."""
    return data_root() / MARKER


def testscripts_dir() -> Path:
    """The test scripts that ship with the driver."""
    return data_root() / "testscripts"
