"""`adapterctl principal add|list|revoke`: who may call the approval service, in which role.

The store is `shared.registry.principals`; this module is its command line.
"""

from __future__ import annotations

import argparse
from typing import Any

from adapterctl.catalogue import with_catalogue
from adapterctl.output import emit, moment, table, to_json, warn
from adapterctl.source import CliError, CliRefusal, Source
from shared.identity import canonical
from shared.registry.principals import (
    Role,
    add_principal,
    list_principals,
    revoke_principal,
)

EPILOG = """\
examples:
  adapterctl principal add alice --role approver     prints alice's token, once
  adapterctl principal add alice-ops --role operator --person alice   the same person
  adapterctl principal list
  adapterctl principal revoke alice --role approver

roles: trainer (submit), approver (approve or deny), operator (promote, roll back),
auditor (read, replay), admin (environments, policies)"""


def run_add(args: argparse.Namespace, source: Source) -> int:
    role = Role(args.role)
    try:
        token = with_catalogue(
            source, lambda c: add_principal(c.pool, args.name, role, args.person)
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    name, person = canonical(args.name), canonical(args.person or args.name)
    if args.json:
        emit(to_json({"name": name, "role": role.value, "person": person, "token": token}))
    else:
        emit(token)
        warn(f"the {role} token of {name} ({person}); it is shown this once and stored only hashed")
    return 0


def run_list(args: argparse.Namespace, source: Source) -> int:
    records = with_catalogue(source, lambda c: list_principals(c.pool))
    if args.json:
        emit(to_json(records))
        return 0
    rows = [
        (
            r.name,
            r.role,
            r.person,
            moment(r.created_at),
            moment(r.revoked_at) if r.revoked_at else "active",
        )
        for r in records
    ]
    emit(table(("NAME", "ROLE", "PERSON", "CREATED", "REVOKED"), rows))
    return 0


def run_revoke(args: argparse.Namespace, source: Source) -> int:
    role = Role(args.role) if args.role else None
    revoked = with_catalogue(source, lambda c: revoke_principal(c.pool, args.name, role))
    if not revoked:
        raise CliRefusal(f"{args.name} holds no active {role or 'token'}: see `principal list`")
    emit(
        to_json([r.value for r in revoked])
        if args.json
        else f"revoked {args.name}: " + ", ".join(revoked)
    )
    return 0


def register(groups: Any, common: argparse.ArgumentParser) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    group = groups.add_parser(
        "principal",
        help="manage who may call the approval service",
        description="Principals and their bearer tokens (stored hashed) in the registry.",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    roles = [r.value for r in Role]
    add = commands.add_parser(
        "add",
        parents=[common],
        help="issue a token; printed once",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    add.add_argument("name", help="the principal's name (stored canonical: NFKC, case-folded)")
    add.add_argument("--role", required=True, choices=roles, help="what the token may do")
    add.add_argument(
        "--person",
        help="the person this principal belongs to (default: the name); one person's "
        "principals are one person for separation of duties and count once toward approvals",
    )
    add.set_defaults(run=run_add)
    lst = commands.add_parser(
        "list",
        parents=[common],
        help="list principals and roles",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    lst.set_defaults(run=run_list)
    revoke = commands.add_parser(
        "revoke",
        parents=[common],
        help="revoke a principal's tokens",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    revoke.add_argument("name", help="the principal whose tokens end")
    revoke.add_argument("--role", choices=roles, help="only this role (default: every role)")
    revoke.set_defaults(run=run_revoke)
