#!/usr/bin/env bash
# Real test services on 127.0.0.1 for the REST-catalog and S3 tests
# (tests/services/README.md says what each one is and how it is configured).
#
#   scripts/services.sh start   [SERVICE...]   start (all by default), wait until healthy
#   scripts/services.sh stop    [SERVICE...]   SIGTERM the process group, SIGKILL after 5 s; idempotent
#   scripts/services.sh kill    [SERVICE...]   SIGKILL at once (a crash)
#   scripts/services.sh restart [SERVICE...]   stop, then start on the same port
#   scripts/services.sh pause   [SERVICE...]   SIGSTOP: the port stays open, requests hang
#   scripts/services.sh resume  [SERVICE...]   SIGCONT
#   scripts/services.sh status  [SERVICE...]   one line each; exit 1 if any is not running
#   scripts/services.sh env                    print the path of services.env
#
# SERVICE is one of: s3 (moto_server), idp (oauth2-mock-server), rest (rustberg,
# local warehouse), rest-s3 (rustberg, warehouse on s3). `start` with none running
# begins a fresh set: new free ports, new API key, empty catalogs. Starting or
# restarting one service later reuses its port and its data, so a fault test can
# take the catalog or S3 away mid-run and bring it back at the same URL. moto
# keeps its objects in memory only: after `stop s3`/`start s3` the bucket is
# re-created empty (use pause/resume to keep the data).
#
# Everything lives in $FLOE_SERVICES_DIR (default $FLOE_CACHE/run/services):
# services.env (the exports the tests read), NAME.log, NAME.pid, the catalogs'
# configs and data.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

DIR="${FLOE_SERVICES_DIR:-$FLOE_CACHE/run/services}"
ENV_FILE="$DIR/services.env"
STATE="$DIR/state.env"
TIMEOUT="${FLOE_SERVICES_TIMEOUT:-90}"
RUSTBERG_BIN="${FLOE_RUSTBERG_BIN:-$FLOE_CACHE/services/bin/floe-rustberg}"
IDP_MODULES="${FLOE_IDP_NODE_MODULES:-$FLOE_CACHE/services/idp/node_modules}"
MOTO_BIN="$FLOE_VENV/bin/moto_server"
ALL=(s3 idp rest rest-s3)

BUCKET=floe-test
S3_ACCESS_KEY=testing
S3_SECRET_KEY=testing
S3_REGION=us-east-1
OAUTH_AUDIENCE=floe-catalog

