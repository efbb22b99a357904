"""The ``tollgate`` command.

Platform commands (the engine) live here; tenant commands come from the SDK
(``sdk.cli``: login, deploy, actions, bindings, secrets, executions, logs,
replay; ``sdk.runner``: run). Every command returns its exit status: 0
success, 1 failure, 2 usage error; tenant commands also 3 when the server
cannot be reached or refuses the key.
"""

from __future__ import annotations

import argparse
import logging
import sys

from runtime import __version__


def _engine_build(args: argparse.Namespace) -> int:
    from runtime.engine.build import BuildError, build

    try:
        build(force=args.force)
    except BuildError as exc:
        print(f"tollgate engine build: {exc}", file=sys.stderr)
        return 1
    return 0


def _engine_info(args: argparse.Namespace) -> int:
    from runtime import engine

    try:
        built = engine.load()
    except engine.EngineNotBuilt as exc:
        print(f"tollgate engine info: {exc}", file=sys.stderr)
        return 1
    for key, value in built.info.items():
        print(f"{key:14} {value}")
    return 0


def parser() -> argparse.ArgumentParser:
    from runtime import server
    from sdk import cli, runner

    top = argparse.ArgumentParser(
        prog="tollgate",
        description="A sandboxed runtime for login actions.",
        epilog=f"`tollgate COMMAND --help` tells more about each command.\n\n{cli.EXIT_STATUSES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"tollgate {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli.add_parsers(sub)
    runner.add_parser(sub)
    server.add_parsers(sub)

    engine = sub.add_parser("engine", help="build or describe the WebAssembly engine")
    engine_sub = engine.add_subparsers(dest="engine_command", required=True, metavar="SUBCOMMAND")
    build = engine_sub.add_parser("build", help="build the engine from its sources (cached)")
    build.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    build.set_defaults(func=_engine_build)
    info = engine_sub.add_parser("info", help="show the build id and how the engine was built")
    info.set_defaults(func=_engine_info)
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
