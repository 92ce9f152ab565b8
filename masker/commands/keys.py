"""`masker keys`: create the key store, rotate data keys, rotate the KEK.

The KEK comes from ``--kek-file`` or an environment variable (``--kek-env``,
default MASKER_KEK), never from the command line itself, so it stays out of
shell history and process listings.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from masker.errors import UserError

if TYPE_CHECKING:
    from tokenizer.config import TokenizerConfig
    from tokenizer.keys import Kek

DEFAULT_STORE = "var/keys.json"
DEFAULT_KEK_ENV = "MASKER_KEK"


def _kek_args(p: argparse.ArgumentParser, prefix: str = "", what: str = "KEK") -> None:
    p.add_argument(f"--{prefix}kek-file", metavar="FILE", help=f"file holding the {what}")
    p.add_argument(
        f"--{prefix}kek-env",
        metavar="VAR",
        default=DEFAULT_KEK_ENV if not prefix else None,
        help=f"environment variable holding the {what}",
    )


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "keys",
        help="create and rotate the tokeniser's keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="keys_action", required=True, metavar="ACTION")

    g = actions.add_parser("generate-kek", help="write a new random KEK to a file (mode 0600)")
    g.add_argument("--out", required=True, metavar="FILE")

    for name, help_text in (
        ("create", "create a key store with its first data key"),
        ("rotate", "add a new active data key (old records stay readable)"),
        ("list", "list the data keys (ids and dates only)"),
        ("retire-kek", "drop wrappings under any KEK but this one (after rewrap)"),
    ):
        a = actions.add_parser(name, help=help_text)
        a.add_argument("--store", default=DEFAULT_STORE, metavar="PATH")
        if name != "list":
            _kek_args(a)

    r = actions.add_parser("rewrap", help="wrap every data key under a new KEK as well")
    r.add_argument("--store", default=DEFAULT_STORE, metavar="PATH")
    _kek_args(r)
    _kek_args(r, "new-", "new KEK")

    e = actions.add_parser(
        "reencrypt", help="re-seal the vault records of an old key under the active key"
    )
    e.add_argument("--store", default=DEFAULT_STORE, metavar="PATH")
    e.add_argument("--vault", default="var/vault.sqlite3", metavar="PATH")
    e.add_argument(
        "--vault-dsn-env",
        metavar="VAR",
        help="re-seal a shared PostgreSQL vault instead: the environment variable holding "
        "its DSN (kept off the command line, which other users can read)",
    )
    e.add_argument("--from-key", required=True, metavar="KEY_ID")
    _kek_args(e)
    return p


def _load_kek(file: str | None, env: str | None, what: str = "KEK") -> Kek:
    from tokenizer.keys import Kek, KeyError_

    try:
        if file:
            return Kek.from_file(file)
        if env:
            return Kek.from_env(env)
    except KeyError_ as exc:
        raise UserError(str(exc)) from None
    raise UserError(f"give the {what} with --kek-file or --kek-env")


def _vault_config(args: argparse.Namespace) -> TokenizerConfig:
    """The vault `reencrypt` opens: the SQLite file, or PostgreSQL by a DSN from the
    environment."""
    from tokenizer.config import TokenizerConfig

    if not args.vault_dsn_env:
        return TokenizerConfig(vault_path=args.vault)
    dsn = os.environ.get(args.vault_dsn_env, "")
    if not dsn:
        raise UserError(f"environment variable {args.vault_dsn_env} holds no vault DSN")
    return TokenizerConfig(vault_backend="postgresql", vault_dsn=dsn)


def run(args: argparse.Namespace) -> int:
    from tokenizer import keys

    action = args.keys_action
    try:
        if action == "generate-kek":
            if Path(args.out).exists():
                raise UserError(f"{args.out} exists; refusing to overwrite a KEK")
            keys.write_secret_file(args.out, keys.new_kek_text() + "\n")
            print(f"wrote a new KEK to {args.out} (mode 0600); keep it out of the repository")
            return 0
        if action == "list":
            for info in keys.list_keys(args.store):
                mark = "*" if info.active else " "
                keks = ",".join(info.kek_ids)
                role = "  (card index key)" if info.key_id == keys.INDEX_KEY_ID else ""
                print(f"{mark} {info.key_id}  created {info.created}  keks {keks}{role}")
            return 0
        kek = _load_kek(args.kek_file, args.kek_env)
        if action == "create":
            key_id = keys.create_store(args.store, kek)
            print(f"created key store {args.store}; active data key {key_id} under {kek.id}")
        elif action == "rotate":
            key_id = keys.rotate_data_key(args.store, kek)
            print(f"new active data key {key_id}; older keys kept for reading")
        elif action == "rewrap":
            new = _load_kek(args.new_kek_file, args.new_kek_env, "new KEK")
            n = keys.rewrap(args.store, kek, new)
            print(f"wrapped {n} keys under {new.id} as well; run retire-kek once all nodes use it")
        elif action == "retire-kek":
            n = keys.retire_kek(args.store, kek)
            print(f"dropped {n} wrappings; only {kek.id} remains")
        elif action == "reencrypt":
            from tokenizer.stack import open_vault_store
            from tokenizer.vault import CardVault

            store = open_vault_store(_vault_config(args))
            try:
                n = CardVault(store, keys.KeyRing(args.store, kek)).reencrypt(args.from_key)
            finally:
                store.close()
            print(f"re-sealed {n} vault records under the active key")
    except keys.KeyError_ as exc:
        raise UserError(str(exc)) from None
    return 0
