#!/usr/bin/env python3
"""Writes the man pages syhub-ntp(8), from the built binary's --help, and syhub-ntp.toml(5), from
the commented default config, so neither can drift from the program. Standard library only.

    python3 scripts/man_pages.py --binary target/debug/syhub-ntp \\
        --config crates/config/src/default.toml --out DIR [--version X.Y.Z] [--date YYYY-MM-DD]

Writes DIR/syhub-ntp.8.gz and DIR/syhub-ntp.toml.5.gz (gzip -9, mtime 0, no name: reproducible),
and the plain pages beside them unless --gzip-only. The version defaults to Cargo.toml's [package]
version; the date to SOURCE_DATE_EPOCH, else the last commit's date, else today.
scripts/test_man_pages.sh checks the pages.
"""

import argparse
import datetime
import gzip
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# The FILES of syhub-ntp(8), as in crates/config/src/{file,clock,control}.rs and
# crates/ops/src/install.rs (scripts/test_man_pages.sh checks the crates still name them).
FILES = [
    ("/etc/syhub-ntp/config.toml", "The configuration; see `syhub-ntp.toml`(5)."),
    ("/etc/syhub-ntp/ntp.keys", "Symmetric keys, as written by `syhub-ntp keygen`."),
    ("/var/lib/syhub-ntp/drift", "The clock's frequency correction, kept between runs."),
    ("/run/syhub-ntp/control.sock", "The control socket of the running daemon."),
]

# --- roff text --------------------------------------------------------------------------------


def literal(text):
    """Text shown exactly as written (values, usage, examples): every hyphen a minus sign."""
    return text.replace("\\", "\\e").replace("-", "\\-")


def prose(text):
    """Running text: `code` in bold; the hyphens of options, paths and the program's name as
    minus signs, so they can be pasted; other hyphens (self-signed) left as hyphens."""
    parts = text.replace("\\", "\\e").split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick stays a backtick
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    return "".join("\\fB\\%" + part.replace("-", "\\-") + "\\fR" if index % 2
                   else re.sub(r"\S+", prose_word, part) for index, part in enumerate(parts))


def prose_word(match):
    """A name with inner punctuation (a path, key_name, host.name) is never hyphenated at a
    line's end: the added hyphen would read as part of it."""
    word = match.group(0)
    if word.lstrip("(\"'[").startswith("-") or "/" in word or "syhub-ntp" in word:
        word = word.replace("-", "\\-")
    return "\\%" + word if re.search(r"[/_.:@=-]\w", word) else word


def usage_word(word):
    """A word of a usage line or an option's name: <VALUE> in italics, flags and commands bold."""
    tail = re.search(r"[,.]*$", word).group(0)
    word = word[:len(word) - len(tail)]
    shape = re.fullmatch(r"(\[?)<(.+)>(\]?)((?:\.\.\.)?)", word) or re.fullmatch(
        r"(\[)([A-Z_]+)(\])((?:\.\.\.)?)", word)
    if shape:
        opening, name, closing, dots = shape.groups()
        return f"{opening}\\fI\\%{literal(name)}\\fR{closing}{dots}{tail}"
    return f"\\fB\\%{literal(word)}\\fR{tail}"


def quoted(text, escape=prose):
    """A macro argument: one argument whatever its spaces, its double quotes escaped."""
    return '"' + escape(text).replace('"', "\\(dq") + '"'


class Page:
    """The lines of a page; a text line is never read as a request (\\& before a '.' or ''')."""

    def __init__(self):
        self.lines = []

    def request(self, name, *args):
        self.lines.append(" ".join(["." + name, *args]))

    def text(self, line):
        line = line.strip()
        if line:
            self.lines.append("\\&" + line if line.startswith((".", "'")) else line)

    def verbatim(self, lines):
        for name in ("PP", "RS 4", "nf"):
            self.request(name)
        self.lines += [("\\&" if line.startswith((".", "'")) else "") + literal(line)
                       for line in lines]
        self.request("fi")
        self.request("RE")

    def blocks(self, blocks, indented=False):
        """Blocks from split_blocks: the first joins the current paragraph, later ones open one
        (at the indent of a .TP body when `indented`); a list is a nested .TP list."""
        for index, (kind, content) in enumerate(blocks):
            if kind == "text":
                if index:
                    self.request("IP" if indented else "PP")
                self.text(prose(content))
                continue
            self.request("RS")
            for label, description in content:
                self.request("TP")
                self.text("\\fB" + literal(label) + "\\fR")
                self.text(prose(description))
            self.request("RE")

    def tagged(self, tag, blocks, after_tag=None):
        self.request("TP")
        self.text(tag)
        if after_tag:
            self.request(after_tag)
        self.blocks(blocks, indented=True)


