"""The command line's global options: --quiet and -v configure logging, before or after the command."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

from aslsr.cli import build_parser, configure_logging, verbosity

RUN = ["run", "--asl", "a.nii.gz", "--t1", "t.nii.gz", "--out", "o"]
EVALUATE = ["evaluate", "--ref", "r.nii.gz", "p.nii.gz"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (RUN, (False, 0)),
        (["--quiet", *RUN], (True, 0)),
        ([*RUN, "--quiet"], (True, 0)),
        (["-q", *EVALUATE], (True, 0)),
        ([*EVALUATE, "--quiet"], (True, 0)),
        (["-v", *EVALUATE, "-v"], (False, 2)),
        (["-vv", *RUN], (False, 2)),
    ],
)
def test_flags_before_or_after_the_command(argv, expected):
    args = build_parser().parse_args(argv)
    assert verbosity(args) == expected


def test_levels_and_format():
    stream = io.StringIO()
    try:
        configure_logging(stream=stream)
        configure_logging(stream=stream)  # a second call does not double the lines
        logger = logging.getLogger("aslsr.pipeline")
        logger.debug("hidden")
        logger.info("sub-01: training")
        logger.warning("registration: poor overlap")
        assert stream.getvalue().splitlines() == [
            "aslsr: sub-01: training",
            "aslsr: warning: registration: poor overlap",
        ]
        quiet = io.StringIO()
        configure_logging(quiet=True, stream=quiet)
        logger.info("sub-01: training")
        logger.error("failed")
        assert quiet.getvalue() == "aslsr: error: failed\n"
        verbose = io.StringIO()
        configure_logging(verbose=1, stream=verbose)
        logger.debug("detail")
        assert verbose.getvalue() == "aslsr: detail\n"
    finally:
        configure_logging(stream=sys.stderr)


def test_importing_the_package_changes_nothing_in_the_process():
    code = (
        "import logging, os; os.umask(0o027); import aslsr.cli, aslsr.io, aslsr.pipeline, aslsr.cohort; "
        "import nibabel; print(logging.getLogger('nibabel.global').level, oct(os.umask(0)), "
        "logging.getLogger('aslsr').handlers)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["0", "0o27", "[]"]
