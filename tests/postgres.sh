# A private PostgreSQL cluster for the test command (sourced by
# tests/run.sh): Debian's postgresql, installed when missing and the
# command runs as root (as for Chromium); a cluster in a temporary folder,
# listening on a free loopback port only, removed by pg_stop. pg_start
# exports IDFLOW_TEST_POSTGRES, the URL of its `postgres` database as the
# superuser `idflow`; tests create their own databases in it.

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

ensure_postgres() {
  [ -n "$(pg_bin)" ] && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's postgresql for the PostgreSQL store's tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || return 1
  fi
  [ -n "$(pg_bin)" ]
}

pg_start() {
  if ! ensure_postgres; then
    echo "PostgreSQL is missing and could not be installed: install Debian's postgresql (or run the tests as root)"
    return 1
  fi
  local bin port
  bin="$(pg_bin)"
  PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/idflow-pg.XXXXXX")" || return 1
  PG_AS=()
  if [ "$(id -u)" = "0" ]; then
    # initdb refuses to run as root: the cluster belongs to the package's
    # postgres user.
    chown postgres: "$PG_DIR" || return 1
    PG_AS=(runuser -u postgres --)
  fi
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" || return 1
  # Trust is for this throwaway cluster only: it listens on loopback and
  # its socket lives in the private folder.
  "${PG_AS[@]}" "$bin/initdb" -D "$PG_DIR/data" -U idflow --auth=trust -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log"; return 1; }
  "${PG_AS[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300" start >/dev/null \
    || { cat "$PG_DIR/server.log"; return 1; }
  export IDFLOW_TEST_POSTGRES="postgres://idflow@127.0.0.1:$port/postgres?sslmode=disable"
  echo "$("$bin/postgres" --version) on 127.0.0.1:$port ($PG_DIR)"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  "${PG_AS[@]}" "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$PG_DIR"
  unset PG_DIR IDFLOW_TEST_POSTGRES
}