say() { printf 'services: %s\n' "$*"; }
die() { printf 'services: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

# --- processes -----------------------------------------------------------------
# A service is recorded as "PID STARTTIME" (field 22 of /proc/PID/stat), so a pid
# reused by an unrelated process is never taken for the service.
# Fields of /proc/PID/stat after "(comm) ": 1 state, 3 process group, 20 start time.
stat_field() { sed -n 's/^.*) //p' "/proc/$1/stat" 2>/dev/null | awk -v n="$2" '{print $n}'; }
starttime() { stat_field "$1" 20; }

pid_of() {
    local f="$DIR/$1.pid" pid st
    [[ -f "$f" ]] || return 1
    read -r pid st <"$f" || return 1
    [[ -n "$pid" && -n "$st" && "$(starttime "$pid")" == "$st" && "$(stat_field "$pid" 1)" != Z ]] || return 1
    printf '%s\n' "$pid"
}

is_paused() { [[ "$(stat_field "$1" 1)" == T ]]; }

# Signals the whole process group (each service is started by setsid, so its
# pid is its group id).
signal_group() { kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true; }

# Any live (not zombie) process left in the group.
group_alive() {
    sed -n 's/^.*) //p' /proc/[0-9]*/stat 2>/dev/null | awk -v g="$1" '$3 == g && $1 != "Z" { f = 1 } END { exit !f }'
}

stop_one() {
    local name="$1" how="${2:-TERM}" pid i
    if ! pid="$(pid_of "$name")"; then
        rm -f "$DIR/$name.pid"
        say "$name: not running"
        return 0
    fi
    signal_group CONT "$pid"
    signal_group "$how" "$pid"
    for ((i = 0; i < 50; i++)); do
        group_alive "$pid" || break
        sleep 0.1
    done
    if group_alive "$pid"; then
        signal_group KILL "$pid"
        for ((i = 0; i < 20; i++)); do
            group_alive "$pid" || break
            sleep 0.1
        done
    fi
    rm -f "$DIR/$name.pid"
    say "$name: stopped (pid $pid, SIG$how)"
}

# --- state ---------------------------------------------------------------------
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

new_state() {
    local ports api_key
    read -r -a ports <<<"$(free_ports 4)"
    # rustberg's key format: "rb_" and base64url characters.
    api_key="rb_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    # Everything but the lock this process holds.
    find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
    chmod 700 "$DIR"
    cat >"$STATE" <<EOF
PORT_S3=${ports[0]}
PORT_IDP=${ports[1]}
PORT_REST=${ports[2]}
PORT_REST_S3=${ports[3]}
API_KEY=$api_key
EOF
}

load_state() {
    # shellcheck disable=SC1090
    source "$STATE"
    S3_ENDPOINT="http://127.0.0.1:$PORT_S3"
    IDP_URL="http://127.0.0.1:$PORT_IDP"
    REST_URI="http://127.0.0.1:$PORT_REST"
    REST_S3_URI="http://127.0.0.1:$PORT_REST_S3"
    REST_WAREHOUSE="file://$DIR/rest/warehouse"
    REST_S3_WAREHOUSE="s3://$BUCKET/warehouse"
}

write_env_file() {
    local tmp="$ENV_FILE.$$"
    cat >"$tmp" <<EOF
# Written by scripts/services.sh; read with: set -a; source $ENV_FILE; set +a
export FLOE_TEST_SERVICES=1
export FLOE_SERVICES_DIR='$DIR'
# Fault tests: "\$FLOE_SERVICES_SH" stop|start|kill|pause|resume SERVICE
export FLOE_SERVICES_SH='$FLOE_REPO/scripts/services.sh'
# Iceberg REST catalog (rustberg 0.3.0) with a local warehouse. It accepts the
# static token (Authorization: Bearer) and the IdP's JWTs. No prefix.
export FLOE_TEST_REST_URI='$REST_URI'
export FLOE_TEST_REST_TOKEN='$API_KEY'
export FLOE_TEST_REST_WAREHOUSE='$REST_WAREHOUSE'
# A second rustberg whose warehouse is on S3 (moto below); same token and IdP.
export FLOE_TEST_REST_S3_URI='$REST_S3_URI'
export FLOE_TEST_REST_S3_WAREHOUSE='$REST_S3_WAREHOUSE'
# OAuth2 client credentials (oauth2-mock-server). Tokens: tenant "default",
# aud "$OAUTH_AUDIENCE", roles per client (writer: all but delete).
export FLOE_TEST_OAUTH_ISSUER='$IDP_URL'
export FLOE_TEST_OAUTH_TOKEN_URL='$IDP_URL/token'
export FLOE_TEST_OAUTH_CLIENT_ID='floe-writer'
export FLOE_TEST_OAUTH_CLIENT_SECRET='writer-secret'
export FLOE_TEST_OAUTH_SCOPE='catalog'
export FLOE_TEST_OAUTH_AUDIENCE='$OAUTH_AUDIENCE'
export FLOE_TEST_OAUTH_ADMIN_CLIENT_ID='floe-admin'
export FLOE_TEST_OAUTH_ADMIN_CLIENT_SECRET='admin-secret'
export FLOE_TEST_OAUTH_READER_CLIENT_ID='floe-reader'
export FLOE_TEST_OAUTH_READER_CLIENT_SECRET='reader-secret'
# S3 (moto_server). Clients need path-style access.
export FLOE_TEST_S3_ENDPOINT='$S3_ENDPOINT'
export FLOE_TEST_S3_BUCKET='$BUCKET'
export FLOE_TEST_S3_ACCESS_KEY='$S3_ACCESS_KEY'
export FLOE_TEST_S3_SECRET_KEY='$S3_SECRET_KEY'
export FLOE_TEST_S3_REGION='$S3_REGION'
EOF
    mv -f "$tmp" "$ENV_FILE"
}

# rustberg's own TOML (read by tests/services/rustberg, the fixture binary).
write_rustberg_config() {
    local name="$1" port="$2" warehouse="$3" props="$4"
    mkdir -p "$DIR/$name/catalog"
    [[ "$warehouse" == file://* ]] && mkdir -p "${warehouse#file://}"
    cat >"$DIR/$name.toml" <<EOF
[server]
host = "127.0.0.1"
port = $port

[server.auth]
jwt_enabled = true

[server.auth.jwt]
issuer = "$IDP_URL"
audiences = ["$OAUTH_AUDIENCE"]
default_tenant_id = "default"
tenant_claim = "tenant_id"
roles_claim = "roles"
oauth2_server_uri = "$IDP_URL/token"

[[server.auth.api_keys]]
name = "floe-test"
tenant = "default"
roles = ["admin"]
key_env = "FLOE_RUSTBERG_API_KEY"

[storage]
catalog_url = "file://$DIR/$name/catalog"
warehouse_location = "$warehouse"
$props
EOF
}

# --- start ---------------------------------------------------------------------
http_ok() { curl -fsS -o /dev/null --max-time 2 "$@" 2>/dev/null; }

healthy() {
    case "$1" in
        s3) http_ok "$S3_ENDPOINT/" ;;
        idp) http_ok "$IDP_URL/.well-known/openid-configuration" ;;
        rest) http_ok -H "Authorization: Bearer $API_KEY" "$REST_URI/v1/config" ;;
        rest-s3) http_ok -H "Authorization: Bearer $API_KEY" "$REST_S3_URI/v1/config" ;;
    esac
}

