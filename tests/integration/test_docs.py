"""The documentation cannot drift from the code: the message catalogue table
in docs/privsep.md lists exactly the message types of msg_table[] in
src/common/msg.c, each with the same channel, sender and fd rule."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "privsep.md")
MSG_C = os.path.join(ROOT, "src", "common", "msg.c")

ROLES = ("parent", "front", "ruleset")

# { MSG_CONFIG, "CONFIG", CHAN_PARENT_FRONT, ROLE_PARENT, MSG_FD_NONE, ...
ROW_C = re.compile(
    r'\{\s*MSG_(\w+)\s*,\s*"(\w+)"\s*,\s*CHAN_(\w+)\s*,\s*ROLE_(\w+)\s*,\s*MSG_FD_(\w+)'
)


def code_catalogue():
    with open(MSG_C, encoding="utf-8") as f:
        text = f.read()
    start = text.index("msg_table[]")
    end = text.index("};", start)
    table = text[start:end]
    rows = ROW_C.findall(table)
    # every row of the table was understood by the regex above
    assert len(rows) == len(re.findall(r"\{\s*MSG_", table)) > 0
    out = {}
    for enum, name, chan, sender, fd in rows:
        assert enum == name, f"msg.c: MSG_{enum} is named {name!r}"
        assert name not in out, f"msg.c lists {name} twice"
        out[name] = (frozenset(chan.lower().split("_")), sender.lower(), fd.lower())
    return out


def doc_catalogue():
    with open(DOC, encoding="utf-8") as f:
        lines = f.read().splitlines()

    def cells(line):
        return [c.strip() for c in line.strip().strip("|").split("|")]

    # the table whose header has the columns type, channel, sender, fd
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        head = [c.lower() for c in cells(line)]
        if {"type", "channel", "sender", "fd"} <= set(head):
            break
    else:
        raise AssertionError("docs/privsep.md has no catalogue table")
    col = {name: head.index(name) for name in ("type", "channel", "sender", "fd")}
    out = {}
    for line in lines[i + 2:]:  # after the header and the |---| row
        if not line.startswith("|"):
            break
        row = cells(line)
        name = row[col["type"]].strip("`")
        assert name not in out, f"docs/privsep.md lists {name} twice"
        chan = frozenset(re.findall("|".join(ROLES), row[col["channel"]]))
        sender = row[col["sender"]].lower()
        fd = row[col["fd"]].split()[0].lower() if row[col["fd"]] else ""
        out[name] = (chan, sender, fd)
    return out


def test_catalogue_matches_msg_c():
    code = code_catalogue()
    doc = doc_catalogue()
    missing = sorted(set(code) - set(doc))
    extra = sorted(set(doc) - set(code))
    assert not missing, f"in msg.c, not in docs/privsep.md: {missing}"
    assert not extra, f"in docs/privsep.md, not in msg.c: {extra}"
    wrong = {
        name: {"doc": doc[name], "msg.c": code[name]}
        for name in code
        if doc[name] != code[name]
    }
    assert not wrong, f"channel, sender or fd rule differ: {wrong}"
