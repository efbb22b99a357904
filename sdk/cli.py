"""The tenant commands of ``tollgate``: log in, deploy, manage actions, read executions, replay them.

Every command talks to the management API with the typed client
(:mod:`sdk.client`) and a tenant's API key, saved by ``tollgate login`` in a
file only its owner may read (``TOLLGATE_CONFIG``, by default in the user's
configuration folder); ``TOLLGATE_URL`` and ``TOLLGATE_KEY`` in the
environment win over the file, for scripts and CI.

Output is words and tables for people; ``--json`` prints what the API
answered (or one object per line for streams) for scripts. Exit statuses
scripts can trust:

- 0: done;
- 1: the thing failed: an action failed its test, a replay differs from
  the record, the server could not do what it was asked;
- 2: a usage error or bad input: a missing file, a syntax error (with the
  file, line and column), an unknown action, a request the API refused;
- 3: the server cannot be reached, or it refused the key (or there is none).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdk.client import Action, ApiError, Tollgate

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_STATUSES",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "add_parsers",
    "config_path",
    "current_login",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

EXIT_STATUSES = """\
exit status:
  0  done
  1  the thing failed (an action failed its test, a replay differs, the server could not do it)
  2  usage error or bad input (a missing file, a syntax error, an unknown action, a refused request)
  3  the server cannot be reached, or it refused the key (or you are not logged in)"""

NOT_LOGGED_IN = "not logged in: run `tollgate login --url URL --key KEY` or set TOLLGATE_URL and TOLLGATE_KEY"


class CliError(Exception):
    """A command cannot go on; the message says why and what to do, `status` is the exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


# -- where the key lives ---------------------------------------------------------------------


def config_path() -> Path:
    """The login file: ``TOLLGATE_CONFIG``, else ``config.json`` in the user's configuration folder."""
    configured = os.environ.get("TOLLGATE_CONFIG")
    if configured:
        return Path(configured)
    import platformdirs

    return platformdirs.user_config_path("tollgate") / "config.json"


@dataclass(frozen=True)
class Login:
    """The server and key the commands use."""

    url: str
    key: str

    def client(self) -> Tollgate:
        from sdk.client import Tollgate

        return Tollgate(self.url, self.key)


def _saved() -> dict[str, str]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the login file {path} ({exc}): log in again with `tollgate login`") from None
    if not isinstance(data, dict):
        raise CliError(f"the login file {path} is not one tollgate wrote: log in again with `tollgate login`")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def current_login() -> Login:
    """The URL and key to use: the environment's, else the login file's; CliError (status 3) when there is none."""
    saved = _saved()
    url = os.environ.get("TOLLGATE_URL") or saved.get("url")
    key = os.environ.get("TOLLGATE_KEY") or saved.get("key")
    if not url or not key:
        raise CliError(NOT_LOGGED_IN, EXIT_UNREACHABLE)
    return Login(_server_url(url), key)


def _server_url(text: str) -> str:
    """The server's base URL, from what a person may paste (a trailing slash, the API's path)."""
    url = text.strip().rstrip("/").removesuffix("/api/v2")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"{text!r} is not a server URL: give it as http://HOST:PORT or https://HOST")
    return url


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600), the folder too when it is made now."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), stat.S_IRUSR | stat.S_IWUSR)  # an older file may have had wider rights
        f.write(text)
    os.replace(temporary, path)


# -- running a command: errors in words, with an exit status ----------------------------------


