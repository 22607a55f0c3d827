# Shared by scripts/test and scripts/run: install what is missing, build.
# Sourced, not run.

IMGSYNC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build, the tests and the tools need.
IMGSYNC_DEBS="build-essential cmake pkg-config git curl ca-certificates
libcurl4-openssl-dev libssl-dev libjansson-dev libconfig-dev libsqlite3-dev
libmicrohttpd-dev libexpat1-dev libcriterion-dev libvips-dev libseccomp-dev
clang-format cppcheck clang libclang-rt-14-dev"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else die "need root to run: $*"
	fi
}

deps_install() {
	local missing=() p
	for p in $IMGSYNC_DEBS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	# node and npm may come from elsewhere (NodeSource bundles npm).
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		missing+=(nodejs npm)
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing: ${missing[*]}"
		as_root apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
	deps_python
}

# moto, boto3 and the aws CLI come from the system Python (pip); Debian 12
# has no moto package new enough.
deps_python() {
	if ! command -v python3 >/dev/null; then
		die "python3 is missing (apt-get install python3 python3-pip)"
	fi
	if ! python3 -c 'import moto.server, boto3, botocore' 2>/dev/null ||
	   ! command -v moto_server >/dev/null; then
		say 'installing moto[server] and boto3 with pip'
		python3 -m pip install --quiet 'moto[server]' boto3 awscli ||
			die 'moto_server is needed: pip install "moto[server]" boto3 awscli'
	fi
}

# build DIR [cmake args...]
build() {
	local dir=$1; shift
	cmake -S "$IMGSYNC_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j "$(nproc)"
}
