# Shared by scripts/test.sh, scripts/demo.sh and scripts/bench.sh: make sure
# the local services exist and run. Only loopback; nothing here reaches the
# internet except the package registries for installs.

VENV="${HPA_TIER_VENV:-$PWD/.venv}"

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  echo "installing $* with apt-get" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

ensure_rust_components() {
  for c in rustfmt clippy; do
    if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
      rustup component add "$c"
    fi
  done
}

mariadb_up() { mysqladmin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1; }

ensure_mariadb() {
  if mariadb_up; then return; fi
  if ! command -v mariadbd >/dev/null && [[ ! -x /usr/sbin/mariadbd ]]; then
    apt_install mariadb-server mariadb-client
  fi
  echo "starting MariaDB" >&2
  as_root mkdir -p /run/mysqld
  as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
    --bind-address=127.0.0.1 --port=3306 >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do mariadb_up && break; sleep 0.5; done
  mariadb_up || { echo "MariaDB did not come up on 127.0.0.1:3306" >&2; return 1; }
  # A fresh Debian install lets root in only over the unix socket.
  mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" 2>/dev/null || true
}

# The TLS tests start MariaDB instances of their own
# (scripts/lib/mariadb-instance.sh): they need the server's programs even
# where a MariaDB already answers on 3306.
ensure_mariadb_programs() {
  local d
  for d in mariadb-install-db mysqladmin mysql; do
    command -v "$d" >/dev/null || { apt_install mariadb-server mariadb-client; return; }
  done
  command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || apt_install mariadb-server
}

ensure_kubectl() {
  command -v kubectl >/dev/null || apt_install kubernetes-client
}

# promtool validates and unit-tests deploy/monitoring's alert rules. Only the
# tool is wanted, not a Prometheus server, so it is unpacked from Debian's
# prometheus package into .tools/ instead of installing the package (whose
# scripts would set up and start the server).
ensure_promtool() {
  if command -v promtool >/dev/null; then
    export HPA_TIER_TEST_PROMTOOL
    HPA_TIER_TEST_PROMTOOL=$(command -v promtool)
    return
  fi
  local dir="$PWD/.tools"
  if [[ ! -x "$dir/promtool" ]]; then
    echo "unpacking promtool from Debian's prometheus package into $dir" >&2
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && { apt-get download -q prometheus >/dev/null 2>&1 ||
      { as_root apt-get update -q >/dev/null && apt-get download -q prometheus >/dev/null; }; })
    mkdir -p "$dir"
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -xO ./usr/bin/promtool >"$dir/promtool.part"
    chmod 0755 "$dir/promtool.part"
    mv "$dir/promtool.part" "$dir/promtool"
    rm -rf "$tmp"
  fi
  export HPA_TIER_TEST_PROMTOOL="$dir/promtool"
}

ensure_moto_venv() {
  if [[ -x "$VENV/bin/moto_server" ]]; then return; fi
  echo "creating $VENV with moto[server]" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5,<6'
}

http_ok() {
  python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" >/dev/null 2>&1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts moto_server on a free loopback port; stops it when the shell exits.
start_moto() {
  local port log
  port=$(free_port)
  log="${TMPDIR:-/tmp}/hpa-tier-moto-$port.log"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    if http_ok "http://127.0.0.1:$port/moto-api/"; then break; fi
    sleep 0.2
  done
  http_ok "http://127.0.0.1:$port/moto-api/" || { cat "$log" >&2; echo "moto_server did not start" >&2; return 1; }
  export HPA_TIER_TEST_MOTO_URL="http://127.0.0.1:$port"
}