def _guard(name: str, run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`run` with every expected failure turned into a message on stderr and its exit status."""

    def command(args: argparse.Namespace) -> int:
        from sdk.client import ApiError, Unreachable
        from sdk.descriptor import DescriptorError
        from sdk.replay import ReplayError
        from sdk.runner import UsageError

        try:
            return run(args)
        except CliError as exc:
            message, status = str(exc), exc.status
        except Unreachable as exc:
            message, status = f"{exc}. Is `tollgate serve` running there?", EXIT_UNREACHABLE
        except ApiError as exc:
            message, status = _api_error(exc)
        except (DescriptorError, UsageError) as exc:
            message, status = str(exc), EXIT_USAGE
        except ReplayError as exc:
            message, status = str(exc), EXIT_FAILED
        except KeyboardInterrupt:
            message, status = "interrupted", 130
        print(f"tollgate {name}: {message}", file=sys.stderr)
        return status

    return command


def _api_error(exc: ApiError) -> tuple[str, int]:
    """An error the API answered, in words, with the exit status it deserves."""
    if exc.status == 401:
        return (
            f"the server refused the key ({exc.message}): log in again with `tollgate login --url URL --key KEY`, "
            "or check TOLLGATE_KEY",
            EXIT_UNREACHABLE,
        )
    if exc.code == "tenant_only":
        return "this is the operator's key: tenant commands need a tenant's API key", EXIT_UNREACHABLE
    if 400 <= exc.status < 500 and exc.status not in (403, 429):
        return exc.message, EXIT_USAGE
    return f"{exc.message} (HTTP {exc.status}, {exc.code})", EXIT_FAILED


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Rows under their headers, in columns as wide as their widest cell."""
    cells = [list(headers), *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _when(moment: str | None) -> str:
    """An API time (ISO 8601, UTC) as people read it: ``2026-11-28 10:15:02Z``."""
    return "never" if not moment else moment[:19].replace("T", " ") + "Z"


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"no {what} at {path}") from None
    except IsADirectoryError:
        raise CliError(f"{path} is a folder; give the {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the {what} {path}: {exc}") from None


def _read_event(path: str | None) -> dict[str, Any]:
    from sdk.runner import sample_event

    if path is None:
        return sample_event()
    try:
        data = json.loads(_read_text(path, "event file"))
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise CliError(f"the event file {path} must hold a JSON object")
    return data


def _find_action(api: Tollgate, ref: str) -> Action:
    """The action named `ref` (or with the id `ref`); CliError listing the names there are."""
    actions = api.actions.list_all()
    for action in actions:
        if ref in (action["name"], action["id"]):
            return action
    names = ", ".join(sorted(a["name"] for a in actions))
    there = f"the actions are: {names}" if names else "there are no actions yet (tollgate deploy FOLDER makes them)"
    raise CliError(f"no action named {ref!r}; {there}")


# -- login -----------------------------------------------------------------------------------


def _login(args: argparse.Namespace) -> int:
    from sdk.client import ApiError, Tollgate

    url = _server_url(args.url)
    key = args.key if args.key is not None else _secret_input("API key", None, None)
    with Tollgate(url, key) as api:
        try:
            api.settings.get()  # proves the URL and that the key is a tenant's
        except ApiError as exc:
            if exc.status == 401:
                raise CliError(f"{url} refused this key ({exc.message}): nothing was saved", EXIT_UNREACHABLE) from None
            raise
    path = config_path()
    _write_private(path, json.dumps({"url": url, "key": key}, indent=2) + "\n")
    print(f"Logged in to {url}: the key works. Saved in {path}, readable by you only.")
    for name in ("TOLLGATE_URL", "TOLLGATE_KEY"):
        if os.environ.get(name):
            print(f"Note: {name} is set in your environment, and wins over the saved login.")
    return EXIT_OK


# -- deploy ----------------------------------------------------------------------------------


def _deploy(args: argparse.Namespace) -> int:
    from sdk.descriptor import deploy, load

    folder = Path(args.folder)
    if not folder.is_dir():
        raise CliError(f"no folder at {folder}: give a tenant's folder, the one holding its tenant.json")
    descriptor = load(folder)
    login = current_login()
    say: Callable[[str], None] = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
    with login.client() as api:
        owner = api.keys.current()
        if owner["kind"] != "tenant":
            raise CliError("this is the operator's key: deploy needs the tenant's API key", EXIT_UNREACHABLE)
        target = owner.get("tenant_name", "")
        if target not in (descriptor.name, args.into):
            raise CliError(
                f"{folder} describes the tenant {descriptor.name!r}, but the key you are logged in with is "
                f"the tenant {target!r}'s: log in with {descriptor.name!r}'s key, or pass --into {target} to "
                "deploy this folder into that tenant on purpose"
            )
        into = "" if target == descriptor.name else f" into the tenant {target}"
        say(f"Deploying {folder} (tenant {descriptor.name}){into} to {login.url}")
        done = deploy(api, descriptor, update_secrets=args.update_secrets, report=say)
    if args.json:
        _print_json(done.as_dict())
        return EXIT_OK
    for client in done.clients.values():
        if client.client_secret:
            print(f"The client secret of {client.name!r}, shown this once (keep it now): {client.client_secret}")
    if done.changes:
        print(f"Done: {done.changes} change{'s' if done.changes != 1 else ''}.")
    else:
        print(f"Nothing to change: the tenant already matches {folder}.")
    return EXIT_OK


# -- actions ---------------------------------------------------------------------------------


def _actions_list(args: argparse.Namespace) -> int:
    with current_login().client() as api:
        actions = api.actions.list_all(trigger=args.trigger)
    if args.json:
        _print_json(actions)
        return EXIT_OK
    if not actions:
        print("No actions yet: `tollgate actions create NAME FILE` or `tollgate deploy FOLDER` makes them.")
        return EXIT_OK
    rows = [
        [
            a["name"],
            a["supported_triggers"][0]["id"],
            f"version {a['deployed_version']['number']}" if a["deployed_version"] else "never",
            "deployed" if a["all_changes_deployed"] else "changes not deployed",
            ", ".join(s["name"] for s in a["secrets"]) or "-",
            _when(a["updated_at"]),
        ]
        for a in actions
    ]
    print(_table(["NAME", "TRIGGER", "DEPLOYED", "DRAFT", "SECRETS", "UPDATED"], rows))
    return EXIT_OK


def _actions_show(args: argparse.Namespace) -> int:
    with current_login().client() as api:
        action = _find_action(api, args.action)
        versions = api.actions.versions(action["id"])
    if args.json:
        _print_json({"action": action, "versions": versions})
        return EXIT_OK
    deployed = action["deployed_version"]
    trigger = action["supported_triggers"][0]
    print(f"{action['name']} (id {action['id']})")
    print(f"  trigger    {trigger['id']} ({trigger['version']}), runtime {action['runtime']}")
    print(f"  handlers   {', '.join(action['handlers'])}")
    print(f"  deployed   {'version ' + str(deployed['number']) if deployed else 'never'}")
    draft = "deployed" if action["all_changes_deployed"] else (
        f"holds changes not deployed (deploy them: tollgate actions deploy {action['name']})"
    )  # fmt: skip
    print(f"  draft      {draft}, updated {_when(action['updated_at'])}")
    print(f"  secrets    {', '.join(s['name'] for s in action['secrets']) or 'none'} (names only: values never leave)")
    if versions:
        numbers = {v["id"]: v["number"] for v in versions}
        rows = [
            [str(v["number"]), _when(v["created_at"]), "deployed" if v["deployed"] else "",
             f"copy of version {numbers.get(v['rolled_back_from'], '?')}" if v["rolled_back_from"] else ""]
            for v in versions
        ]  # fmt: skip
        print()
        print(_table(["VERSION", "CREATED", "LIVE", "NOTE"], rows))
    if args.code:
        print(f"\nThe draft's code:\n{action['code']}")
    return EXIT_OK


def _compile_refusal(exc: ApiError, path: str) -> Exception:
    """A refused upload: the code's fault (400) points at the file, with line and column; others stay as they are."""
    return CliError(exc.at(path)) if exc.status == 400 else exc


def _actions_create(args: argparse.Namespace) -> int:
    from sdk.client import ApiError

    code = _read_text(args.file, "action file")
    with current_login().client() as api:
        try:
            action = api.actions.create(args.name, code, trigger=args.trigger)
        except ApiError as exc:
            raise _compile_refusal(exc, args.file) from None
        version = api.actions.deploy(action["id"]) if args.deploy else None
    if args.json:
        _print_json({"action": action, "version": version})
        return EXIT_OK
    print(f"{action['name']}: created (id {action['id']}), handlers {', '.join(action['handlers'])}")
    if version is not None:
        print(f"{action['name']}: deployed as version {version['number']}")
    else:
        print(f"Not deployed yet: test it with `tollgate actions test {action['name']}`, "
              f"then `tollgate actions deploy {action['name']}`.")  # fmt: skip
    return EXIT_OK


def _actions_update(args: argparse.Namespace) -> int:
    from sdk.client import ApiError

    code = _read_text(args.file, "action file").removeprefix("\ufeff")
    with current_login().client() as api:
        action = _find_action(api, args.action)
        if code == action["code"] and args.name in (None, action["name"]):
            if args.json:
                _print_json(action)
            else:
                print(f"{action['name']}: unchanged (the draft already holds this code)")
            return EXIT_OK
        try:
            updated = api.actions.update(action["id"], code=code if code != action["code"] else None, name=args.name)
        except ApiError as exc:
            raise _compile_refusal(exc, args.file) from None
    if args.json:
        _print_json(updated)
        return EXIT_OK
    live = updated["deployed_version"]
    print(f"{updated['name']}: the draft is updated, handlers {', '.join(updated['handlers'])}")
    print(f"Logins run {'version ' + str(live['number']) if live else 'no version of it'} until you deploy: "
          f"tollgate actions deploy {updated['name']}")  # fmt: skip
    return EXIT_OK


def _actions_deploy(args: argparse.Namespace) -> int:
    with current_login().client() as api:
        action = _find_action(api, args.action)
        version = api.actions.deploy(action["id"])
    if args.json:
        _print_json(version)
    else:
        print(f"{action['name']}: deployed as version {version['number']}")
    return EXIT_OK


def _actions_rollback(args: argparse.Namespace) -> int:
    wanted = args.version.lower().removeprefix("v")
    with current_login().client() as api:
        action = _find_action(api, args.action)
        versions = api.actions.versions(action["id"])
        old = next((v for v in versions if wanted in (str(v["number"]), v["id"])), None)
        if old is None:
            numbers = ", ".join(str(v["number"]) for v in reversed(versions)) or "none"
            raise CliError(f"{action['name']} has no version {args.version}; its versions are: {numbers}")
        version = api.actions.rollback(action["id"], old["id"])
    if args.json:
        _print_json(version)
    else:
        print(f"{action['name']}: version {old['number']} deployed again, as version {version['number']} "
              "(its code and secrets)")  # fmt: skip
    return EXIT_OK


def _actions_delete(args: argparse.Namespace) -> int:
    from sdk.client import ApiError

    with current_login().client() as api:
        action = _find_action(api, args.action)
        try:
            api.actions.delete(action["id"], force=args.force)
        except ApiError as exc:
            if exc.status != 409:
                raise
            raise CliError(f"{action['name']} is bound to a trigger: take it out of the flow with "
                           "`tollgate bindings set`, or delete it anyway with --force") from None  # fmt: skip
    if args.json:
        _print_json({"deleted": action["id"]})
    else:
        print(f"{action['name']}: deleted, with its versions and secrets")
    return EXIT_OK


def _actions_test(args: argparse.Namespace) -> int:
    from sdk.runner import render_result

    event = _read_event(args.event)
    with current_login().client() as api:
        action = _find_action(api, args.action)
        result = api.actions.test(action["id"], event, handler=args.handler)
    if args.json:
        _print_json(result)
    else:
        print(render_result(f"{action['name']} (draft) · {args.handler}", dict(result)))
        execution = result["execution_id"]
        print(f"\nRecorded as execution {execution}: replay it locally with `tollgate replay {execution}`")
    return EXIT_OK if result["status"] == "completed" else EXIT_FAILED


# -- bindings --------------------------------------------------------------------------------


def _flow_words(trigger: str, names: list[str]) -> str:
    return f"{trigger} flow: {' -> '.join(names) if names else 'empty (no action runs)'}"


def _bindings_show(args: argparse.Namespace) -> int:
    with current_login().client() as api:
        bindings = api.actions.bindings(args.trigger)
    if args.json:
        _print_json(bindings)
    else:
        print(_flow_words(args.trigger, [b["action"]["name"] for b in bindings]))
    return EXIT_OK


def _bindings_set(args: argparse.Namespace) -> int:
    with current_login().client() as api:
        ids = [_find_action(api, ref)["id"] for ref in args.actions]
        bindings = api.actions.update_bindings(ids, trigger=args.trigger)
    if args.json:
        _print_json(bindings)
    else:
        print(_flow_words(args.trigger, [b["action"]["name"] for b in bindings]))
    return EXIT_OK


# -- secrets ---------------------------------------------------------------------------------


def _secret_input(what: str, value: str | None, file: str | None) -> str:
    """A secret value from a flag, a file or standard input (asked without echo on a terminal)."""
    if value is not None:
        text = value
    elif file is not None:
        text = _read_text(file, "secret file").removesuffix("\n").removesuffix("\r")
    elif sys.stdin.isatty():
        import getpass

        text = getpass.getpass(f"{what} (not shown): ")
    else:
        text = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    if not text:
        raise CliError(f"the {what} is empty")
    return text


def _secrets_list(args: argparse.Namespace) -> int:
    with current_login().client() as api:
        action = _find_action(api, args.action)
    if args.json:
        _print_json(action["secrets"])
        return EXIT_OK
    if not action["secrets"]:
        print(f"{action['name']} has no secrets: add one with `tollgate secrets set {action['name']} NAME`")
        return EXIT_OK
    print(_table(["NAME", "UPDATED"], [[s["name"], _when(s["updated_at"])] for s in action["secrets"]]))
    if not action["all_changes_deployed"]:
        print("(the draft's secrets; the deployed version keeps the ones it was deployed with)")
    return EXIT_OK


def _secrets_set(args: argparse.Namespace) -> int:
    value = _secret_input(f"value of {args.name}", args.value, args.from_file)
    with current_login().client() as api:
        action = _find_action(api, args.action)
        kept: dict[str, str | None] = {s["name"]: None for s in action["secrets"]}
        api.actions.update(action["id"], secrets={**kept, args.name: value})
    if args.json:
        _print_json({"action": action["name"], "secret": args.name, "set": True})
    else:
        print(f"{action['name']}: {args.name} is set on the draft (the value is not shown).")
        print(f"Logins use it once you deploy: tollgate actions deploy {action['name']}")
    return EXIT_OK


def _secrets_unset(args: argparse.Namespace) -> int:
    with current_login().client() as api:
        action = _find_action(api, args.action)
        names = [s["name"] for s in action["secrets"]]
        if args.name not in names:
            raise CliError(f"{action['name']} has no secret {args.name}; it has: {', '.join(names) or 'none'}")
        api.actions.update(action["id"], secrets={n: None for n in names if n != args.name})
    if args.json:
        _print_json({"action": action["name"], "secret": args.name, "set": False})
    else:
        print(f"{action['name']}: {args.name} is removed from the draft.")
        print(f"The deployed version keeps it until you deploy: tollgate actions deploy {action['name']}")
    return EXIT_OK


# -- executions and logs ---------------------------------------------------------------------


def _executions_list(args: argparse.Namespace) -> int:
    with current_login().client() as api:
        action_id = _find_action(api, args.action)["id"] if args.action else None
        page = api.executions.list(action_id=action_id, status=args.status, since=args.since, until=args.until,
                                   per_page=args.limit)  # fmt: skip
    if args.json:
        _print_json(page)
        return EXIT_OK
    if not page["executions"]:
        print("No executions recorded" + (" that match" if args.action or args.status or args.since else "") + ".")
        return EXIT_OK
    rows = [
        [e["id"], _when(e["created_at"]), e["kind"], e["status"],
         ", ".join(f"{a['action_name']} {a['handler']} {a['error_class'] or a['status']}"
                   for a in e["actions"]) or "-"]
        for e in page["executions"]
    ]  # fmt: skip
    print(_table(["ID", "WHEN", "KIND", "STATUS", "RUNS"], rows))
    if page["total"] > len(page["executions"]):
        print(f"({len(page['executions'])} of {page['total']}, newest first; --limit shows more)")
    return EXIT_OK


def _executions_show(args: argparse.Namespace) -> int:
    from sdk.client import ApiError
    from sdk.runner import render_result

    with current_login().client() as api:
        record = api.executions.get(args.execution)
        numbers: dict[str, int] = {}  # version id -> number, for people
        for action_id in {r["action_id"] for r in record["results"] if r["version_id"] is not None}:
            try:
                numbers.update((v["id"], v["number"]) for v in api.actions.versions(action_id))
            except ApiError as exc:
                if exc.status != 404:  # a deleted action: its versions are shown by id
                    raise
    if args.json:
        _print_json(record)
        return EXIT_OK
    kind = "test run" if record["kind"] == "test" else f"{record['trigger_id']} flow"
    print(f"Execution {record['id']} · {kind} · {record['status']} · {_when(record['created_at'])}")
    for number, entry in enumerate(record["results"], 1):
        version_id = entry["version_id"]
        version = (
            "the draft" if version_id is None
            else f"version {numbers[version_id]}" if version_id in numbers else f"version id {version_id}"
        )  # fmt: skip
        print()
        print(render_result(f"Run {number}: {entry['action_name']} ({version}) · {entry['handler']}", dict(entry)))
    print(f"\nReplay it locally: tollgate replay {record['id']}")
    return EXIT_OK


def _log_entry(run: Mapping[str, Any], at: str | None, execution_id: str) -> str:
    """One action run (a record's or the stream's) as ``tollgate logs`` prints it: a heading, its console output."""
    from sdk.runner import render_logs

    lines = [f"{_when(at)}  {run['action_name']} · {run['handler']} · {run['status']}  (execution {execution_id})"]
    lines += render_logs(run.get("logs") or [], indent="  ")
    error = run.get("error")
    if error:
        lines.append(f"  {error.get('class')}: {error.get('message')}")
    return "\n".join(lines)


def _logs(args: argparse.Namespace) -> int:
    with current_login().client() as api:
        action_id = _find_action(api, args.action)["id"] if args.action else None
        if args.follow:
            return _follow(api, action_id, args.json)
        page = api.executions.list(action_id=action_id, per_page=args.limit)
        records = [api.executions.get(e["id"]) for e in reversed(page["executions"])]
    shown = 0
    for record in records:
        for entry in record["results"]:
            if action_id is not None and entry["action_id"] != action_id:
                continue
            shown += 1
            if args.json:
                print(json.dumps({"execution_id": record["id"], **entry}, ensure_ascii=False))
            else:
                print(_log_entry(entry, entry["ended_at"], record["id"]))
    if not shown and not args.json:
        print("No executions recorded yet: `tollgate logs --follow` shows them as they happen.")
    return EXIT_OK


def _follow(api: Tollgate, action_id: str | None, as_json: bool) -> int:
    """Print each action run as it is recorded, until Ctrl+C (which ends the command with status 0)."""
    try:
        with api.executions.stream() as stream:
            print(f"Following the executions at {api.url} as they are recorded (Ctrl+C to stop)",
                  file=sys.stderr, flush=True)  # fmt: skip
            for event in stream:
                if action_id is not None and event["action_id"] != action_id:
                    continue
                if as_json:
                    print(json.dumps(event, ensure_ascii=False), flush=True)
                else:
                    print(_log_entry(event, event["at"], event["execution_id"]), flush=True)
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
    return EXIT_OK


# -- replay ----------------------------------------------------------------------------------


def _replay_secrets(flags: list[str]) -> dict[str, str]:
    """Secret values for replay: ``TOLLGATE_SECRET_<NAME>`` from the environment, then --secret flags, which win."""
    prefix = "TOLLGATE_SECRET_"
    given = {k.removeprefix(prefix): v for k, v in os.environ.items() if k.startswith(prefix) and k != prefix}
    for item in flags:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--secret takes NAME=VALUE, not {item.split('=')[0]!r}…")
        given[name] = value
    return given


def _replay(args: argparse.Namespace) -> int:
    from sdk.replay import LocalCode, replay

    code = LocalCode(args.code, _read_text(args.code, "code file")) if args.code else None
    secrets = _replay_secrets(args.secret)
    with current_login().client() as api:
        report = replay(api, args.execution, run=args.run, code=code, secrets=secrets)
    if args.json:
        _print_json(report.as_dict())
    else:
        print(report.render())
    return EXIT_OK if report.reproduced else EXIT_FAILED


# -- the parsers -----------------------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    """Register the tenant commands on ``tollgate``'s subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter  # the exit statuses' table as written; descriptions filled here

    def command(
        parent: Any, name: str, run: Callable[[argparse.Namespace], int], help: str, *, full: str, json: bool = True
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name.rsplit(maxsplit=1)[-1], help=help, description=textwrap.fill(full, 79), epilog=EXIT_STATUSES,
            formatter_class=formatter,
        )  # fmt: skip
        if json:
            parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of words")
        parser.set_defaults(func=_guard(name, run))
        return parser

    def group(name: str, help: str, full: str) -> Any:
        parser = sub.add_parser(
            name, help=help, description=textwrap.fill(full, 79), epilog=EXIT_STATUSES, formatter_class=formatter
        )
        return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="SUBCOMMAND")

    p = command(sub, "login", _login, "save the server's URL and a tenant's API key for the other commands", json=False,
                full="Check the key against the server, then save both in a file only you can read "
                     "(TOLLGATE_CONFIG, by default config.json in your configuration folder). TOLLGATE_URL and "
                     "TOLLGATE_KEY in the environment win over the file.")  # fmt: skip
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    p.add_argument("--key", help="the tenant's API key (default: asked for, or read from standard input)")

    p = command(sub, "deploy", _deploy, "make the tenant match a folder's tenant.json, in one step",
                full="Create or update, deploy and bind everything the folder's tenant.json describes: allowed "
                     "redirect hosts, clients, users (when missing), actions and their secrets, bindings. What "
                     "already matches is left alone: deploying an unchanged folder changes nothing. Uses the "
                     "logged-in tenant's key (it does not create the tenant), and refuses a key of a tenant "
                     "other than the one tenant.json names unless --into names it.")  # fmt: skip
    p.add_argument("folder", help="the tenant's folder, e.g. tenants/acme-bank")
    p.add_argument("--update-secrets", action="store_true",
                   help='set secrets with an {"env": ...} source again even when the action has them (the API never '
                        "shows values, so a change cannot be seen)")  # fmt: skip
    p.add_argument("--into", metavar="TENANT",
                   help="deploy into the logged-in tenant although tenant.json names another one (give the "
                        "logged-in tenant's name, to say it is on purpose)")  # fmt: skip

    actions = group("actions", "list, show, create, update, test, deploy, roll back or delete actions",
                    "ACTION is an action's name or id.")  # fmt: skip
    p = command(actions, "actions list", _actions_list, "list the actions", full="List the tenant's actions.")
    p.add_argument("--trigger", help="only the actions of this trigger, e.g. post-login")
    p = command(
        actions,
        "actions show",
        _actions_show,
        "show an action and its versions",
        full="Show an action: its trigger, handlers, deployed version, draft, secret names and versions.",
    )
    p.add_argument("action", metavar="ACTION")
    p.add_argument("--code", action="store_true", help="print the draft's code too")
    p = command(actions, "actions create", _actions_create, "create an action from a JavaScript file",
                full="Create an action: its code is compiled at once (a syntax error names the line and column). "
                     "Add secrets with `tollgate secrets set`.")  # fmt: skip
    p.add_argument("name", metavar="NAME")
    p.add_argument("file", metavar="FILE", help="the action's .js file")
    p.add_argument("--trigger", default="post-login", help="default: post-login")
    p.add_argument("--deploy", action="store_true", help="deploy it at once")
    p = command(
        actions,
        "actions update",
        _actions_update,
        "replace an action's draft code with a file",
        full="Replace the draft's code; logins keep running the deployed version until you deploy.",
    )
    p.add_argument("action", metavar="ACTION")
    p.add_argument("file", metavar="FILE", help="the action's .js file")
    p.add_argument("--name", help="rename the action too")
    p = command(actions, "actions test", _actions_test, "run the draft on the server against an event",
                full="Run the draft, with its secrets, against an event; show its commands, console output, "
                     "error and stats. The run is recorded (replay it with `tollgate replay`). Exit status 1 when "
                     "the action fails.")  # fmt: skip
    p.add_argument("action", metavar="ACTION")
    p.add_argument("--event", metavar="EVENT.json", help="the event (default: the trigger's sample event)")
    p.add_argument("--handler", default="onExecutePostLogin", choices=["onExecutePostLogin", "onContinuePostLogin"],
                   help="default: onExecutePostLogin")  # fmt: skip
    p = command(actions, "actions deploy", _actions_deploy, "deploy the draft as a new version",
                full="Deploy the draft (code and secrets) as a new immutable version; where the action is bound, "
                     "logins run it at once.")  # fmt: skip
    p.add_argument("action", metavar="ACTION")
    p = command(
        actions,
        "actions rollback",
        _actions_rollback,
        "deploy an older version again",
        full="Deploy a copy of an older version, with its code and secrets, as a new version.",
    )
    p.add_argument("action", metavar="ACTION")
    p.add_argument("version", metavar="VERSION", help="the version's number (3 or v3) or id")
    p = command(
        actions,
        "actions delete",
        _actions_delete,
        "delete an action",
        full="Delete an action with its versions and secrets; a bound one only with --force.",
    )
    p.add_argument("action", metavar="ACTION")
    p.add_argument("--force", action="store_true", help="delete it even if bound: it leaves its flow")

    bindings = group("bindings", "show or set which actions a trigger's flow runs",
                     "A trigger's flow runs its bound, deployed actions in order.")  # fmt: skip
    p = command(bindings, "bindings show", _bindings_show, "show a trigger's flow", full="Show a trigger's flow.")
    p.add_argument("trigger", nargs="?", default="post-login", metavar="TRIGGER", help="default: post-login")
    p = command(
        bindings,
        "bindings set",
        _bindings_set,
        "set a trigger's flow",
        full="Replace a trigger's flow with these deployed actions, run in this order.",
    )
    p.add_argument("trigger", metavar="TRIGGER", help="e.g. post-login")
    p.add_argument("actions", nargs="+", metavar="ACTION")

    secrets = group("secrets", "list, set or remove an action's secrets",
                    "Secrets are set on an action's draft and reach logins with its next deploy. Values are "
                    "never shown: only names.")  # fmt: skip
    p = command(
        secrets,
        "secrets list",
        _secrets_list,
        "list an action's secret names",
        full="List the names of an action's secrets (never their values).",
    )
    p.add_argument("action", metavar="ACTION")
    p = command(secrets, "secrets set", _secrets_set, "set a secret's value",
                full="Set a secret on the draft. The value comes from --value, --from-file, or standard input "
                     "(asked without echo on a terminal); it is never printed.")  # fmt: skip
    p.add_argument("action", metavar="ACTION")
    p.add_argument("name", metavar="NAME")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--value", help="the value (beware: command lines can be seen by other users)")
    source.add_argument("--from-file", metavar="FILE", help="read the value from FILE (one trailing newline dropped)")
    p = command(secrets, "secrets unset", _secrets_unset, "remove a secret", full="Remove a secret from the draft.")
    p.add_argument("action", metavar="ACTION")
    p.add_argument("name", metavar="NAME")

    executions = group("executions", "list or show execution records",
                       "Every run of an action (logins and tests) is recorded, with what replay needs.")  # fmt: skip
    p = command(executions, "executions list", _executions_list, "list recent executions",
                full="List execution records, newest first.")  # fmt: skip
    p.add_argument("--action", metavar="ACTION", help="only those that ran this action")
    p.add_argument("--status", choices=["completed", "denied", "failed", "suspended"])
    p.add_argument("--since", metavar="TIME", type=_moment, help="ISO 8601 with a zone, e.g. 2026-11-28T10:00:00Z")
    p.add_argument("--until", metavar="TIME", type=_moment, help="ISO 8601 with a zone")
    p.add_argument("--limit", type=_page_size, default=20, help="how many (1 to 100, default 20)")
    p = command(
        executions,
        "executions show",
        _executions_show,
        "show an execution record",
        full="Show each run of a record: commands, console output, error and stats.",
    )
    p.add_argument("execution", metavar="EXECUTION_ID")

    p = command(sub, "logs", _logs, "show what actions printed, or follow it live",
                full="Show the console output and outcome of recent action runs, oldest first; with --follow, "
                     "each run as it is recorded, until Ctrl+C (exit status 0).")  # fmt: skip
    p.add_argument("--follow", "-f", action="store_true", help="keep following new runs")
    p.add_argument("--action", metavar="ACTION", help="only this action's runs")
    p.add_argument("--limit", type=_page_size, default=10, help="how many recent executions (default 10)")

    p = command(sub, "replay", _replay, "run a recorded execution again locally, and compare",
                full="Fetch an execution record and run each action run again locally in the same sandbox, with "
                     "the same event, random seed, clock and platform answers; print its commands and console "
                     "output and \"reproduced exactly\", or the difference from the record. Secrets are never "
                     "returned by the API: give them with --secret NAME=VALUE or TOLLGATE_SECRET_<NAME>. Exit "
                     "status 1 when the replay differs.")  # fmt: skip
    p.add_argument("execution", metavar="EXECUTION_ID")
    p.add_argument("--run", type=int, metavar="N", help="only run N of the record (from 1; default: every run)")
    p.add_argument("--code", metavar="FILE", help="replay with this code in place of the recorded version's")
    p.add_argument("--secret", action="append", default=[], metavar="NAME=VALUE", help="a secret's value")


def _page_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("must be from 1 to 100")
    return value


def _moment(text: str) -> str:
    """A time for the API's filters: ISO 8601 with its zone (the API's clock is UTC)."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time, e.g. 2026-11-28T10:15:00Z") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs its time zone, e.g. 2026-11-28T10:15:00Z")
    return moment.isoformat()
