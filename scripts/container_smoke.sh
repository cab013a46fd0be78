#!/usr/bin/env bash
# Builds the service's image (Dockerfile) with podman and checks it for real, on a machine that can neither pull
# base images nor start containers (see ../shared/NOTES.md, "Containers on this machine kind"):
#   - the base: ../shared/tools/container-base.sh makes a local stand-in for python:3.11-slim;
#   - the build: podman build --isolation chroot --network host, the host's CA bundle and /opt/wheels (torch) mounted;
#   - the run: the image's filesystem (podman create + mount), seen read-only in a private mount namespace with
#     /proc, /dev, a tmpfs /tmp and ONE run folder read-only under /models; its Entrypoint + Cmd, Env and WorkingDir
#     (from `podman image inspect`) started with chroot as the image's user, on 127.0.0.1:PORT;
#   - the checks: /health, /ready, one translation (/v1/translate and LibreTranslate's /translate), the image's own
#     HEALTHCHECK, the server's uid, no compiler, no pip cache, no build leftovers, CPU-only torch; then its size.
# Usage: scripts/container_smoke.sh [RUN_FOLDER]   (default: runs/transformer-de-en; needs root)
# Env: IMAGE (translate:0.1.0), PORT (8000 if free, else any free port), READY_TIMEOUT (300 s), SENTENCE (German),
#      SERVE_ENV (more settings for the server, e.g. "TRANSLATE_ENGINE=ctranslate2 TRANSLATE_WORKERS=1"),
#      NO_CACHE=1 (build every layer again), SKIP_BUILD=1 (check an image already built), CONTAINER_BASE (the base script).
set -euo pipefail
t0=$SECONDS
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${IMAGE:-translate:0.1.0}
READY_TIMEOUT=${READY_TIMEOUT:-300}
SENTENCE=${SENTENCE:-Ein Hund rennt über die Wiese.}
CONTAINER_BASE=${CONTAINER_BASE:-$root/../shared/tools/container-base.sh}
run_dir=$(realpath "${1:-$root/runs/transformer-de-en}")
name=$(basename "$run_dir")

passed=()
say() { printf '== %s\n' "$*"; }
ok() { passed+=("$1"); printf '   ok  %s\n' "$1"; }
fail() { printf '   FAIL %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (podman mount, chroot, unshare)"
[ -f "$run_dir/config.json" ] && compgen -G "$run_dir/*.pt" >/dev/null \
  || fail "$run_dir is not a run folder (config.json and a checkpoint *.pt)"
read -r src_lang tgt_lang < <(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))["data"]; print(d["src"], d["tgt"])' "$run_dir/config.json")

work=$(mktemp -d /tmp/container-smoke.XXXXXX)
cid='' mnt='' server=''
cleanup() {
  local rc=$?
  if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
    kill -TERM -- "-$server" 2>/dev/null || true  # its process group: the server and its worker processes
    for _ in $(seq 40); do kill -0 "$server" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  if [ -n "$cid" ]; then
    podman umount "$cid" >/dev/null 2>&1 || true
    podman rm --force "$cid" >/dev/null 2>&1 || true  # (a warning about systemd health-check timers is harmless)
  fi
  if [ "$rc" = 0 ]; then rm -rf "$work"; else
    [ -s "$work/server.log" ] && { echo "--- server log (last 40 lines):" >&2; tail -n 40 "$work/server.log" >&2; }
    echo "FAILED after $((SECONDS - t0)) s; logs kept in $work" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap 'echo "   FAIL line $LINENO: $BASH_COMMAND" >&2' ERR  # a command that failed outside the checks

# --- the base image and the build ------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "base image (container-base.sh)"
  bash "$CONTAINER_BASE" > "$work/base.txt"
  # The flags it prints: the host CA bundle (pip must trust this machine's TLS proxy), the wheels folder, the index.
  ca=$(grep -o -- '-v [^ ]*:/etc/ssl/certs/host-ca.crt' "$work/base.txt" | sed 's/^-v //; s/:.*//' || true)
  wheels=$(grep -o -- '-v [^ ]*:/opt/wheels' "$work/base.txt" | sed 's/^-v //; s/:.*//' || true)
  index=$(grep -o 'TORCH_INDEX=[^ ]*' "$work/base.txt" | cut -d= -f2- || true)
  flags=(--isolation chroot --network host --pull=never --format docker)  # docker format keeps the HEALTHCHECK
  [ "${NO_CACHE:-0}" = 1 ] && flags+=(--no-cache)
  # Build args, not --env (podman would keep --env variables in the image); the files are mounted over paths the
  # base already has (its CA bundle, the empty /mnt), so no empty mount points are left behind in the layers.
  [ -n "$ca" ] && flags+=(-v "$ca:/etc/ssl/certs/ca-certificates.crt:ro"
                          --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
  [ -n "$wheels" ] && flags+=(-v "$wheels:/mnt:ro" --build-arg PIP_FIND_LINKS=/mnt)
  [ -n "$index" ] && flags+=(--build-arg "TORCH_INDEX=$index")
  say "build $IMAGE (log: $work/build.log)"
  echo "   podman build ${flags[*]} -t $IMAGE $root"
  tb=$SECONDS
  podman build "${flags[@]}" -t "$IMAGE" "$root" > "$work/build.log" 2>&1 \
    || { tail -n 30 "$work/build.log" >&2; fail "podman build failed"; }
  build_s=$((SECONDS - tb))
  ok "image built in ${build_s} s ($(grep -c -- '--> Using cache' "$work/build.log" || true) steps from cache)"
  sdists=$(grep -o 'Building wheel for [^ ]*' "$work/build.log" | grep -v 'for translate$' || true)
  [ -z "$sdists" ] || fail "packages were compiled from source during the build (a compiler would be needed): $sdists"
fi
podman image exists "$IMAGE" || fail "no image $IMAGE (build it, or leave SKIP_BUILD unset)"

# --- the image's configuration ---------------------------------------------------------------------------------
say "configuration"
inspect() { podman image inspect --format "$1" "$IMAGE"; }
user=$(inspect '{{.Config.User}}')
case "$user" in
  10001|10001:10001|app|app:app) ok "User is $user (uid 10001, app)";;
  *) fail "User is '$user', not 10001/app";;
