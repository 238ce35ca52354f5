#!/usr/bin/env bash
# A throwaway MariaDB of its own for a test process (tests/it/support.rs
# starts it for the TLS tests):
#
#   mariadb-instance.sh DIR PORT [mariadbd options, e.g. --ssl-cert=...]
#
# Initialises a fresh datadir in DIR (real grant tables: root without a
# password on the socket and loopback, users and REQUIRE SSL work as on a
# real server), starts mariadbd on 127.0.0.1:PORT with the extra options,
# runs DIR/init.sql as root if it exists, prints "ready" and then watches:
# when the process that started it is gone (a test binary that finished,
# failed or was killed) or on SIGTERM, it stops the server and removes DIR.
# Runs as the current user; mariadbd is told to, even when that is root.
set -euo pipefail

dir=$1 port=$2
shift 2
parent=$PPID
user=$(id -un)
mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
admin=$(command -v mariadb-admin || command -v mysqladmin)
client=$(command -v mariadb || command -v mysql)

server=
stop() {
  if [[ -n $server ]]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 0' TERM INT HUP

mariadb-install-db --no-defaults --auth-root-authentication-method=normal --skip-test-db \
  --user="$user" --datadir="$dir/data" >"$dir/install.log" 2>&1 ||
  { cat "$dir/install.log" >&2; exit 1; }

"$mariadbd" --no-defaults --user="$user" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
  --pid-file="$dir/mysqld.pid" --bind-address=127.0.0.1 --port="$port" \
  --log-error="$dir/error.log" --skip-log-bin --innodb-buffer-pool-size=16M \
  --max-connections=200 "$@" >/dev/null &
server=$!

for _ in $(seq 1 200); do
  if "$admin" --no-defaults --socket="$dir/mysqld.sock" -uroot ping >/dev/null 2>&1; then break; fi
  kill -0 "$server" 2>/dev/null || { cat "$dir/error.log" >&2; exit 1; }
  sleep 0.1
done
"$admin" --no-defaults --socket="$dir/mysqld.sock" -uroot ping >/dev/null 2>&1 ||
  { cat "$dir/error.log" >&2; echo "mariadbd did not come up on 127.0.0.1:$port" >&2; exit 1; }
if [[ -f $dir/init.sql ]]; then
  "$client" --no-defaults --socket="$dir/mysqld.sock" -uroot <"$dir/init.sql"
fi
echo ready

while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.5; done