port_of() {
    case "$1" in
        s3) echo "$PORT_S3" ;; idp) echo "$PORT_IDP" ;;
        rest) echo "$PORT_REST" ;; rest-s3) echo "$PORT_REST_S3" ;;
    esac
}

fail_start() {
    local name="$1" why="$2" log="$DIR/$1.log"
    {
        printf 'services: %s %s\n' "$name" "$why"
        printf 'services: last lines of %s:\n' "$log"
        tail -n 40 "$log" 2>/dev/null | sed 's/^/  | /'
    } >&2
    stop_one "$name" KILL >/dev/null
    exit 1
}

start_one() {
    local name="$1" pid cmd=() i
    if pid="$(pid_of "$name")"; then
        is_paused "$pid" && signal_group CONT "$pid"
        say "$name: already running (pid $pid, port $(port_of "$name"))"
        return 0
    fi
    case "$name" in
        s3)
            [[ -x "$MOTO_BIN" ]] || die "no $MOTO_BIN: run scripts/setup.sh"
            cmd=(env "$MOTO_BIN" -H 127.0.0.1 -p "$PORT_S3")
            ;;
        idp)
            [[ -d "$IDP_MODULES/oauth2-mock-server" ]] || die "no oauth2-mock-server in $IDP_MODULES: run scripts/setup.sh"
            cmd=(env FLOE_IDP_PORT="$PORT_IDP" FLOE_IDP_NODE_MODULES="$IDP_MODULES"
                FLOE_IDP_KEY_FILE="$DIR/idp-key.json" FLOE_IDP_AUDIENCE="$OAUTH_AUDIENCE"
                node --no-warnings "$FLOE_REPO/tests/services/idp/idp.mjs")
            ;;
        rest | rest-s3)
            [[ -x "$RUSTBERG_BIN" ]] || die "no $RUSTBERG_BIN: run scripts/setup.sh"
            if [[ "$name" == rest ]]; then
                write_rustberg_config rest "$PORT_REST" "$REST_WAREHOUSE" ""
            else
                write_rustberg_config rest-s3 "$PORT_REST_S3" "$REST_S3_WAREHOUSE" "
