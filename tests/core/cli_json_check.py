"""Reads back the JSON that `mbsr info/metrics/decorr/stats` printed (tests/core/test_cli_json.c):
usage: cli_json_check.py KIND FILE.json, the expected strings in the environment (paths are bytes:
os.environ's surrogate escapes turned back into bytes, then decoded as UTF-8 with U+FFFD for each
invalid byte, which is what mbsr writes). Exit 0 when FILE.json is valid JSON holding exactly them."""
import json
import os
import sys


def env(name):
    return os.fsencode(os.environ[name]).decode("utf-8", "replace")


def main():
    kind, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        raw = f.read()
    if raw.count(b"\n") != 1 or not raw.endswith(b"\n"):
        sys.exit("%s: not one line" % path)
    d = json.loads(raw.decode("utf-8"))  # strict: invalid JSON or UTF-8 raises
    if kind == "info":
        want = {"file": env("P")}
        got = {"file": d["file"]}
        assert isinstance(d["dims"], list) and len(d["dims"]) == 3
    elif kind == "metrics":
        want = {"test": env("P"), "ref": env("P"), "mask": env("M")}
        got = d["files"]
    elif kind == "decorr":
        want = {"file": env("P")}
        got = {"file": d["file"]}
        assert d["summary"]["used"] >= 1
    elif kind == "ttest":
        want = {"file": env("CSV"), "a": env("COLA"), "b": env("COLB")}
        got = {k: d[k] for k in want}
        assert d["n"] == 4 and d["test"] == "ttest"
    elif kind == "welch":
        want = {"file": env("CSV"), "value": env("COLA"), "group": env("GROUP"), "labels": [env("L1"), env("L2")]}
        got = {"file": d["file"], "value": d["value"], "group": d["group"], "labels": [g["label"] for g in d["groups"]]}
    else:
        sys.exit("unknown kind " + kind)
    if got != want:
        sys.exit("%s: %s: got %r, want %r" % (path, kind, got, want))


if __name__ == "__main__":
    main()
