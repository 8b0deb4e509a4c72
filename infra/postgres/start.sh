#!/usr/bin/env bash
# Start the project's own PostgreSQL cluster (never the system one) and make sure the
# database 'adapters' and the role 'adapters' exist.
#   PG_PORT (35432)   TCP port on 127.0.0.1; the unix socket sits in its own folder
#   PG_BIN            PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
# A throwaway dev/test cluster: every local and loopback connection is trusted, no
# passwords. Idempotent: a running cluster is left alone.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ ! -x $PG_BIN/pg_ctl ]]; then
  ((EUID == 0)) || die "PostgreSQL 15 is not installed: run sudo infra/postgres/install.sh"
  say "PostgreSQL 15 is not installed: running infra/postgres/install.sh"
  "$REPO/infra/postgres/install.sh"
fi
((EUID != 0)) || id postgres >/dev/null 2>&1 || die "no 'postgres' user to run PostgreSQL as"

# Prefer var/postgres in the repo. Use /tmp instead when the postgres user cannot reach
# the repo (cloned under /root, say) or when the socket path would pass the 107-byte
# limit of a unix socket name.
choose_base() {
  local base="$VAR_DIR/postgres" sock
  sock="$base/socket/.s.PGSQL.$PG_PORT"
  mkdir -p "$VAR_DIR"
  if ((${#sock} <= 100)) && as_pg test -x "$VAR_DIR" -a -r "$VAR_DIR"; then
    printf '%s\n' "$base"
  else
    printf '/tmp/adapter-promotion-pg-%s\n' "$STACK_HASH"
  fi
}

base=$(recorded_base) || base=$(choose_base)
data="$base/data"
mkdir -p "$data" "$base/socket"
printf '%s\n' "$base" >"$PG_RECORD"
if ((EUID == 0)); then chown -R postgres:postgres "$base"; fi
chmod 700 "$data"

if [[ ! -f $data/PG_VERSION ]]; then
  say "initdb $data"
  as_pg "$PG_BIN/initdb" -D "$data" --username=postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 ||
    { cat "$base/initdb.log" >&2; die "initdb failed"; }
  # Our settings live in one file, rewritten at every start; this line pulls it in last.
  echo "include_if_exists = 'project.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
fi

# After a crash (a fault test's kill -9) clear what would block a restart: backends
# still exiting, and a postmaster.pid naming a dead postmaster that pid 1 has not
# reaped yet (PostgreSQL takes any pid that still exists there for a live server).
recover_from_crash() {
  local old left
  old=$(head -n 1 "$data/postmaster.pid" 2>/dev/null) || return 0
  if [[ -z $old ]] || is_alive "$old"; then return 0; fi
  mapfile -t left < <(all_pg_pids "$base")
  terminate 10 "${left[@]}"
  for _ in {1..50}; do
    [[ -e /proc/$old ]] || return 0
    sleep 0.1
  done
  say "postmaster $old died but is still unreaped: removing its postmaster.pid"
  rm -f "$data/postmaster.pid"
}

if pid=$(postmaster_pid "$base"); then
  say "postgres already runs (pid $pid, $data)"
else
  recover_from_crash
  ! port_open "$PG_PORT" || die "port $PG_PORT is taken by another process; set PG_PORT"
  as_pg tee "$data/project.conf" >/dev/null <<CONF
# Written by infra/postgres/start.sh on every start; edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$base/socket'
cluster_name = '$PG_CLUSTER_NAME'
# Each service and each test holds a connection pool.
max_connections = 200
# fsync stays on (the default): fault tests kill this server and expect committed rows.
CONF
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$base/postgres.log" -w -t 60 start >/dev/null ||
    { tail -n 30 "$base/postgres.log" >&2; die "postgres did not start"; }
  say "postgres started (pid $(postmaster_pid "$base"), $data, log $base/postgres.log)"
fi

psql_admin() {
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 -tA "$@"
}
[[ $(psql_admin -c "select 1 from pg_roles where rolname = '$PG_DB'") == 1 ]] ||
  psql_admin -c "create role $PG_DB login"
[[ $(psql_admin -c "select 1 from pg_database where datname = '$PG_DB'") == 1 ]] ||
  psql_admin -c "create database $PG_DB owner $PG_DB"
say "postgres up: postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB"
