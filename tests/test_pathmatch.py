"""Selection rules shared by backup and restore."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rescue.pathmatch import PathMatcher, normalize


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("/etc/ssh/", "etc/ssh"), ("./var//www", "var/www"), ("etc", "etc"), ("/", ""), ("./", "")],
)
def test_normalize_makes_paths_relative_and_canonical(raw, clean):
    assert normalize(raw) == clean


def test_no_includes_selects_everything_but_excludes():
    m = PathMatcher(excludes=["*.tmp"], default_excludes=["proc"])
    assert m.selected("etc/passwd")
    assert not m.selected("var/x.tmp")
    assert not m.selected("proc/1/status")


def test_include_of_a_directory_covers_its_subtree_only():
    m = PathMatcher(includes=["/etc/"])
    assert m.selected("etc") and m.selected("etc/ssh/sshd_config")
    assert not m.selected("etcetera") and not m.selected("var/etc")


def test_default_excludes_are_anchored_at_the_root():
    m = PathMatcher(default_excludes=["proc", "tmp"])
    assert m.excluded("proc/1") and m.excluded("tmp/x")
    assert not m.excluded("usr/src/linux/proc") and not m.excluded("var/tmp/x")
    assert not m.excluded("usr/src/linux/proc/x") and not m.keeps_empty("usr/src/linux/proc")


def test_default_excludes_keep_the_directory_itself_empty():
    m = PathMatcher(default_excludes=["proc", "tmp", "var/lib/docker"])
    assert m.selected("proc") and m.selected("tmp") and m.selected("var/lib/docker")
    assert not m.selected("proc/1/status") and not m.selected("tmp/x") and not m.selected("var/lib/docker/x")
    assert m.keeps_empty("proc") and m.keeps_empty("var/lib/docker")
    assert not m.keeps_empty("proc/1") and not m.keeps_empty("var/lib") and not m.keeps_empty("etc")
    # A user's exclude is whole: the directory goes too.
    m = PathMatcher(excludes=["tmp"], default_excludes=["proc"])
    assert not m.selected("tmp") and m.selected("proc")


def test_includes_matching_names_every_asked_path_that_covers_a_member():
    m = PathMatcher(includes=["etc", "etc/ssh", "etc/*/sshd_config", "var"])
    assert m.includes_matching("etc/ssh/sshd_config") == [0, 1, 2]
    assert m.includes_matching("etc/hosts") == [0]
    assert m.includes_matching("usr/bin") == []


def test_exclude_without_slash_matches_a_component_anywhere():
    m = PathMatcher(excludes=["cache"])
    assert m.excluded("var/cache/apt/x") and m.excluded("cache")
    assert not m.excluded("var/cached")


def test_exclude_with_slash_is_anchored():
    m = PathMatcher(excludes=["var/cache"])
    assert m.excluded("var/cache/apt")
    assert not m.excluded("srv/var/cache")


def test_glob_star_does_not_cross_directories():
    m = PathMatcher(includes=["var/www/*.html"])
    assert m.selected("var/www/index.html")
    assert not m.selected("var/www/sub/index.html")


def test_character_classes_and_question_marks():
    m = PathMatcher(excludes=["[ab]?c", "log[!0-9]"])
    assert m.excluded("etc/axc") and m.excluded("etc/bzc/d")
    assert not m.excluded("etc/cxc")
    assert m.excluded("logx") and not m.excluded("log1")


def test_regex_metacharacters_in_names_are_literal():
    m = PathMatcher(includes=["srv/a+b (1).txt"])
    assert m.selected("srv/a+b (1).txt")
    assert not m.selected("srv/aab (1).txt")


def test_ancestors_of_an_include_are_known():
    m = PathMatcher(includes=["var/www/html"])
    assert m.is_ancestor_of_include("var") and m.is_ancestor_of_include("var/www")
    assert not m.is_ancestor_of_include("var/www/html") and not m.is_ancestor_of_include("etc")


names = st.text(alphabet="abc.-_ ", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@given(st.lists(names, min_size=1, max_size=4))
def test_a_literal_include_selects_exactly_its_path_and_below(parts):
    path = "/".join(parts)
    m = PathMatcher(includes=[path])
    assert m.selected(path)
    assert m.selected(path + "/child")
    assert not m.selected(path + "x")