esac
mapfile -t image_env < <(inspect '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d')
for v in "${image_env[@]}"; do
  case "$v" in PIP_CERT=*|PIP_FIND_LINKS=*|PIP_INDEX_URL=*) fail "a build setting stayed in the image's Env: $v";; esac
done
ok "Env holds no build settings (PIP_CERT, PIP_FIND_LINKS)"
[ "$(inspect '{{if .Config.Healthcheck}}yes{{end}}')" = yes ] || fail "no HEALTHCHECK in the image (OCI format drops it)"
ok "HEALTHCHECK present"
inspect '{{json .Config.ExposedPorts}}' | grep -q '"8000/tcp"' || fail "port 8000 not exposed"
ok "EXPOSE 8000"
json0() { python3 -c 'import json, sys; [print(a, end="\0") for a in (json.loads(sys.stdin.read()) or [])]'; }
mapfile -d '' -t command < <({ inspect '{{json .Config.Entrypoint}}' | json0; inspect '{{json .Config.Cmd}}' | json0; })
mapfile -d '' -t healthcheck < <(inspect '{{json .Config.Healthcheck.Test}}' | json0)
workdir=$(inspect '{{.Config.WorkingDir}}'); workdir=${workdir:-/}
[ ${#command[@]} -gt 0 ] || fail "the image has no Entrypoint or Cmd"

# --- the image's filesystem ------------------------------------------------------------------------------------
cid=$(podman create "$IMAGE")
mnt=$(podman mount "$cid")
uid=${user%%:*}; gid=${user#*:}; [ "$gid" = "$user" ] && gid=''
[[ "$uid" =~ ^[0-9]+$ ]] || uid=$(awk -F: -v u="$uid" '$1 == u {print $3}' "$mnt/etc/passwd")
[[ "$gid" =~ ^[0-9]+$ ]] || gid=$(awk -F: -v u="$uid" '$3 == u {print $4}' "$mnt/etc/passwd")
[ "$uid" = 10001 ] || fail "the image's user has uid '$uid', not 10001"
for d in proc dev tmp models; do [ -d "$mnt/$d" ] || fail "the image has no /$d to mount on"; done

# --- start the server: read-only root, tmpfs /tmp, the run read-only at /models/<name> ----------------------------
if [ -z "${PORT:-}" ]; then
  PORT=$(python3 -c 'import socket
for port in (8000, 0):
    s = socket.socket()
    try: s.bind(("127.0.0.1", port))
    except OSError: continue
    print(s.getsockname()[1]); break')
fi
view=$work/root
mkdir "$view"
cat > "$work/enter.sh" <<'SH'
set -euo pipefail  # runs in a private mount namespace (unshare -m): every mount here vanishes with it
mnt=$1 view=$2 run_dir=$3 name=$4 user=$5 workdir=$6; shift 6
mount --bind "$mnt" "$view" && mount -o remount,bind,ro "$view"  # the root filesystem read-only
mount -t proc proc "$view/proc"
mount --rbind /dev "$view/dev"  # /dev/shm: the inference workers' semaphores
mount -t tmpfs -o mode=1777,size=256m tmpfs "$view/tmp"
mount -t tmpfs -o mode=755,size=1m tmpfs "$view/models" && mkdir "$view/models/$name"
mount --bind "$run_dir" "$view/models/$name" && mount -o remount,bind,ro "$view/models/$name"
mount -o remount,ro "$view/models"
exec chroot --userspec="$user" --groups="${user#*:}" "$view" /usr/bin/env -i --chdir="$workdir" "$@"
SH
server_env=("${image_env[@]}" HOME="$(awk -F: -v u="$uid" '$3 == u {print $6}' "$mnt/etc/passwd")"
            TRANSLATE_HOST=127.0.0.1 TRANSLATE_PORT="$PORT")  # the host's network: not on every interface
read -r -a extra <<< "${SERVE_ENV:-}"; server_env+=("${extra[@]}")
say "start ${command[*]} as $uid:${gid:-$uid} on 127.0.0.1:$PORT, serving $name read-only"
setsid unshare --mount --propagation private bash "$work/enter.sh" "$mnt" "$view" "$run_dir" "$name" \
  "$uid:${gid:-$uid}" "$workdir" "${server_env[@]}" "${command[@]}" > "$work/server.log" 2>&1 &
server=$!
base_url=http://127.0.0.1:$PORT
in_view() {  # a command in the server's view of the image, as its user, with its environment
  nsenter --target "$server" --mount -- \
    chroot --userspec="$uid:${gid:-$uid}" "$view" /usr/bin/env -i "${server_env[@]}" "$@"
}

# --- the HTTP checks -------------------------------------------------------------------------------------------
status() { curl -s -o "$work/body" -w '%{http_code}' --max-time 10 "$@" || true; }
deadline=$((SECONDS + READY_TIMEOUT))
until [ "$(status "$base_url/health")" = 200 ]; do
  kill -0 "$server" 2>/dev/null || fail "the server exited before answering /health"
  [ $SECONDS -lt $deadline ] || fail "GET /health did not answer 200 within ${READY_TIMEOUT} s"
  sleep 1
done
ok "GET /health 200 after $((SECONDS - deadline + READY_TIMEOUT)) s: $(cat "$work/body")"
until [ "$(status "$base_url/ready")" = 200 ]; do
  kill -0 "$server" 2>/dev/null || fail "the server exited before it was ready"
  [ $SECONDS -lt $deadline ] || fail "GET /ready not 200 within ${READY_TIMEOUT} s: $(cat "$work/body")"
  sleep 2
done
grep -q "\"$name\"" "$work/body" || fail "/ready does not list $name: $(cat "$work/body")"
ok "GET /ready 200 after $((SECONDS - deadline + READY_TIMEOUT)) s: $(cat "$work/body")"

body=$(python3 -c 'import json, sys; print(json.dumps({"model": sys.argv[1], "text": sys.argv[2]}))' "$name" "$SENTENCE")
code=$(status -X POST -H 'Content-Type: application/json' -d "$body" "$base_url/v1/translate")
[ "$code" = 200 ] || fail "POST /v1/translate gave $code: $(cat "$work/body")"
out=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["translations"][0]["text"])' "$work/body")
[ -n "${out// /}" ] || fail "POST /v1/translate gave an empty translation: $(cat "$work/body")"
ok "POST /v1/translate: '$SENTENCE' -> '$out'"
body=$(python3 -c 'import json, sys; print(json.dumps({"q": sys.argv[1], "source": sys.argv[2], "target": sys.argv[3]}))' \
  "$SENTENCE" "$src_lang" "$tgt_lang")
code=$(status -X POST -H 'Content-Type: application/json' -d "$body" "$base_url/translate")
[ "$code" = 200 ] || fail "POST /translate (LibreTranslate) gave $code: $(cat "$work/body")"
out=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["translatedText"])' "$work/body")
[ -n "${out// /}" ] || fail "POST /translate (LibreTranslate) gave an empty translation: $(cat "$work/body")"
ok "POST /translate ($src_lang->$tgt_lang, LibreTranslate): '$out'"

case "${healthcheck[0]:-}" in
  CMD) hc=("${healthcheck[@]:1}");;
  CMD-SHELL) hc=(/bin/sh -c "${healthcheck[1]}");;
  *) fail "unexpected HEALTHCHECK test: ${healthcheck[*]}";;
