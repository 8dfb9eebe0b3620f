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

# Refreshes the package lists once per run (root only).
apt_update() {
    if [ -z "${FLINT_APT_UPDATED:-}" ] && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        export FLINT_APT_UPDATED=1
    fi
}
