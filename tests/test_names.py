"""The one escape of member names: tar -tv's form, the JSON form, and reading both back."""

import json

import pytest

from rescue.names import json_name, json_safe, list_name, path_argument, unescape

NAMES = [
    "plain/name",
    "nl\nx",
    "tab\tx",
    "back\\x",
    "ctl\x01x",
    "del\x7fx",
    "bad\udce9x",
    "caf\u00e9",
    "bell\x07",
]


@pytest.mark.parametrize("name", NAMES)
def test_both_forms_read_back_to_the_name(name):
    assert unescape(list_name(name)) == name
    assert unescape(json_name(name)) == name
    assert path_argument(json_name(name)) == name


def test_list_form_is_tar_tv_and_json_form_is_valid_utf8():
    assert [list_name(n) for n in NAMES[1:6]] == ["nl\\nx", "tab\\tx", "back\\\\x", "ctl\\001x", "del\\177x"]
    assert list_name("bad\udce9x") == "bad\\351x" and list_name("caf\u00e9") == "caf\u00e9"
    text = json.dumps(json_safe({"lost": NAMES}), ensure_ascii=False)
    assert json.loads(text.encode("utf-8").decode("utf-8"))["lost"][6] == "bad\\351x"


def test_a_path_without_backslash_is_taken_as_it_is():
    assert path_argument("etc/ssh") == "etc/ssh"
