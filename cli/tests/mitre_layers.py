"""Loads each Navigator layer named on the command line with MITRE's own library
(mitreattack-python's `Layer`, what merges layers and exports them to Excel and SVG) and checks
that `to_dict()` gives the layer back: every field tripline wrote, with the same value.

Exits 1 naming the layer and the field when one does not load or does not come back; prints
`ok <file> techniques=<n>` for each that does. Run by cli/tests/layers.rs.
"""

import json
import math
import sys

from mitreattack.navlayers import Layer


def same(a, b):
    """Equal, where a number equals the same number written as an int or a float (the
    library turns scores into ints)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def check(path):
    with open(path, encoding="utf-8") as f:
        written = json.load(f)
    gradient = written["gradient"]
    for bound in ("minValue", "maxValue"):
        if type(gradient[bound]) is not int:
            return f"gradient {bound} is {gradient[bound]!r}, not an integer"
    loaded = Layer(init_data=written, strict=True).to_dict()
    if loaded is None:
        return "mitreattack-python's Layer refused it (its message is above)"
    for key, value in written.items():
        if key not in loaded:
            return f"{key} missing from to_dict()"
        if not same(value, loaded[key]):
            return f"{key}: wrote {json.dumps(value)[:300]}, got back {json.dumps(loaded[key])[:300]}"
    return None


def main(paths):
    failed = False
    for path in paths:
        problem = check(path)
        if problem:
            print(f"FAIL {path}: {problem}")
            failed = True
        else:
            with open(path, encoding="utf-8") as f:
                n = len(json.load(f)["techniques"])
            print(f"ok {path} techniques={n}")
    return 1 if failed or not paths else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