esac
in_view "${hc[@]}" || fail "the image's HEALTHCHECK command failed"
ok "the image's HEALTHCHECK command exits 0"
uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$server/status")
[ "$uids" = "10001 10001 10001 10001" ] || fail "the server runs with uids '$uids', not 10001"
grep -qa translate "/proc/$server/cmdline" || fail "pid $server is not the server: $(tr '\0' ' ' < "/proc/$server/cmdline")"
for p in $(pgrep -g "$server"); do
  euid=$(awk '/^Uid:/ {print $3}' "/proc/$p/status" 2>/dev/null || echo 10001)  # (or it has just exited)
  [ "$euid" = 10001 ] || fail "process $p of the server runs as uid $euid"
done
ok "the server and its $(($(pgrep -c -g "$server") - 1)) child processes run as uid 10001, root filesystem read-only"
! grep -q '^Traceback' "$work/server.log" || fail "a traceback in the server's log (below)"
warnings=$(grep -i 'warn' "$work/server.log" | cut -c1-200 || true)
ok "no traceback in the server's log; warnings: ${warnings:-none}"

# --- the image's contents --------------------------------------------------------------------------------------
say "contents"
found=$(in_view /bin/sh -c 'for t in gcc cc c++ g++ clang clang++ tcc as ld make; do command -v "$t"; done' || true)
found+=$(find "$mnt/usr/bin" "$mnt/usr/local/bin" \
  -regex '.*/\(x86_64\|aarch64\)-linux-gnu-\(gcc\|g\+\+\|as\|ld\).*' 2>/dev/null || true)
