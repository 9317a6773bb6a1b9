"""``.. cli-help::``: the ``hsi-stats`` command line's ``--help`` text, generated from its argparse parser.

``.. cli-help::`` alone shows the top-level help; ``.. cli-help:: analyze`` the help of one subcommand. The text
is what ``hsi-stats [COMMAND] --help`` prints at a width of 100 columns, so the page never drifts from the parser.
"""

from __future__ import annotations

import os

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.application import Sphinx

WIDTH = "100"


class CliHelp(Directive):
    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        from hsi_stats.cli import build_parser

        previous = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = WIDTH  # argparse reads the width when each formatter is made
        try:
            parser = build_parser()
            if self.arguments:
                commands = getattr(parser, "commands", {})
                name = self.arguments[0]
                if name not in commands:
                    raise self.error(f"hsi-stats has no command {name!r}; it has {sorted(commands)}")
                parser = commands[name]
            text = parser.format_help()
        finally:
            if previous is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = previous
        block = nodes.literal_block(text, text, language="text")
        container = nodes.container(classes=["cli-help"])
        container += block
        return [container]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("cli-help", CliHelp)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
