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
