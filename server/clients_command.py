"""``ilp clients add|list|revoke``: the OAuth2 clients that may call this server.

``add`` prints the new client's secret once (it is stored only as a hash), or registers the
public keys of a SMART backend services client (``--jwks``); ``--organization``
binds the client to one facility and those below it, ``--region`` to a Kemendagri code prefix,
neither to every facility.  ``revoke`` stops its tokens at once.  See docs/security.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from server.config import Settings
from server.services import clients
from server.storage.db import create_db_engine


def add_parser(commands: Any) -> None:
    """Register ``clients`` on the ``ilp`` subcommands."""
    group = commands.add_parser("clients", help="OAuth2 clients of this server")
    actions = group.add_subparsers(required=True)
    add = actions.add_parser("add", help="register a client and print its secret")
    add.add_argument("client_id")
    add.add_argument(
        "--scope",
        default="system/*.cruds",
        help="SMART system scopes, space-separated (default: system/*.cruds)",
    )
    binding = add.add_mutually_exclusive_group()
    binding.add_argument("--organization", metavar="ID", help="bound to this Organization")
    binding.add_argument("--region", metavar="CODE", help="bound to a Kemendagri code prefix")
    add.add_argument(
        "--jwks",
        metavar="FILE",
        help="a public JWK Set: the client signs assertions (SMART backend services) instead "
        "of using a secret",
    )
    add.add_argument("--json", action="store_true", help="print id and secret as JSON")
    add.set_defaults(handler=_add)
    listing = actions.add_parser("list", help="the clients (never their secrets)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke a client: its tokens stop working")
    revoke.add_argument("client_id")
    revoke.set_defaults(handler=_revoke)


def _add(settings: Settings, args: argparse.Namespace) -> int:
    jwks = json.loads(Path(args.jwks).read_text()) if args.jwks else None
    engine = create_db_engine(settings)
    secret = clients.add_client(
        engine,
        args.client_id,
        scopes=args.scope,
        organization=args.organization,
        region=args.region,
        jwks=jwks,
    )
    engine.dispose()
    if args.json:
        print(json.dumps({"client_id": args.client_id, "client_secret": secret}))
    elif secret is None:
        print(f"client_id: {args.client_id} (authenticates with assertions signed by its keys)")
    else:
        print(f"client_id:     {args.client_id}\nclient_secret: {secret}")
        print("(the secret is shown only now; it is stored as a hash)")
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_db_engine(settings)
    found = clients.list_clients(engine)
    engine.dispose()
    if args.json:
        print(json.dumps([c.__dict__ for c in found], indent=2))
        return 0
    for c in found:
        where = f"Organization/{c.organization}" if c.organization else c.region or "everywhere"
        state = "revoked" if c.revoked else "active"
        print(f"{c.client_id}\t{state}\t{where}\t{c.scopes}")
    return 0


def _revoke(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_db_engine(settings)
    revoked = clients.revoke_client(engine, args.client_id)
    engine.dispose()
    if not revoked:
        print(f"ilp: no client {args.client_id!r}")
        return 1
    print(f"revoked {args.client_id}")
    return 0
