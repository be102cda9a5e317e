#!/usr/bin/env bash
# Creates (or refreshes) the Python virtualenv that the engine interop suites
# in tests/interop run in: ${ZOMBI_CACHE:-$HOME/.cache/zombi}/venv, with the
# pinned packages of tests/interop/requirements.txt.
#
# Idempotent: the pip install is skipped when requirements.txt (and the
# interpreter) are unchanged since the last successful install, as recorded
# by a hash in the venv's .zombi-requirements.sha256 stamp file.
#
# The last line of stdout is the absolute path of the venv's python, e.g.
#   py="$(scripts/pyenv.sh | tail -n1)" && "$py" -m pytest tests/interop
# Progress messages go to stderr.
#
# Environment:
#   ZOMBI_CACHE  cache root (default $HOME/.cache/zombi)
#   PYTHON       interpreter to create the venv with (default python3.11,
#                then python3); must be Python 3.11 or newer
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$repo/tests/interop/requirements.txt"
venv="${ZOMBI_CACHE:-$HOME/.cache/zombi}/venv"
stamp="$venv/.zombi-requirements.sha256"
py="$venv/bin/python"

log() { echo "pyenv: $*" >&2; }

base="${PYTHON:-}"
if [[ -z "$base" ]]; then
	for cand in python3.11 python3; do
		if command -v "$cand" >/dev/null; then
			base="$cand"
			break
		fi
	done
fi
if [[ -z "$base" ]] || ! command -v "$base" >/dev/null; then
	log "no python3 found (set PYTHON=/path/to/python3.11)"
	exit 1
fi
if ! "$base" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
	log "$base is $("$base" -V 2>&1); Python 3.11 or newer is required"
	exit 1
fi

# A venv whose interpreter is gone or broken (e.g. the system python was
# upgraded) is rebuilt from scratch.
if [[ -x "$py" ]] && ! "$py" -c 'import sys' >/dev/null 2>&1; then
	log "existing venv at $venv is broken; recreating it"
	rm -rf "$venv"
fi
if [[ ! -x "$py" ]]; then
	log "creating venv at $venv with $("$base" -V 2>&1)"
	mkdir -p "$(dirname "$venv")"
	"$base" -m venv "$venv"
fi

# The stamp covers the requirements and the venv's interpreter version, so a
# changed pin or interpreter triggers a reinstall.
want="$({ cat "$req"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$want" == "$have" ]]; then
	log "requirements unchanged since last install; skipping pip"
else
	log "installing $req (this takes a minute on a fresh venv)"
	start=$SECONDS
	rm -f "$stamp"
	"$py" -m pip install --disable-pip-version-check --quiet -r "$req" >&2
	echo "$want" >"$stamp"
	log "installed in $((SECONDS - start))s"
fi

echo "$py"
