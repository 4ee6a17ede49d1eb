"""The documentation cannot drift from the code: the message catalogue table
in docs/privsep.md lists exactly the message types of msg_table[] in
src/common/msg.c, each with the same channel, sender and fd rule; and every
type lands in exactly one place at its receiver, a row of the receiving
end's dispatch table (`grep -n _dispatch_ src` lists them) or the shared
channel code's PING/PONG/READY."""

import glob
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


# { MSG_ROUTE_REPLY, FR_OPEN, front_dispatch_ruleset_route_reply },
ROW_DISPATCH = re.compile(r"\{\s*MSG_(\w+)\s*,[^,]*,\s*(\w+?)_dispatch_(\w+?)_\w+\s*\}")
# [CHAN_PARENT_FRONT] = { MSG_PING, MSG_PONG, MSG_READY },
ROW_CTL = re.compile(r"\[CHAN_(\w+)\]\s*=\s*\{\s*MSG_(\w+)\s*,\s*MSG_(\w+)\s*,\s*MSG_(\w+)\s*\}")


def landing_places():
    """{type name: [(receiver, sender, where)]} from the dispatch rows in
    src/ and the control messages of msg.c."""
    out = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "src", "*", "*.c"))):
        with open(path, encoding="utf-8") as f:
            for no, line in enumerate(f, 1):
                m = ROW_DISPATCH.search(line)
                if m:
                    where = f"{os.path.relpath(path, ROOT)}:{no}"
                    out.setdefault(m.group(1), []).append((m.group(2), m.group(3), where))
    with open(MSG_C, encoding="utf-8") as f:
        for chan, ping, pong, ready in ROW_CTL.findall(f.read()):
            parent, child = chan.lower().split("_")
            out.setdefault(ping, []).append((child, parent, "chanev.c (PING)"))
            out.setdefault(pong, []).append((parent, child, "chanev.c (PONG)"))
            out.setdefault(ready, []).append((parent, child, "chanev.c (READY)"))
    return out


def test_every_message_lands_once_at_its_receiver():
    """A new message is a catalogue row plus one dispatch row (plus its
    handler): a type nobody dispatches, or dispatched twice or by the
    wrong end, fails here."""
    code = code_catalogue()
    places = landing_places()
    assert len(places) > 40, "the dispatch rows were not found"
    for name, (chan, sender, _) in code.items():
        (receiver,) = chan - {sender}
        got = places.get(name, [])
        assert len(got) == 1, f"{name}: lands at {got or 'nowhere'}"
        assert got[0][:2] == (receiver, sender), (
            f"{name} ({sender} to {receiver}) is dispatched by {got[0]}")
    unknown = sorted(set(places) - set(code))
    assert not unknown, f"dispatch rows for types not in msg.c: {unknown}"
