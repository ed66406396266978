"""The sandbox wheelhouse is fetched for the image's Python, not the host's (real pip, real PyPI)."""

from __future__ import annotations

import sys
import tarfile

import pytest

from harness.errors import SandboxError
from harness.evalplus import sandbox

OTHER_PYTHON = "3.12" if sys.version_info[:2] != (3, 12) else "3.13"


def test_binary_wheels_match_the_target_python_and_sdists_become_pure_wheels(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("psutil==7.2.2\ntree-sitter==0.26.1\nwget==3.2\n")
    sandbox._fetch_wheelhouse(requirements, tmp_path / "wheels", OTHER_PYTHON)
    names = sorted(path.name for path in (tmp_path / "wheels").iterdir())
    tag = "cp" + OTHER_PYTHON.replace(".", "")
    assert any(name.startswith("tree_sitter-0.26.1-" + tag + "-" + tag + "-manylinux") for name in names), names
    assert any(name.startswith("psutil-7.2.2-") and "-abi3-manylinux" in name for name in names), names
    assert "wget-3.2-py3-none-any.whl" in names, names
    assert not [name for name in names if not name.endswith(".whl")], names


def test_an_sdist_that_builds_a_binary_wheel_is_refused(tmp_path):
    source = tmp_path / "bwbinary-0.1"
    source.mkdir()
    (source / "bwbinary.py").write_text("VALUE = 1\n")
    (source / "setup.py").write_text(
        "from setuptools import Distribution, setup\n\n\n"
        "class Binary(Distribution):\n    def has_ext_modules(self):\n        return True\n\n\n"
        "setup(name='bwbinary', version='0.1', py_modules=['bwbinary'], distclass=Binary)\n")
    sdist = tmp_path / "bwbinary-0.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(source, arcname=source.name)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"{sdist}\n")
    with pytest.raises(SandboxError, match=r"bwbinary-0.1.tar.gz has no wheel for CPython " + OTHER_PYTHON):
        sandbox._fetch_wheelhouse(requirements, tmp_path / "wheels", OTHER_PYTHON)
