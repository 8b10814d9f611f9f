# Shared by scripts/demo and scripts/test: make .venv with callback installed (editable).
# Usage: . scripts/_env.sh EXTRAS   e.g.  . scripts/_env.sh demo
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
extras=${1:-}
python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "callback needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    "$python" -m venv "$venv"
fi
# Reinstall only when what is installed could have changed.
stamp="$venv/.installed-$extras"
sources=("$root/setup.cfg" "$root/pyproject.toml")
for plugin in "$root"/plugins/*/setup.cfg; do [ -e "$plugin" ] && sources+=("$plugin"); done
want=$(cat "${sources[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing callback${extras:+[$extras]} into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -e "$root${extras:+[$extras]}" >&2
    if [ "$extras" = "test" ]; then
        for plugin in "$root"/plugins/*/; do
            [ -f "$plugin/setup.cfg" ] && "$venv/bin/python" -m pip install --quiet -e "${plugin}[test]" >&2
        done
    fi
    echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
