# Shared by scripts/test, scripts/demo and scripts/bench: install what is missing, and run a throwaway
# PostgreSQL owned by the postgres user (initdb refuses root) on a socket and port of its own.
# Source it; do not run it.

ETL_APT_PACKAGES=(
    pkg-config libpq-dev libzstd-dev zstd
    libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev ffmpeg
    postgresql postgresql-contrib
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_packages() {
    local missing=()
    for pkg in "${ETL_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] || { echo "PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; return 1; }
    echo "$dir"
}

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# pg_start DIR: a new cluster in DIR (created, owned by postgres), listening on DIR/socket and 127.0.0.1:<free port>.
# Exports PGHOST, PGPORT, PGUSER, PGDATABASE, ETL_TEST_PG_TCP_PORT for what runs after. Local socket connections are
# trusted; TCP needs a password (scram), so authentication failures can be exercised for real.
pg_start() {
    local dir=$1 bin port runas=()
    bin=$(pg_bindir) || return 1
    port=$(free_port)
    mkdir -p "$dir/socket"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres:postgres "$dir"
        runas=(runuser -u postgres --)
    fi
    # The cluster directory may sit below a root-only folder: postgres must be able to reach it.
    local d=$dir; while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
    "${runas[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir/socket -c fsync=off -c max_connections=200" \
        start >/dev/null || { cat "$dir/server.log" >&2; return 1; }
    export PGHOST="$dir/socket" PGPORT="$port" PGUSER=postgres ETL_TEST_PG_TCP_PORT="$port"
    export ETL_PG_DIR="$dir"
    unset PGPASSWORD PGSERVICE PGSSLMODE
}

pg_stop() {
    local dir=${1:-${ETL_PG_DIR:-}} bin runas=()
    [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
    bin=$(pg_bindir) || return 0
    [ "$(id -u)" -eq 0 ] && runas=(runuser -u postgres --)
    "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}

# An S3-compatible server for tests, the demo and the bench: moto (mosaicml-streaming's own tests use it too) in
# server mode, from PyPI into .run/s3-venv. It honours `If-None-Match: *` on PutObject, which the publish protocol
# relies on (scripts/test checks that before the suite runs).
ETL_S3_VENV=.run/s3-venv

s3_ensure_server() {
    [ -x "$ETL_S3_VENV/bin/moto_server" ] && return 0
    log "installing moto (S3 server) into $ETL_S3_VENV"
    python3 -m venv "$ETL_S3_VENV"
    "$ETL_S3_VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5.1,<6'
}

# s3_start DIR: moto_server on 127.0.0.1:<free port> (log and pid in DIR); exports ETL_S3_ENDPOINT.
s3_start() {
    local dir=$1 port
    s3_ensure_server || return 1
    mkdir -p "$dir"
    port=$(free_port)
    "$ETL_S3_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
    echo $! >"$dir/moto.pid"
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/" && { export ETL_S3_ENDPOINT="http://127.0.0.1:$port"; return 0; }
        sleep 0.1
    done
    cat "$dir/moto.log" >&2
    return 1
}

s3_stop() {
    local dir=$1
    [ -f "$dir/moto.pid" ] || return 0
    kill "$(cat "$dir/moto.pid")" 2>/dev/null || true
    rm -f "$dir/moto.pid"
}

# s3_check_conditional_put: fails unless the server refuses a second `If-None-Match: *` PUT of a key with 412.
s3_check_conditional_put() {
    local endpoint=$1 bucket=etl-conditional-check sign=(--aws-sigv4 "aws:amz:us-east-1:s3" -u "check:check")
    curl -s -o /dev/null -X PUT "${sign[@]}" "$endpoint/$bucket"
    curl -s -o /dev/null -X PUT "${sign[@]}" -H 'If-None-Match: *' -H 'Content-Type: application/octet-stream' --data-binary a "$endpoint/$bucket/k"
    local second
    second=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "${sign[@]}" -H 'If-None-Match: *' -H 'Content-Type: application/octet-stream' --data-binary b "$endpoint/$bucket/k")
    [ "$second" = 412 ] || { echo "the S3 server at $endpoint does not honour If-None-Match: * (second PUT got $second, not 412)" >&2; return 1; }
}