[ -z "$found" ] || fail "a compiler or toolchain in the image: $found"
ok "no compiler (gcc, cc, c++, clang, as, ld, make absent)"
for d in root/.cache home/app/.cache; do
  [ ! -e "$mnt/$d" ] || [ -z "$(ls -A "$mnt/$d")" ] || fail "/$d is not empty: $(du -sh "$mnt/$d" | cut -f1)"
done
ok "no pip cache (/root/.cache, /home/app/.cache absent)"
[ -z "$(ls -A "$mnt/tmp")" ] && [ ! -e "$mnt/src" ] && [ ! -e "$mnt/wheels" ] && [ ! -e "$mnt/app" ] \
  || fail "build leftovers in the image: $(ls -A "$mnt/tmp" "$mnt/src" "$mnt/wheels" "$mnt/app" 2>/dev/null | tr '\n' ' ')"
ok "no build leftovers (/tmp empty; no /src, /wheels, /app)"
versions=$(in_view python -c 'import sys, torch, ctranslate2, translate
assert torch.version.cuda is None, torch.version.cuda
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, ctranslate2 {ctranslate2.__version__}")') \
  || fail "torch is not the CPU build, or ctranslate2 (the ct2 extra) is missing"
ok "$versions (no CUDA)"
site=$(in_view python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# --- size ------------------------------------------------------------------------------------------------------
size=$(inspect '{{.Size}}')
base_ref=localhost/python:3.11-slim
base=$(podman image inspect --format '{{.Size}}' "$base_ref" 2>/dev/null || echo 0)
mb() { echo $(( ($1 + 500000) / 1000000 )); }
say "size"
echo "   image $IMAGE: $(mb "$size") MB uncompressed; of it the base ($base_ref, stand-in) $(mb "$base") MB," \
     "the project's layers $(mb $((size - base))) MB"
echo "   biggest in $site:"
du -sm "$mnt$site"/* | sort -rn \
  | awk 'NR <= 8 {n = split($2, p, "/"); printf "     %5d MB  %s\n", $1, p[n]}'  # (not head: SIGPIPE, pipefail)
printf '     (of all that, __pycache__: %d MB)\n' \
  "$(find "$mnt$site" -name __pycache__ -type d -prune -print0 | du -sc -BM --files0-from=- | tail -n 1 | cut -f1 | tr -d M)"

say "summary"
echo "   image $IMAGE ($(inspect '{{.Id}}' | cut -c1-12)): $(mb "$size") MB, user $user," \
     "${build_s:+built in ${build_s} s, }$((SECONDS - t0)) s in all"
echo "   ${#passed[@]} checks passed; served $name on 127.0.0.1:$PORT"
