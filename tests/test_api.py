"""The public API (``aslsr.__all__``): lazy, complete, documented, and free of import cycles."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import aslsr


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_is_cheap_and_every_public_name_is_its_module_own():
    assert _fresh("import sys, aslsr; print(sorted(m for m in ('torch', 'nibabel', 'numpy') if m in sys.modules))") == (
        "[]"
    )
    assert aslsr.__all__ == ["__version__", *aslsr._EXPORTS]
    for name, module in aslsr._EXPORTS.items():
        assert getattr(aslsr, name) is getattr(importlib.import_module(f"aslsr.{module}"), name), name
    assert set(aslsr.__all__) <= set(dir(aslsr))


def test_docstring_example():
    result = doctest.testmod(aslsr, raise_on_error=False)
    assert result.failed == 0 and result.attempted >= 5
    assert "Examples" in aslsr.__doc__


def test_model_generate_and_train_import_no_cycle():
    modules = _fresh(
        "import sys; import aslsr.model; a = 'aslsr.generate' in sys.modules or 'aslsr.train' in sys.modules; "
        "import aslsr.generate; b = 'aslsr.train' in sys.modules; print(a, b)"
    )
    assert modules == "False False"


def test_the_package_version_is_the_installed_distributions():
    from importlib.metadata import version

    assert aslsr.__version__ == version("aslsr")
