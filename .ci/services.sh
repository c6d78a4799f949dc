# The services some tests need: PostgreSQL (a local cluster, a role, a database), Debian's
# Chromium (driven by Playwright; never a browser download) and Java 17 (for Spark). Installs
# what is missing, starts PostgreSQL, and exports the two variables the test fixtures read
# (tests/services.py):
#   LEADSCORE_TEST_PG_URL  SQLAlchemy URL of a role that may create databases
#   LEADSCORE_CHROMIUM     the Chromium executable
# Source it from the repository root, so the exports reach your shell:  source .ci/services.sh
# Safe to run again: an existing package, cluster, role or database is kept. Needs root (apt-get,
# runuser), as on CI and the dev machines.

LEADSCORE_PG_ROLE=${LEADSCORE_PG_ROLE:-leadscore}
LEADSCORE_PG_DB=${LEADSCORE_PG_DB:-leadscore_test}

# The setup runs in a subshell (the parentheses) so that `set -e` and its variables stay out of a
# developer's interactive shell; only the exports below reach the caller.
_leadscore_services_setup() (
    set -euo pipefail
    # Everything said goes to stderr; stdout carries only the port, read by the caller.
    exec 3>&1 1>&2
    say() { echo "[services] $*"; }

    # The server outlives this script: it must not hold a pipe of ours (the port pipe above, or
    # the one CI reads our output from), or whoever waits for that pipe's end waits for ever.
    # pg_ctl already points its stdin/stdout/stderr at /dev/null and the cluster's log.
    without_inherited_fds() (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec "$@"
    )

    missing=()
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
    command -v chromium >/dev/null || missing+=(chromium)
    if ((${#missing[@]})); then
        say "installing ${missing[*]} (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q "${missing[@]}"
    else
        say "postgresql and chromium are installed"
    fi
    # Spark (the [spark] extra) runs on Java 17: the headless runtime, nothing it recommends
    if java -version >/dev/null 2>&1; then
        say "java is installed"
    else
        say "installing openjdk-17-jre-headless (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends openjdk-17-jre-headless
    fi

    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)
    if [[ -z "$version" ]]; then
        say "no PostgreSQL server under /usr/lib/postgresql" >&2
        exit 1
    fi
    if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {found=1} END {exit !found}'
    then
        say "creating the PostgreSQL $version cluster 'main'"
        pg_createcluster "$version" main
    fi
    if pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" && $4 == "online" {ok=1}
        END {exit !ok}'; then
        say "PostgreSQL $version/main is already running"
    else
        say "starting PostgreSQL $version/main"
        without_inherited_fds pg_ctlcluster "$version" main start
    fi
    port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
    # pg_ctlcluster waits for the server; this bounded check only confirms TCP is answering.
    for _ in $(seq 30); do
        pg_isready -q -h 127.0.0.1 -p "$port" && break
        sleep 1
    done
    pg_isready -h 127.0.0.1 -p "$port"

    # psql as the postgres user, from a directory that user may read.
    as_postgres() { (cd / && runuser -u postgres -- "$@"); }
    say "role '$LEADSCORE_PG_ROLE' (LOGIN CREATEDB) and database '$LEADSCORE_PG_DB'"
    # CREATEDB, not SUPERUSER: the tests create and drop a database each; the code under test
    # gets the rights an application role would have.
    as_postgres psql -p "$port" -q -v ON_ERROR_STOP=1 -v role="$LEADSCORE_PG_ROLE" <<'SQL'
SELECT format('CREATE ROLE %I', :'role')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'role') \gexec
SQL
    as_postgres psql -p "$port" -q -v ON_ERROR_STOP=1 -v role="$LEADSCORE_PG_ROLE" \
        -v db="$LEADSCORE_PG_DB" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    echo "$port" >&3
)

if _leadscore_pg_port=$(_leadscore_services_setup); then
    LEADSCORE_TEST_PG_URL="postgresql+psycopg://${LEADSCORE_PG_ROLE}:${LEADSCORE_PG_ROLE}"
    LEADSCORE_TEST_PG_URL+="@127.0.0.1:${_leadscore_pg_port}/${LEADSCORE_PG_DB}"
    export LEADSCORE_TEST_PG_URL
    LEADSCORE_CHROMIUM=$(command -v chromium)
    export LEADSCORE_CHROMIUM
    echo "[services] export LEADSCORE_TEST_PG_URL=$LEADSCORE_TEST_PG_URL"
    echo "[services] export LEADSCORE_CHROMIUM=$LEADSCORE_CHROMIUM"
else
    echo "[services] setup failed (see above)" >&2
    # `return` when sourced; `exit` when run as a script.
    return 1 2>/dev/null || exit 1
fi
