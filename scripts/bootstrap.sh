# Shared set-up for scripts/run and scripts/test (sourced, not executed).
# Makes sure a Python 3.11+ with venv exists (installing Debian/Ubuntu packages when missing)
# and that the project's virtual environment in .venv holds the project and the given extras.

apt_install() {
    # Install Debian/Ubuntu packages that are missing; use sudo only when not root.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "emsbox: please install these packages: ${missing[*]}" >&2
        return 1
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "emsbox: installing system packages: ${missing[*]}" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

find_python() {
    # The first Python 3.11+ on PATH that can create virtual environments.
    for py in python3.13 python3.12 python3.11 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    # Create .venv when needed and install the project with the extras given in $1 (may be empty).
    local extras="$1" py
    if ! py=$(find_python) || ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3 python3-venv python3-pip
        py=$(find_python) || { echo "emsbox: Python 3.11 or newer is needed" >&2; return 1; }
    fi
    if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
        # Missing, or broken (e.g. copied from another machine): make it anew.
        echo "emsbox: creating the virtual environment in .venv" >&2
        rm -rf .venv
        "$py" -m venv .venv
    fi
    local stamp=".venv/.installed${extras:+-$extras}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "emsbox: installing the project${extras:+ with [$extras]} into .venv" >&2
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
        touch "$stamp"
    fi
}
