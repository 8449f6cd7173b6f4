# Shared shell helpers for scripts/*; source it, don't run it.

# Compose v2 plugin on most Pis, Debian's docker-compose 1.29 elsewhere: use whichever exists.
compose() {
    if docker compose version >/dev/null 2>&1; then docker compose "$@"
    elif command -v docker-compose >/dev/null 2>&1; then docker-compose "$@"
    else echo "neither 'docker compose' nor 'docker-compose' is installed" >&2; return 127
    fi
}

# x86 build machines advertise CPU features (AMX) their VMs do not give: a native llama.cpp build
# segfaults there. On a Pi (aarch64) the native build is the right one.
default_llama_cmake_args() {
    case "$(uname -m)" in
        x86_64|amd64) echo "-DGGML_OPENMP=OFF -DGGML_NATIVE=OFF" ;;
        *) echo "-DGGML_OPENMP=OFF" ;;
    esac
}

# Run a subcommand of the host tools (scripts/latent/, the `latent` command) from this checkout, so
# scripts/lives, scripts/lifespan, ... work without installing anything: with .venv's Python where
# scripts/setup made one, else python3 if it has the tools' two dependencies (the Docker SDK, PyYAML),
# else the installed `latent` command (pipx install .), else python3 (commands that need neither run;
# the others say how to install the tools).
run_latent() {
    local root py
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    export LATENT_PROJECT_DIR="${LATENT_PROJECT_DIR:-$root}"
    py="$root/.venv/bin/python"
    if [ ! -x "$py" ]; then
        py=python3
        if ! python3 -c 'import importlib.util as u, sys; sys.exit(not (u.find_spec("docker") and u.find_spec("yaml")))' \
                2>/dev/null && command -v latent >/dev/null 2>&1; then
            exec latent "$@"
        fi
    fi
    PYTHONPATH="$root/scripts:$root/services${PYTHONPATH:+:$PYTHONPATH}" exec "$py" -m latent "$@"
}
