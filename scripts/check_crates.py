#!/usr/bin/env python3
"""Checks the workspace's crate graph against the drawing in docs/architecture.md.

Two checks, from `cargo metadata --format-version 1 --no-deps` and the sources:

* Crate edges: every dependency of a workspace crate on another workspace crate (normal, dev or
  build) must be in ALLOWED_EDGES below; a workspace crate missing from the table fails too, so a
  new crate gets its edges decided when it is added.
* Unused dependencies: every dependency in a crate's Cargo.toml (workspace-internal or not) must be
  named by its sources (`name::`, `use name`, `extern crate name`, comments and strings not
  counting), under its renamed name if it has one and with `-` read as `_`; and every entry of
  the root's [workspace.dependencies] must be used by some crate.

Run from anywhere: `python3 scripts/check_crates.py` (scripts/test.sh runs it before clippy).
Exits 0 when both hold, 1 with one line per violation, 2 when cargo metadata cannot be read.
"""

import json
import os
import re
import subprocess
import sys
import tomllib

# Workspace-internal edges each crate may have, by dependency kind. The drawing: the binary
# (syhub-ntp) -> daemon, monitor, ops; daemon -> proto, clock, refclock and the shared crates
# (status, config, state, sys); monitor -> status only; ops never -> daemon. syhub-ntp-sys, the
# one home for system calls, is a leaf used by clock, refclock, daemon, client, ops, the binary
# and bench.
SHARED = {"syhub-ntp-status", "syhub-ntp-config", "syhub-ntp-state", "syhub-ntp-client"}
ALLOWED_EDGES = {
    "syhub-ntp": {
        "normal": {
            "syhub-ntp-daemon",
            "syhub-ntp-monitor",
            "syhub-ntp-ops",
            "syhub-ntp-proto",
            "syhub-ntp-sys",
        }
        | SHARED,
        "dev": {
            "syhub-ntp-proto",
            "syhub-ntp-testkit",
            "syhub-ntp-bench",
            "syhub-ntp-refclock",
            "syhub-ntp-status",
            "syhub-ntp-config",
        },
    },
    "syhub-ntp-daemon": {
        "normal": {
            "syhub-ntp-proto",
            "syhub-ntp-clock",
            "syhub-ntp-refclock",
            "syhub-ntp-status",
            "syhub-ntp-config",
            "syhub-ntp-state",
            "syhub-ntp-sys",
        },
    },
    "syhub-ntp-monitor": {"normal": {"syhub-ntp-status"}},
    "syhub-ntp-ops": {
        "normal": {
            "syhub-ntp-proto",
            "syhub-ntp-clock",
            "syhub-ntp-sys",
        }
        | SHARED,
    },
    "syhub-ntp-status": {},
    "syhub-ntp-config": {"normal": {"syhub-ntp-proto"}},
    "syhub-ntp-state": {"normal": {"syhub-ntp-proto", "syhub-ntp-config"}},
    "syhub-ntp-client": {
        "normal": {
            "syhub-ntp-status",
            "syhub-ntp-proto",
            "syhub-ntp-clock",
            "syhub-ntp-config",
            "syhub-ntp-sys",
        },
    },
    "syhub-ntp-proto": {},
    "syhub-ntp-clock": {"normal": {"syhub-ntp-proto", "syhub-ntp-sys"}},
    "syhub-ntp-refclock": {"normal": {"syhub-ntp-proto", "syhub-ntp-sys"}},
    "syhub-ntp-sys": {},
    "syhub-ntp-sim": {"normal": {"syhub-ntp-proto"}},
    "syhub-ntp-testkit": {},
    "syhub-ntp-bench": {
        "normal": {
            "syhub-ntp-proto",
            "syhub-ntp-clock",
            "syhub-ntp-testkit",
            "syhub-ntp-sys",
        },
    },
}

# Packages whose library is not named after the package (`md-5` is `md5` in code).
LIBRARY_NAMES = {"md-5": "md5"}

KINDS = {None: "normal", "dev": "dev", "build": "build"}


def cargo_metadata(root):
    try:
        output = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--no-deps"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        sys.exit(f"check_crates: cannot read cargo metadata: {detail.strip()}")
    return json.loads(output)


