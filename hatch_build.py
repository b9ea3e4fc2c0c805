"""Compiles the serving app's C reader of plain numeric rows
(src/tabml/serve/_body_readers.c) when the project is built or installed.

A wheel carries the compiled module; an editable install (`uv sync`) gets it beside the
source, where the import finds it. Without a working C compiler the build goes on
without it and says so: the app then reads every body in Python, with the same answers
(tabml.serve.body_readers); the test suite, where it must be complete, fails.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "tabml.serve._body_readers"
SOURCE = Path("src/tabml/serve/_body_readers.c")


def compile_module(root: Path, build_dir: Path) -> Path:
    """The compiled module, built with setuptools' compiler for this interpreter."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    extension = Extension(MODULE, [str(root / SOURCE)])
    distribution = Distribution({"name": "tabml-native", "ext_modules": [extension]})
    command = build_ext(distribution)
    command.build_lib = str(build_dir / "lib")
    command.build_temp = str(build_dir / "temp")
    command.ensure_finalized()
    command.run()
    return Path(command.get_ext_fullpath(MODULE))


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        name = f"_body_readers{sysconfig.get_config_var('EXT_SUFFIX')}"
        # Kept until the wheel is written (finalize), which reads the module from here.
        self.build_dir = Path(tempfile.mkdtemp(prefix="tabml-native-"))
        try:
            built = compile_module(root, self.build_dir)
        except Exception as error:  # any failure here means no working C compiler
            print(
                f"tabml: the C reader of request rows was not built ({error}); the "
                "serving app reads every body in Python, with the same answers, at a "
                "lower speed",
                file=sys.stderr,
            )
            return
        if version == "editable":
            # An editable install imports the package from src/: the module goes beside
            # its source (git ignores it).
            shutil.copy2(built, root / SOURCE.with_name(name))
            return
        build_data["force_include"][str(built)] = f"tabml/serve/{name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        shutil.rmtree(self.build_dir, ignore_errors=True)
