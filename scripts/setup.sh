# Sourced by the other scripts: installs what a fresh machine lacks, or says
# exactly which command would.

need_rust_target() {
    if ! rustup target list --installed | grep -qx "$1"; then
        echo "==> rustup target add $1"
        rustup target add "$1"
    fi
}

# need_command <command> <debian package>
need_command() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> apt-get install $2 (for $1)"
        apt_update
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    else
        echo "missing $1: run  sudo apt-get install $2" >&2
        return 1
    fi
}

# need_musl_headers <arch>: musl's C headers for a Debian architecture
# (amd64, arm64, armhf), in /usr/include/<triple>-linux-musl, from Debian's
# multiarch musl-dev; the architecture is added to dpkg first if need be.
need_musl_headers() {
    local arch=$1 triple
    case "$arch" in
        amd64) triple=x86_64-linux-musl ;;
        arm64) triple=aarch64-linux-musl ;;
        armhf) triple=arm-linux-musleabihf ;;
        *) echo "no musl headers for $arch" >&2; return 1 ;;
    esac
    [ -f "/usr/include/$triple/stdio.h" ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        if [ "$arch" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
            echo "==> dpkg --add-architecture $arch"
            dpkg --add-architecture "$arch"
            unset FLINT_APT_UPDATED
        fi
        echo "==> apt-get install musl-dev:$arch (C headers for $triple)"
        apt_update
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "musl-dev:$arch" >/dev/null
    else
        echo "missing musl headers for $arch: run  sudo dpkg --add-architecture $arch && sudo apt-get update && sudo apt-get install musl-dev:$arch" >&2
        return 1
    fi
}

# need_python_venv <dir> <package>...: a Python venv at <dir> holding the
# packages (from PyPI), created on first use.
need_python_venv() {
    local dir=$1
    shift
    if ! "$dir/bin/python" -c "import ${1//-/_}" >/dev/null 2>&1; then
        need_command python3 python3
        python3 -m venv "$dir" || { need_command python3 python3-venv && python3 -m venv "$dir"; }
        echo "==> pip install $* (into $dir)"
        "$dir/bin/pip" install -q "$@"
    fi
}

# Refreshes the package lists once per run (root only).
apt_update() {
    if [ -z "${FLINT_APT_UPDATED:-}" ] && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        export FLINT_APT_UPDATED=1
    fi
}

# Prints a TCP port free on 127.0.0.1 now.
free_port() {
    need_command python3 python3 >&2
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# callgrind_per_request PATH RUNTIME_CONFIG N [APP]: instructions flint ($FLINT_BIN,
# default target/release/flint) spends on one GET PATH of APP (default
# apps/showcase) under valgrind's callgrind, as
# (N + 1 requests - 1 request) / N: start-up and shutdown cancel out.
callgrind_per_request() {
    local path=$1 config=$2 n=$3 app=${4:-apps/showcase} dir one many
    need_command valgrind valgrind
    dir=$(mktemp -d)
    callgrind_run() {
        local requests=$1 port pid
        port=$(free_port)
        valgrind --tool=callgrind --callgrind-out-file="$dir/cg" "${FLINT_BIN:-target/release/flint}" up "$app" \
            --runtime-config-file "$config" --listen "127.0.0.1:$port" --state-dir "$dir/state" >/dev/null 2>"$dir/log" &
        pid=$!
        for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$port/.well-known/spin/health" && break; sleep 0.2; done
        for _ in $(seq 1 "$requests"); do curl -sf -o /dev/null "http://127.0.0.1:$port$path"; done
        kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
        awk '/^(summary|totals):/ {print $2; exit}' "$dir/cg"
    }
    one=$(callgrind_run 1)
    many=$(callgrind_run $((n + 1)))
    rm -rf "$dir"
    echo $(((many - one) / n))
}

# first_200_runs DIR N PATH CMD...: starts `CMD --listen 127.0.0.1:<free port>`
# N times, each until GET PATH answers 200, then stops it. Run i leaves its
# stderr in DIR/i.log and "exec_ns first_200_ns" (wall clock) in DIR/i.times.
# One Python process starts each run and polls every 0.5 ms over a socket:
# forking curl (and sleep) per attempt took 10 ms a try on a loaded VM, more
# than a start-up. Used by scripts/measure and scripts/bench-peer, so both
# runtimes are timed the same way.
first_200_runs() {
    local dir=$1 n=$2 path=$3
    shift 3
    need_command python3 python3
    mkdir -p "$dir"
    python3 - "$dir" "$n" "$path" "$@" <<'PY'
import socket, subprocess, sys, time
dir, n, path, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def answers_200(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request)
            return s.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False

for i in range(1, n + 1):
    port = free_port()
    with open(f"{dir}/{i}.log", "wb") as log:
        t0 = time.time_ns()
        proc = subprocess.Popen(cmd + ["--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=log)
        deadline = t0 + 60 * 10**9
        while not answers_200(port) and time.time_ns() < deadline and proc.poll() is None:
            time.sleep(0.0005)
        t200 = time.time_ns()
        proc.terminate()
        proc.wait()
    open(f"{dir}/{i}.times", "w").write(f"{t0} {t200}\n")
PY
}

# first_200_median DIR N: the median exec -> first 200 of first_200_runs, in µs.
first_200_median() {
    local i
    for i in $(seq 1 "$2"); do
        awk '{ print int(($2 - $1) / 1000) }' "$1/$i.times"
    done | sort -n | sed -n "$((($2 + 1) / 2))p"
}

# callgrind_first_200 APP PATH: instructions flint ($FLINT_BIN, default
# target/release/flint) executes from exec through one GET PATH of APP to its
# exit on SIGTERM, under valgrind's callgrind: start-up's cost without the
# noise of a shared machine.
callgrind_first_200() {
    local app=$1 path=$2 dir port pid
    need_command valgrind valgrind
    dir=$(mktemp -d)
    port=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg" "${FLINT_BIN:-target/release/flint}" up "$app" \
        --listen "127.0.0.1:$port" --state-dir "$dir/state" >/dev/null 2>"$dir/log" &
    pid=$!
    for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$port$path" && break; sleep 0.1; done
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    awk '/^(summary|totals):/ {print $2; exit}' "$dir/cg"
    rm -rf "$dir"
}
