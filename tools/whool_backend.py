"""whool, the OCA build backend, for a repository whose root is the addon.

whool names the distribution after the addon's folder (``odoo-addon-<folder>``)
and installs it as ``odoo/addons/<folder>``. A clone of this repository may be
called anything (``main``, ``pip-req-build-xyz`` when pip installs it from
Git), so the build sees the clone through a link named ``crm_sales_sop`` in a
temporary folder; the rest is whool's own build. A folder already named
``crm_sales_sop`` and an sdist (its PKG-INFO names the addon) build as they are.
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from whool import buildapi

ADDON = "crm_sales_sop"


@contextmanager
def _addon_dir():
    root = Path.cwd()
    if root.name == ADDON or (root / "PKG-INFO").is_file():
        yield root
        return
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / ADDON
        link.symlink_to(root, target_is_directory=True)
        yield link


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    with _addon_dir() as addon_dir:
        metadata = buildapi._get_metadata(addon_dir)
    return buildapi._make_dist_info(metadata, Path(metadata_directory))


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with _addon_dir() as addon_dir:
        return buildapi._build_wheel(addon_dir, Path(wheel_directory), editable=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    root = Path.cwd()
    with _addon_dir() as addon_dir:
        name = buildapi._build_wheel(addon_dir, Path(wheel_directory), editable=True)
    # whool links build/__editable__/odoo/addons/<addon> to the folder it was
    # given: the clone itself, not the temporary link
    link = root / "build" / "__editable__" / "odoo" / "addons" / ADDON
    if link.is_symlink() and Path(os.readlink(link)) != root:
        link.unlink()
        link.symlink_to(root, target_is_directory=True)
    return name


def build_sdist(sdist_directory, config_settings=None):
    with _addon_dir() as addon_dir:
        return buildapi._build_sdist(addon_dir, Path(sdist_directory))
