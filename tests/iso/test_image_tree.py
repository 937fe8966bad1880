"""The image builder writes only inside its build tree: a symlink already in the tree (the image's own, such as
busybox's applet links, or a planted one) is replaced, never written through, and a destination that climbs
out of the tree is refused; nothing outside the tree changes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from iso.external import BuildError
from iso.image import Image, add_extra


def snapshot(top: Path) -> dict:
    """Every path under `top` with its kind and content: what must stay the same."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                state[str(path)] = ("link", os.readlink(path))
            elif path.is_file():
                state[str(path)] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                state[str(path)] = ("dir", "")
    return state


@pytest.fixture
def world(tmp_path):
    """A build tree with merged-/usr links and busybox applet links, and a victim outside it."""
    outside = tmp_path / "host"
    (outside / "usr" / "bin").mkdir(parents=True)
    victim = outside / "usr" / "bin" / "busybox"
    victim.write_bytes(b"the build machine's busybox\n")
    root = tmp_path / "stage"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "sbin").mkdir()
    (root / "bin").symlink_to("usr/bin")
    (root / "usr" / "bin" / "busybox").write_bytes(b"the image's busybox\n")
    # An absolute link as the image holds its applet links (mkswap -> /usr/bin/busybox), to a name that on the
    # build machine is the victim (not the real /usr/bin/busybox: a regression must not break this machine).
    (root / "usr" / "sbin" / "mkswap").symlink_to(victim)
    image_copy = root / str(victim).lstrip("/")
    image_copy.parent.mkdir(parents=True)
    image_copy.write_bytes(b"the image's busybox\n")
    # Planted links: a relative one climbing to the victim, a directory link climbing out of the tree.
    (root / "usr" / "sbin" / "wipefs").symlink_to("../../../host/usr/bin/busybox")
    (root / "opt").symlink_to("../host/usr/bin")
    new = tmp_path / "mkswap"
    new.write_bytes(b"util-linux mkswap\n")
    return Image({}, root), outside, new, image_copy


def test_add_over_a_busybox_applet_link_replaces_the_link_not_the_busybox(world):
    image, outside, new, image_copy = world
    before = snapshot(outside)
    add_extra(image, f"{new}:/usr/sbin/mkswap")
    dest = image.root / "usr" / "sbin" / "mkswap"
    assert not dest.is_symlink() and dest.read_bytes() == b"util-linux mkswap\n"
    assert image_copy.read_bytes() == b"the image's busybox\n"
    assert snapshot(outside) == before


def test_add_over_a_link_planted_to_a_host_file_leaves_the_host_file(world):
    image, outside, new, image_copy = world
    before = snapshot(outside)
    add_extra(image, f"{new}:/usr/sbin/wipefs")
    assert (image.root / "usr" / "sbin" / "wipefs").read_bytes() == b"util-linux mkswap\n"
    assert snapshot(outside) == before


def test_a_directory_link_leading_out_of_the_tree_is_refused(world):
    image, outside, new, image_copy = world
    before = snapshot(outside)
    with pytest.raises(BuildError, match=r"/opt/busybox: resolves outside the image tree"):
        add_extra(image, f"{new}:/opt/busybox")
    with pytest.raises(BuildError, match="resolves outside the image tree"):
        image.write("usr/../../host/usr/bin/busybox", "x")
    assert snapshot(outside) == before


def test_absolute_directory_links_are_followed_inside_the_tree(world, tmp_path):
    image, outside, new, image_copy = world
    (image.root / "usr" / "lib").mkdir()
    (image.root / "lib").symlink_to("/usr/lib")  # on the build machine: its own /usr/lib
    before = snapshot(outside)
    tree = tmp_path / "extra"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("data\n")
    (tree / "sub" / "l").symlink_to("/etc/passwd")
    add_extra(image, f"{tree}:/lib/extra")
    assert (image.root / "usr" / "lib" / "extra" / "sub" / "f").read_text() == "data\n"
    assert os.readlink(image.root / "usr" / "lib" / "extra" / "sub" / "l") == "/etc/passwd"
    add_extra(image, f"{new}:/bin/tool")
    assert (image.root / "usr" / "bin" / "tool").read_bytes() == b"util-linux mkswap\n"
    assert snapshot(outside) == before


def test_add_names_a_missing_source_and_a_relative_destination(world, tmp_path):
    image, _, new, _ = world
    with pytest.raises(BuildError, match="no such file"):
        add_extra(image, f"{tmp_path / 'nothing'}:/x")
    with pytest.raises(BuildError, match="expected SRC:/absolute/dest"):
        add_extra(image, f"{new}:relative")