# A char literal ('a', '\n', '\'', '\u{1F600}'); a quote not starting one begins a lifetime.
CHAR_LITERAL = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|.)|[^\\'\n])'")
RAW_STRING = re.compile(r'(?:br|cr|r)(#*)"')


def code_only(source):
    """The source with comments, string literals and char literals blanked out."""
    out = []
    i, n = 0, len(source)
    while i < n:
        if source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
            continue
        if source.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if source.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif source.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
            continue
        previous = source[i - 1] if i else " "
        raw = RAW_STRING.match(source, i)
        if raw and not (previous.isalnum() or previous == "_"):
            closing = '"' + raw.group(1)
            end = source.find(closing, raw.end())
            i = n if end < 0 else end + len(closing)
            out.append('""')
            continue
        char = source[i]
        if char == '"':
            i += 1
            while i < n and source[i] != '"':
                i += 2 if source[i] == "\\" else 1
            i += 1
            out.append('""')
            continue
        if char == "'":
            literal = CHAR_LITERAL.match(source, i)
            if literal:
                i = literal.end()
                out.append("' '")
                continue
        out.append(char)
        i += 1
    return "".join(out)


def rust_sources(directory):
    """Every .rs file of the package in `directory`, not descending into other packages."""
    for current, subdirectories, files in os.walk(directory):
        subdirectories[:] = sorted(
            d
            for d in subdirectories
            if not d.startswith(".")
            and d != "target"
            and not os.path.exists(os.path.join(current, d, "Cargo.toml"))
        )
        for name in sorted(files):
            if name.endswith(".rs"):
                yield os.path.join(current, name)


def named_crates(directory):
    """Identifiers the package's code uses as crate names."""
    names = set()
    pattern = re.compile(
        r"(?<![\w$])(?:(?P<path>[A-Za-z_]\w*)\s*::|use\s+(?P<used>[A-Za-z_]\w*)\b"
        r"|extern\s+crate\s+(?P<extern>[A-Za-z_]\w*)\b)"
    )
    for path in rust_sources(directory):
        with open(path, encoding="utf-8") as file:
            code = code_only(file.read())
        for match in pattern.finditer(code):
            names.add(match.group("path") or match.group("used") or match.group("extern"))
    return names


def check(metadata, workspace_dependencies):
    members = set(metadata["workspace_members"])
    packages = [p for p in metadata["packages"] if p["id"] in members]
    workspace = {p["name"] for p in packages}
    problems = []
    declared = {d[key] for p in packages for d in p["dependencies"] for key in ("name", "rename")}
    for name in sorted(set(workspace_dependencies) - declared):
        problems.append(f"[workspace.dependencies] {name} is used by no crate; remove it")
    for package in sorted(packages, key=lambda p: p["name"]):
        name = package["name"]
        allowed = ALLOWED_EDGES.get(name)
        if allowed is None:
            problems.append(
                f"{name}: not in ALLOWED_EDGES of scripts/check_crates.py; decide its edges there"
            )
            allowed = {}
        used = named_crates(os.path.dirname(package["manifest_path"]))
        for dependency in package["dependencies"]:
            target = dependency["name"]
            kind = KINDS.get(dependency["kind"], dependency["kind"])
            if target in workspace and target not in allowed.get(kind, set()):
                problems.append(f"{name} -> {target} ({kind}): a crate edge the drawing forbids")
            in_code = (dependency["rename"] or LIBRARY_NAMES.get(target, target)).replace("-", "_")
            if in_code not in used:
                problems.append(
                    f"{name}: {kind} dependency {target} is never named in its sources "
                    f"(as `{in_code}`); remove it from {package['manifest_path']}"
                )
    return problems


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "Cargo.toml"), "rb") as file:
        manifest = tomllib.load(file)
    workspace_dependencies = manifest.get("workspace", {}).get("dependencies", {})
    problems = check(cargo_metadata(root), workspace_dependencies)
    for problem in problems:
        print(f"check_crates: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("check_crates: crate edges as drawn, no unused dependencies")


if __name__ == "__main__":
    main()
