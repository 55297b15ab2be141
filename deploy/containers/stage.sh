#!/usr/bin/env bash
# Stages a built llmserve for the server image, in the layout the Containerfile copies from:
#
#   DEST/bin/llmserve                         the binary
#   DEST/share/llmserve/models/default/       the embedded default model (serving files only)
#   DEST/runtime-packages.txt                 Debian/Ubuntu packages owning the libraries it links
#   DEST/lib/                                 those libraries themselves (unless --no-libs)
#
# The Containerfile's `build` stage runs it with --no-libs (the `runtime` stage installs
# runtime-packages.txt with apt). For `--target runtime-prebuilt`, run it on the machine that
# built the binary and pass DEST as the build context: the image then takes the libraries from
# DEST/lib, so it needs neither a compiler nor a package mirror. The C runtime (glibc, libstdc++,
# libgcc_s) is never staged: every Debian/Ubuntu base has it, and the base must be the same
# release (or newer) as the machine that built the binary.
#
#   deploy/containers/stage.sh [--no-libs] BINARY DEST
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
with_libs=yes
if [[ ${1:-} == --no-libs ]]; then with_libs=no; shift; fi
[[ $# -eq 2 ]] || { echo "usage: $0 [--no-libs] BINARY DEST" >&2; exit 2; }
bin=$1 dest=$2
[[ -x $bin ]] || { echo "stage.sh: $bin is not an executable" >&2; exit 1; }
model=$root/models/default
[[ -f $model/config.json ]] || { echo "stage.sh: no default model at $model" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib" "$dest/share/llmserve/models"
install -m 0755 "$bin" "$dest/bin/llmserve"
# Mode 0644 everywhere: the image runs as a non-root user, and some model files are 0600 here.
mkdir -p "$dest/share/llmserve/models/default"
for f in "$model"/*; do
  case $(basename "$f") in reference.* | train_log.json) continue ;; esac  # test fixtures, not served
  install -m 0644 "$f" "$dest/share/llmserve/models/default/"
done

if ldd "$bin" | grep -q 'not found'; then
  echo "stage.sh: $bin links libraries this machine lacks:" >&2; ldd "$bin" | grep 'not found' >&2; exit 1
fi
# The packages that own the libraries, in one dpkg-query call (one call per path is slow): dpkg
# records some files under /lib and others under /usr/lib (merged /usr), so ask for the path as
# ldd prints it, resolved, and with /usr added or removed.
base='^(linux-vdso|ld-linux|libc\.so|libm\.so|libmvec\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libstdc\+\+\.so|libgcc_s\.so)'
names=() paths=()
while read -r name path; do
  [[ $name =~ $base ]] || { names+=("$name"); paths+=("$path"); }
done < <(ldd "$bin" | awk '/=> \// {print $1" "$3}')
variants() { printf '%s\n' "$1" "$(readlink -f "$1")" "/usr$1" "${1#/usr}"; }
declare -A owner_of=()
if command -v dpkg-query > /dev/null && ((${#paths[@]})); then
  while IFS= read -r line; do
    [[ $line == diversion* ]] && continue
    owner_of[${line#*: }]=${line%%:*}
  done < <(for p in "${paths[@]}"; do variants "$p"; done | sort -u | xargs dpkg-query -S 2>/dev/null)
fi
: > "$dest/runtime-packages.txt"
unowned=()
for i in "${!paths[@]}"; do
  [[ $with_libs == yes ]] && cp -L "${paths[i]}" "$dest/lib/${names[i]}"
  pkg=""
  while read -r v; do [[ -n ${owner_of[$v]:-} ]] && { pkg=${owner_of[$v]}; break; }; done < <(variants "${paths[i]}")
  if [[ -n $pkg ]]; then echo "$pkg" >> "$dest/runtime-packages.txt"; else unowned+=("${paths[i]}"); fi
done
sort -u -o "$dest/runtime-packages.txt" "$dest/runtime-packages.txt"
if ((${#unowned[@]})); then
  if [[ $with_libs == no ]]; then
    echo "stage.sh: no package owns ${unowned[*]}; the runtime stage could not install it" >&2; exit 1
  fi
  echo "stage.sh: note: no package owns ${unowned[*]} (staged in lib/ only)" >&2
fi
echo "staged $(du -sh "$dest" | cut -f1) in $dest: bin/llmserve, $(ls "$dest/lib" | wc -l) libraries," \
  "$(wc -l < "$dest/runtime-packages.txt") runtime packages, the default model"
