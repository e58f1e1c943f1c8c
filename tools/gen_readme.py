"""Generate the README's first part and static/description/index.html from
readme/*.md, as OCA's oca-gen-addon-readme does for OCA addons (not on PyPI).

    python3 tools/gen_readme.py          write them
    python3 tools/gen_readme.py --check  fail when they are not up to date

The README keeps everything below the generated part (how to run, test and
read the code); edit readme/*.md, never the generated part.
"""

import argparse
import ast
import re
import sys
from pathlib import Path

import markdown

ROOT = Path(__file__).resolve().parent.parent
ADDON = "crm_sales_sop"
BEGIN = "<!-- BEGIN generated from readme/*.md by tools/gen_readme.py: do not edit -->"
END = "<!-- END generated from readme/*.md -->"
# (fragment, title): OCA's order
FRAGMENTS = [
    ("DESCRIPTION.md", None),
    ("CONFIGURE.md", "Configuration"),
    ("USAGE.md", "Usage"),
    ("CONTRIBUTORS.md", "Contributors"),
]


def _manifest():
    return ast.literal_eval((ROOT / "__manifest__.py").read_text(encoding="utf-8"))


def readme_part():
    manifest = _manifest()
    series = manifest["version"].split(".", 2)
    lines = [
        BEGIN,
        f"# {manifest['name']} (`{ADDON}`)",
        "",
        f"Odoo {series[0]}.{series[1]} · {manifest['license']} · "
        f"{manifest['author']} · {manifest['summary']}",
        "",
    ]
    for fragment, title in FRAGMENTS:
        text = (ROOT / "readme" / fragment).read_text(encoding="utf-8").strip()
        if title:
            lines += [f"## {title}", ""]
        lines += [text, ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def readme(current):
    part = readme_part()
    if BEGIN in current and END in current:
        before, rest = current.split(BEGIN, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        return before + part + "\n" + after
    return part + "\n" + current


def index_html():
    body = readme_part().replace(BEGIN, "").replace(END, "")
    html = markdown.markdown(body, extensions=["tables"], output_format="html")
    # Odoo shows the page in Apps (ir.module.module.description_html): the
    # images are served from the addon's static folder
    html = re.sub(
        r'(src|href)="static/description/',
        rf'\1="/{ADDON}/static/description/',
        html,
    )
    return (
        '<section class="oe_container">\n'
        '<div class="oe_row oe_spaced">\n'
        f"{html}\n"
        "</div>\n"
        "</section>\n"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    readme_path = ROOT / "README.md"
    index_path = ROOT / "static" / "description" / "index.html"
    wanted = {
        readme_path: readme(readme_path.read_text(encoding="utf-8")),
        index_path: index_html(),
    }
    stale = [
        path
        for path, text in wanted.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    if args.check:
        if stale:
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            print(f"not up to date with readme/*.md: {names}")
            print("run: python3 tools/gen_readme.py")
            sys.exit(1)
        return
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
