"""Give every project principal its Kafka user and its ACLs; idempotent (infra/up.sh runs it).

Each principal's password is a 0600 file in the credentials folder (made here when absent);
the admin's was made by infra/kafka when it formatted the cluster. Users are SCRAM-SHA-512,
set through the admin API; ACLs come from `shared.kafka.acl.grants` for the topic names and
consumer-group prefix given (defaults: the production names of the topic catalogue).

  python infra/kafka_access.py --bootstrap 127.0.0.1:39092 --credentials var/kafka/credentials
  python infra/kafka_access.py --passwords-only --credentials /data/credentials  # compose
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.kafka.acl import (
    ADMIN,
    BROKER_PRINCIPALS,
    PRINCIPALS,
    TopicNames,
    apply_grants,
    grants,
    upsert_users,
)
from shared.kafka.auth import KafkaEndpoint, read_password
from shared.kafka.topics import COMMANDS, LIFECYCLE, TRAINED, admin_client


def password_file(credentials: Path, principal: str) -> Path:
    """`<credentials>/<principal>.password`, made (mode 0600, 128 random bits) when absent."""
    path = credentials / f"{principal}.password"
    if not path.exists():
        credentials.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(16))
    return path


def admin_endpoint(bootstrap: str, credentials: Path) -> KafkaEndpoint:
    return KafkaEndpoint(bootstrap, ADMIN, read_password(credentials / f"{ADMIN}.password"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="required unless --passwords-only")
    parser.add_argument(
        "--passwords-only",
        action="store_true",
        help="only make the missing password files, the brokers' and admin's too (compose)",
    )
    parser.add_argument("--credentials", type=Path, required=True, help="the passwords' folder")
    parser.add_argument("--trained", default=TRAINED)
    parser.add_argument("--lifecycle", default=LIFECYCLE)
    parser.add_argument("--commands", default=COMMANDS)
    parser.add_argument("--group-prefix", default="adapters")
    args = parser.parse_args()
    if args.passwords_only:
        for principal in (*BROKER_PRINCIPALS, ADMIN, *PRINCIPALS):
            password_file(args.credentials, principal)
        print(f"[infra] kafka passwords in {args.credentials}")
        return 0
    if not args.bootstrap:
        parser.error("--bootstrap is required")
    admin = admin_client(admin_endpoint(args.bootstrap, args.credentials))
    passwords = {p: read_password(password_file(args.credentials, p)) for p in PRINCIPALS}
    upsert_users(admin, passwords)
    granted = grants(TopicNames(args.trained, args.lifecycle, args.commands), args.group_prefix)
    apply_grants(admin, granted)
    print(f"[infra] kafka principals: {', '.join(PRINCIPALS)}; {len(granted)} ACLs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