[storage.properties]
\"s3.endpoint\" = \"$S3_ENDPOINT\"
\"s3.access-key-id\" = \"$S3_ACCESS_KEY\"
\"s3.secret-access-key\" = \"$S3_SECRET_KEY\"
\"s3.region\" = \"$S3_REGION\"
\"s3.path-style-access\" = \"true\"
\"s3.disable-ec2-metadata\" = \"true\"
\"s3.disable-config-load\" = \"true\""
            fi
            cmd=(env FLOE_RUSTBERG_API_KEY="$API_KEY" RUST_LOG="${FLOE_RUSTBERG_LOG:-info}"
                "$RUSTBERG_BIN" "$DIR/$name.toml")
            ;;
        *) die "unknown service '$name' (services: ${ALL[*]})" ;;
    esac

    printf '\n=== %s start %s: %s\n' "$(date -u +%FT%TZ)" "$name" "${cmd[*]}" >>"$DIR/$name.log"
    # fd 9 (the lock) must not be inherited, or the service would hold it.
    setsid "${cmd[@]}" >>"$DIR/$name.log" 2>&1 </dev/null 9>&- &
    pid=$!
    printf '%s %s\n' "$pid" "$(starttime "$pid")" >"$DIR/$name.pid"

    for ((i = 0; i < TIMEOUT * 5; i++)); do
        if ! pid_of "$name" >/dev/null; then
            fail_start "$name" "exited during start-up"
        fi
        if healthy "$name"; then
            break
        fi
        sleep 0.2
    done
    healthy "$name" || fail_start "$name" "did not become healthy within ${TIMEOUT}s (port $(port_of "$name"))"

    if [[ "$name" == s3 ]]; then
        # moto keeps everything in memory, so every start creates the bucket.
        curl -fsS -o /dev/null --max-time 5 -X PUT "$S3_ENDPOINT/$BUCKET" \
            || fail_start s3 "is up but creating bucket $BUCKET failed"
    fi
    say "$name: running (pid $pid, http://127.0.0.1:$(port_of "$name"), log $DIR/$name.log)"
}

any_running() {
    local n
    for n in "${ALL[@]}"; do pid_of "$n" >/dev/null && return 0; done
    return 1
}

# --- main ----------------------------------------------------------------------
cmd="${1:-}"
[[ -n "$cmd" ]] || usage
shift
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${ALL[@]}")
for n in "${names[@]}"; do
    [[ " ${ALL[*]} " == *" $n "* ]] || die "unknown service '$n' (services: ${ALL[*]})"
done

mkdir -p "$DIR"
# One services.sh at a time per directory (parallel fault tests).
exec 9>>"$DIR/.lock"
flock 9

case "$cmd" in
    start)
        if [[ ! -f "$STATE" ]] || ! any_running; then
            new_state
            say "fresh set in $DIR"
        fi
        load_state
        write_env_file
        for n in "${ALL[@]}"; do
            if [[ " ${names[*]} " == *" $n "* ]]; then start_one "$n"; fi
        done
        say "env: $ENV_FILE"
        ;;
    restart)
        [[ -f "$STATE" ]] || die "nothing to restart: run 'start' first"
        load_state
        for n in "${names[@]}"; do stop_one "$n"; done
        for n in "${ALL[@]}"; do
            if [[ " ${names[*]} " == *" $n "* ]]; then start_one "$n"; fi
        done
        ;;
    stop | kill)
        how=TERM
        [[ "$cmd" == kill ]] && how=KILL
        for n in "${names[@]}"; do stop_one "$n" "$how"; done
        ;;
    pause | resume)
        sig=STOP
        [[ "$cmd" == resume ]] && sig=CONT
        for n in "${names[@]}"; do
            if pid="$(pid_of "$n")"; then
                signal_group "$sig" "$pid"
                say "$n: ${cmd}d (pid $pid)"
            else
                say "$n: not running"
            fi
        done
        ;;
    status)
        rc=0
        [[ -f "$STATE" ]] && load_state
        for n in "${names[@]}"; do
            if pid="$(pid_of "$n")"; then
                if is_paused "$pid"; then
                    state=paused
                elif healthy "$n"; then
                    state=healthy
                else
                    state="running, not answering"
                    rc=1
                fi
                say "$n: $state (pid $pid, http://127.0.0.1:$(port_of "$n"))"
            else
                say "$n: stopped"
                rc=1
            fi
        done
        exit "$rc"
        ;;
    env)
        printf '%s\n' "$ENV_FILE"
        ;;
    *) usage ;;
esac
