"""The suite's one rule for a test whose tool is missing: skip on a laptop, fail wherever
the full suite is required; and the end of a run says what to install."""

from __future__ import annotations

import pytest

from tests.availability import (
    FULL_SUITE,
    INSTALL_PYTHON_TOOLS,
    INSTALL_SYSTEM_TOOLS,
    full_suite_required,
    require_tool,
    skip_reason,
    skip_summary,
    unavailable,
)


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "True", "yes", "on", " On "])
@pytest.mark.parametrize("name", [FULL_SUITE, "CI"])
def test_a_true_word_in_either_switch_requires_the_full_suite(name: str, value: str) -> None:
    assert full_suite_required({name: value})


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "maybe"])
def test_other_values_and_no_switch_leave_skips_allowed(value: str) -> None:
    assert not full_suite_required({FULL_SUITE: value, "CI": value})
    assert not full_suite_required({})


def test_a_missing_tool_skips_when_the_full_suite_is_not_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(FULL_SUITE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_tool("tabml-no-such-tool")
    assert str(skipped.value) == (
        f"missing tabml-no-such-tool: tabml-no-such-tool is not installed "
        f"(install: {INSTALL_SYSTEM_TOOLS})"
    )


@pytest.mark.parametrize(("name", "value"), [(FULL_SUITE, "1"), ("CI", "1"), ("CI", "true")])
def test_a_missing_tool_fails_where_the_full_suite_is_required(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.delenv(FULL_SUITE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.fail.Exception) as failed:
        unavailable("podman", "podman is not installed")
    assert "the full suite is required here" in str(failed.value)
    assert "missing podman: podman is not installed" in str(failed.value)


def test_a_tool_that_is_installed_is_found() -> None:
    assert require_tool("ruff").endswith("/ruff")


def test_the_summary_groups_skips_by_what_is_missing_and_says_what_installs_it() -> None:
    reasons = [
        (
            "tests/serve/test_container.py::test_a",
            skip_reason("podman", "not installed", INSTALL_SYSTEM_TOOLS),
        ),
        (
            "tests/serve/test_container.py::test_b",
            skip_reason("podman", "not installed", INSTALL_SYSTEM_TOOLS),
        ),
        (
            "tests/workflows/test_act.py::test_c[x]",
            "Skipped: " + skip_reason("podman", "not installed", INSTALL_SYSTEM_TOOLS),
        ),
        (
            "tests/workflows/test_act.py::test_d",
            skip_reason("act", "not installed", INSTALL_PYTHON_TOOLS),
        ),
        (
            "tests/serve/test_container.py::test_e",
            skip_reason("root", "debootstrap needs root", None),
        ),
        ("tests/unit/test_x.py::test_f", "Skipped: something else"),
    ]
    assert skip_summary(reasons) == [
        "missing act: 1 skipped (tests/workflows/test_act.py)",
        "missing podman: 3 skipped (tests/serve/test_container.py, tests/workflows/test_act.py)",
        "missing root: 1 skipped (tests/serve/test_container.py)",
        "1 skipped for other reasons (see the short summary above)",
        f"install what they need with: {INSTALL_SYSTEM_TOOLS} && {INSTALL_PYTHON_TOOLS}; "
        f"{FULL_SUITE}=1 makes such skips fail",
    ]
    assert skip_summary([]) == []
