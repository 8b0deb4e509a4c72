#!/usr/bin/env bash
# Install PostgreSQL 15 from Debian's packages, without leaving the packaged cluster
# running: the project starts its own (infra/postgres/start.sh). Needs root.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ -x $PG_BIN/pg_ctl ]]; then
  say "PostgreSQL binaries already present in $PG_BIN"
  exit 0
fi
((EUID == 0)) || die "run as root: sudo $0"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends postgresql-15
# The package creates and may start a 'main' cluster on port 5432. We never use it:
# stop it and mark it manual so it does not come back at the next boot.
if [[ -f /etc/postgresql/15/main/start.conf ]]; then
  pg_ctlcluster 15 main stop 2>/dev/null || true
  echo manual >/etc/postgresql/15/main/start.conf
fi
if [[ -d /run/systemd/system ]]; then
  systemctl disable --now postgresql 2>/dev/null || true
fi
[[ -x $PG_BIN/pg_ctl ]] || die "postgresql-15 installed, but $PG_BIN/pg_ctl is missing"
say "PostgreSQL 15 installed; the packaged cluster is stopped"