def split_blocks(paragraphs, item):
    """Paragraphs (lists of lines) as ("text", str) and ("list", [(label, text)]) blocks. `item`
    gives (label, text) for a line that opens a list item; an indented line carries on the item
    before it; any other line ends the list."""
    blocks = []
    for lines in paragraphs:
        current = None  # the block this paragraph is adding to
        for line in lines:
            opened = item(line)
            if opened:
                if not current or current[0] != "list":
                    current = ("list", [])
                    blocks.append(current)
                current[1].append(list(opened))
            elif current and current[0] == "list" and line[:1].isspace():
                current[1][-1][1] = (current[1][-1][1] + " " + line.strip()).strip()
            elif current and current[0] == "text":
                current[1].append(line.strip())
            else:
                current = ("text", [line.strip()])
                blocks.append(current)
    return [("text", " ".join(content)) if kind == "text" else (kind, [tuple(e) for e in content])
            for kind, content in blocks]


# --- syhub-ntp(8), from --help ----------------------------------------------------------------


def read_help(binary, command):
    """clap's help for a command, as about paragraphs, usage lines and titled sections."""
    environment = dict(os.environ, NO_COLOR="1", LC_ALL="C.UTF-8")
    done = subprocess.run([binary, *command, "--help"], capture_output=True, text=True,
                          env=environment)
    if done.returncode != 0:
        sys.exit(f"man_pages: `{binary} {' '.join(command)} --help` failed:\n{done.stderr}")
    about, usage, sections = [[]], [], []
    for line in done.stdout.rstrip("\n").split("\n"):
        if line.startswith("Usage:") and not usage:
            usage.append(line[len("Usage:"):].strip())
        elif not usage and line.strip():  # the about text, before the usage
            about[-1].append(line.strip())
        elif not usage:
            about.append([])
        elif line[:1].isspace() and line.strip() and not sections:
            usage.append(line.strip())  # clap's further usage lines
        elif line[:1].strip() and line.endswith(":"):
            sections.append((line[:-1], []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            sections.append(("Notes", [line]))
    return {"about": [" ".join(p) for p in about if p], "usage": usage, "sections": sections}


def help_entries(lines):
    """(term, paragraphs) per entry of an Options/Commands/Arguments-like section. An entry opens
    on a line at the section's least indent, or on a flag indented up to 6 (clap's alignment);
    deeper lines carry it on, blank lines part its paragraphs (clap's long --help layout)."""
    least = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    entries = []
    for line in lines:
        text, indent = line.strip(), len(line) - len(line.lstrip())
        if not text:
            if entries and entries[-1][1][-1]:
                entries[-1][1].append([])
        elif indent == least or (indent <= 6 and text.startswith("-")):
            term, *description = re.split(r"\s{2,}", text, maxsplit=1)
            entries.append((term, [description]))
        elif entries:
            entries[-1][1][-1].append(text if text.startswith("- ") else "  " + text)
    return entries


def possible_value(line):
    shape = re.fullmatch(r"- ([^:\s]+):?\s*(.*)", line)
    return shape.groups() if shape else None


def help_section(page, lines, skip_help=True):
    """A two-column section (options, arguments, exit codes) as a .TP list, other text as is."""
    entries = help_entries(lines)
    if not any(paragraphs[0] for _, paragraphs in entries):
        page.text(prose(" ".join(line.strip() for line in lines)))
        return
    for term, paragraphs in entries:
        if not (skip_help and term == "-h, --help"):
            page.tagged(" ".join(usage_word(word) for word in term.split()),
                        split_blocks([p for p in paragraphs if p], possible_value))


def sentence(text):
    """clap's about texts end without a full stop; the page's paragraphs read better with one."""
    return text + "." if re.search(r"[\w)]$", text) else text


def discover(binary, command=()):
    """Every command's help, depth first from the top level; `help` left out."""
    found = [(command, read_help(binary, command))]
    for title, lines in found[0][1]["sections"]:
        for term, _ in help_entries(lines) if title == "Commands" else []:
            if term != "help":
                found += discover(binary, (*command, term))
    return found


def program_page(commands, version, date):
    top, subcommands = commands[0][1], commands[1:]
    program = top["usage"][0].split()[0]
    summary = re.sub(r"^(A|An|The)\s+", "", re.split(r":\s|\.\s", top["about"][0])[0])
    page = Page()
    page.lines.append('.\\" Generated by scripts/man_pages.py from `syhub-ntp --help`.')
    page.request("TH", quoted(program.upper(), literal), "8", date,
                 quoted(f"{program} {version}", literal), quoted("System Manager's Manual"))
    page.request("SH", "NAME")
    page.text(f"{literal(program)} \\- {prose(summary[:1].lower() + summary[1:])}")
    page.request("SH", "SYNOPSIS")
    for _, help_page in subcommands:
        if not any(title == "Commands" for title, _ in help_page["sections"]):
            for usage in help_page["usage"]:
                page.text(" ".join(usage_word(word) for word in usage.split()))
                page.request("br")
    page.request("SH", "DESCRIPTION")
    page.blocks([("text", sentence(paragraph)) for paragraph in top["about"]])
    for title, lines in top["sections"]:
        if title == "Options":
            page.request("SH", "OPTIONS")
            help_section(page, lines, skip_help=False)
    page.request("SH", "COMMANDS")
    page.text("Each command also takes \\fB\\-h\\fR, \\fB\\-\\-help\\fR to print its help.")
    for path, help_page in subcommands:
        page.request("SS", quoted(" ".join(path), literal))
        for usage in help_page["usage"]:
            page.text(" ".join(usage_word(word) for word in usage.split()))
            page.request("br")
        page.request("PP")
        page.blocks([("text", sentence(paragraph)) for paragraph in help_page["about"]])
        for title, lines in help_page["sections"]:
            if title == "Commands":  # each has its own .SS
                names = [usage_word(term) for term, _ in help_entries(lines) if term != "help"]
                page.request("PP")
                page.text("Subcommands: " + ", ".join(names) + ".")
            elif title in ("Options", "Arguments"):
                help_section(page, lines)
            else:
                page.request("PP")
                page.text(f"\\fB{prose(title)}:\\fR")
                page.request("br")
                help_section(page, lines)
    for title, lines in top["sections"]:
        if title not in ("Options", "Commands"):
            page.request("SH", quoted("EXIT STATUS" if title == "Exit codes" else title.upper()))
            help_section(page, lines, skip_help=False)
    page.request("SH", "FILES")
    for path, what in FILES:
        page.tagged(f"\\fI{literal(path)}\\fR", [("text", what)])
    page.request("SH", "SEE ALSO")
    page.text("\\fBsyhub\\-ntp.toml\\fR(5), \\fBchronyc\\fR(1), \\fBntpq\\fR(1)")
    return page


# --- syhub-ntp.toml(5), from the commented default config -------------------------------------

TABLE_LINE = re.compile(r"\[\[?\s*[\w.\-]+\s*\]\]?")
KEY_LINE = re.compile(r"([\w.\-]+|\"[^\"]*\")\s*=\s*(.*)")


def comment_text(line):
    text = line.strip()[1:]
    return text[1:] if text.startswith(" ") else text


def split_comment(text):
    """(code, comment or None, brackets the code leaves open) for a TOML line; a '#' or a bracket
    inside a string does not count."""
    masked = re.sub(r'"(?:\\.|[^"\\])*"|\'[^\']*\'', lambda string: "_" * len(string[0]), text)
    cut = masked.find("#") if "#" in masked else len(text)
    code = masked[:cut]
    depth = sum(map(code.count, "[{")) - sum(map(code.count, "]}"))
    return text[:cut], (text[cut + 1:].strip() if cut < len(text) else None), depth


def new_table(name, intro, example=None, notes=()):
    return {"name": name, "intro": intro, "keys": [], "example": example,
            "notes": list(notes), "raw": [name] if name and not example else []}


def parse_config(text):
    """The file's top comment, and its tables in order: each with the comment above it, its keys
    (name, value as written, comment above), the comment blocks after its keys (notes), and for a
    commented-out table (`# [[broadcast]]` and `# key = value` lines) the example itself."""
    description, tables, pending = [], [], []

    def free_block():  # comment lines set apart by blank lines
        header = next((i for i, line in enumerate(pending)
                       if TABLE_LINE.fullmatch(comment_text(line).strip())), None)
        if header is not None:
            end = header + 1
            while end < len(pending) and re.match(r"[\w\-]+\s*=|\s", comment_text(pending[end])):
                end += 1
            tables.append(new_table(comment_text(pending[header]).strip(), pending[:header],
                                    [comment_text(line) for line in pending[header:end]],
                                    pending[end:]))
        else:  # a note after a table's keys, or the file's description
            held = tables[-1]["notes"] if tables else description
            held.extend([""] + pending if held else pending)
        pending.clear()

    lines = iter(text.split("\n"))
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(line)
        elif not stripped and pending:
            free_block()
        elif not stripped:
            continue
        elif TABLE_LINE.match(stripped) and not KEY_LINE.match(stripped):
            tables.append(new_table(TABLE_LINE.match(stripped).group(0), pending[:]))
            pending.clear()
        elif KEY_LINE.match(stripped):
            raw = [line]
            while sum(split_comment(part)[2] for part in raw) > 0:  # a value over several lines
                raw.append(next(lines, "]"))
            parts = [split_comment(part) for part in raw]
            key, value = KEY_LINE.match(" ".join(code.strip() for code, _, _ in parts)).groups()
            if not tables:
                tables.append(new_table("", []))
            comment = pending + ["# " + trailing for _, trailing, _ in parts if trailing]
            tables[-1]["keys"].append((key, value.strip(), comment))
            tables[-1]["raw"] += pending + raw
            pending.clear()
        else:
            sys.exit(f"man_pages: cannot read this line of the config: {line!r}")
    if pending:
        free_block()
    return description, tables


def fit_comments(lines, width=68):
    """Wraps the comments of TOML lines longer than `width` (what fits a page 80 wide inside an
    indented example) at their column; a comment-only line carrying one on is joined to it first."""
    rows = []  # [line, code, comment or None]
    for line in lines:
        code, comment, _ = split_comment(line)
        if (comment is not None and not code.strip() and rows and rows[-1][2] is not None
                and len(rows[-1][0]) > width and len(code) == len(rows[-1][1])):
            rows[-1][2] += " " + comment
        else:
            rows.append([line, code, comment])
    fitted = []
    for line, code, comment in rows:
        if len(line) <= width or comment is None or width - len(code) < 24:
            fitted.append(line)
            continue
        pieces = textwrap.wrap(comment, width - len(code) - 2, break_on_hyphens=False)
        fitted += [(code if i == 0 else " " * len(code)) + "# " + piece
                   for i, piece in enumerate(pieces)]
    return fitted


def comment_blocks(comment_lines):
    """Comment lines as blocks: two or more lines opening with `"value": ` make a list."""
    paragraphs = [[]]
    for line in comment_lines:
        text = comment_text(line) if line.strip() else ""
        if text.strip():
            paragraphs[-1].append(text)
        else:
            paragraphs.append([])

    def choice(line):
        shape = re.fullmatch(r'("[^"]*"):\s+(.*)', line)
        return shape.groups() if shape else None

    return [block for lines in paragraphs if lines for block in split_blocks(
        [lines], choice if sum(bool(choice(line)) for line in lines) >= 2 else lambda _: None)]


def config_page(description, tables, version, date):
    config_path = FILES[0][0]
    page = Page()
    page.lines.append('.\\" Generated by scripts/man_pages.py from crates/config/src/default.toml.')
    page.request("TH", quoted("SYHUB-NTP.TOML", literal), "5", date,
                 quoted(f"syhub-ntp {version}", literal), quoted("File Formats Manual"))
    page.request("SH", "NAME")
    page.text("syhub\\-ntp.toml \\- configuration file of the syhub\\-ntp time server")
    page.request("SH", "SYNOPSIS")
    page.text(f"\\fI{literal(config_path)}\\fR")
    page.request("SH", "DESCRIPTION")
    page.blocks(comment_blocks(description))
    page.request("SH", "TABLES")
    by_name = {}  # a further [[array]] table of the default is shown as written, under the first
    for table in tables:
        by_name.setdefault(table["name"], []).append(table)
    for name, (first, *others) in by_name.items():
        page.request("SS", quoted((name or "Top level")
                                  + " (example, not in the default)" * bool(first["example"])))
        page.blocks(comment_blocks(first["intro"]))
        for key, value, comment in first["keys"]:
            wraps = len(key) + len(value) > 60  # then left-aligned, not stretched
            if wraps:
                page.request("na")
            page.tagged(f"\\fB{literal(key)}\\fR = {literal(value)}", comment_blocks(comment),
                        after_tag="ad" if wraps else None)
        if first["example"]:
            if not comment_text((first["intro"] or ["#"])[-1]).endswith(":"):
                page.request("PP")
                page.text("For example:")
            page.verbatim(fit_comments(first["example"]))
        if first["notes"]:
            page.request("PP")
            page.blocks(comment_blocks(first["notes"]))
        if others:
            page.request("PP")
            page.text(f"The default has {len(others) + 1} {prose(name)} tables; the others are:")
            for table in others:
                page.verbatim(fit_comments([line.rstrip() for line in table["raw"]]))
    page.request("SH", "FILES")
    page.tagged(f"\\fI{literal(config_path)}\\fR",
                [("text", "Read by `syhub-ntp run`; without it, the default shown here is used.")])
    page.request("SH", "SEE ALSO")
    page.text("\\fBsyhub\\-ntp\\fR(8)")
    return page


# --- version, date, output --------------------------------------------------------------------


def cargo_version():
    with open(REPO_ROOT / "Cargo.toml", "rb") as file:
        manifest = tomllib.load(file)
    version = manifest["package"]["version"]
    if isinstance(version, dict) and version.get("workspace"):
        version = manifest["workspace"]["package"]["version"]
    return version


def page_date():
    if os.environ.get("SOURCE_DATE_EPOCH"):
        moment = int(os.environ["SOURCE_DATE_EPOCH"])
        return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).date().isoformat()
    done = subprocess.run(["git", "-C", str(REPO_ROOT), "log", "-1", "--format=%cs"],
                          capture_output=True, text=True)
    return done.stdout.strip() or datetime.date.today().isoformat()


def write_page(out_dir, name, page, gzip_only):
    data = ("\n".join(page.lines) + "\n").encode("utf-8")
    if not gzip_only:
        (out_dir / name).write_bytes(data)
    with open(out_dir / (name + ".gz"), "wb") as file:
        with gzip.GzipFile(filename="", mode="wb", fileobj=file, compresslevel=9, mtime=0) as gz:
            gz.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the built syhub-ntp binary")
    parser.add_argument("--config", required=True, help="the commented default config (TOML)")
    parser.add_argument("--out", required=True, type=Path, help="directory for the pages")
    parser.add_argument("--version", help="version in the page footers [Cargo.toml's]")
    parser.add_argument("--date", help="YYYY-MM-DD in the page footers [see above]")
    parser.add_argument("--gzip-only", action="store_true", help="write only the .gz pages")
    args = parser.parse_args()

    version = args.version or cargo_version()
    date = args.date or page_date()
    config_text = Path(args.config).read_text(encoding="utf-8")
    tomllib.loads(config_text)  # a config that is not TOML fails here, loudly
    commands = discover(args.binary)
    args.out.mkdir(parents=True, exist_ok=True)
    write_page(args.out, "syhub-ntp.8", program_page(commands, version, date), args.gzip_only)
    write_page(args.out, "syhub-ntp.toml.5", config_page(*parse_config(config_text), version, date),
               args.gzip_only)


if __name__ == "__main__":
    main()
