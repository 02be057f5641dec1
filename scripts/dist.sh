#!/usr/bin/env bash
# Release artefacts, from one script that CI and the release workflow both run:
#
#   scripts/dist.sh [--profile release|dev] [--target TRIPLE] [--out DIR] [--check]
#       the wheel (maturin, `bindings = "bin"`, manylinux2014 through zig), a .tar.gz for the
#       target (binary, LICENSE-*, README, CHANGELOG, completions, man pages) and SHA256SUMS,
#       in DIR (default target/dist). The binary carries its dependency list (cargo-auditable).
#       With --check, the artefacts are then proved: the wheel installed into a fresh venv runs
#       `gatelake --version`, `gatelake demo` and tests/python/ (pytest); auditwheel names the
#       manylinux tag; the highest GLIBC_ symbol version the binary needs is printed and must
#       be at most 2.17; the bash completion completes `gatelake pu`.
#       With --chroot SUITE (root, debootstrap), also run the binary (--version, demo) inside
#       an older Debian (e.g. bullseye, glibc 2.31) unpacked by debootstrap from Debian's
#       package archive into .testbed/chroot-SUITE (kept for the next run).
#   scripts/dist.sh package --binary FILE [--target TRIPLE] [--out DIR]
#       only the tarball and SHA256SUMS, around a binary built elsewhere.
#
# Tools are installed when missing, into the test bed (git-ignored): maturin, ziglang,
# auditwheel and pytest into .testbed/venv from PyPI; cargo-auditable from the Rust crate
# registry into .testbed/cargo (`cargo install --locked`). The release workflow builds with
# --profile release; `.ci/run` checks a dev-profile wheel (same packaging, a third of the
# build time; see CHANGELOG and the closing note of issue 19).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/testbed.sh"

GLIBC_FLOOR="2.17"
MANYLINUX="manylinux2014"
AUDITABLE_ROOT="$TESTBED/cargo"

# --- tools ---------------------------------------------------------------------------------

install_dist_tools() {
    ensure_venv
    local missing=()
    "$VENV/bin/python" -c 'import maturin' 2>/dev/null || [[ -x "$VENV/bin/maturin" ]] || missing+=('maturin>=1.7,<2')
    "$VENV/bin/python" -c 'import ziglang' 2>/dev/null || missing+=(ziglang)
    [[ -x "$VENV/bin/auditwheel" ]] || missing+=(auditwheel)
    "$VENV/bin/python" -c 'import pytest' 2>/dev/null || missing+=(pytest)
    ((${#missing[@]})) || return 0
    log "installing ${missing[*]} into .testbed/venv"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}" \
        </dev/null >"$LOGS/pip-dist.log" 2>&1 || {
        cat "$LOGS/pip-dist.log" >&2
        die "pip install ${missing[*]} failed"
    }
}

# The path of cargo-auditable: on PATH, in .testbed/cargo, or installed there now.
auditable_bin() {
    if command -v cargo-auditable >/dev/null 2>&1; then
        command -v cargo-auditable
        return 0
    fi
    if [[ ! -x "$AUDITABLE_ROOT/bin/cargo-auditable" ]]; then
        log "installing cargo-auditable into .testbed/cargo (cargo install --locked)"
        cargo install --locked --quiet --root "$AUDITABLE_ROOT" cargo-auditable \
            </dev/null >"$LOGS/cargo-auditable.log" 2>&1 || {
            cat "$LOGS/cargo-auditable.log" >&2
            die "cargo install cargo-auditable failed"
        }
    fi
    echo "$AUDITABLE_ROOT/bin/cargo-auditable"
}

# --- facts ---------------------------------------------------------------------------------

crate_version() {
    sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1
}

host_target() {
    rustc -vV | sed -n 's/^host: //p'
}

# The highest GLIBC_x.y symbol version FILE's dynamic symbols need ("none" for a static one).
glibc_needed() {
    local v
    v="$(objdump -T "$1" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/^GLIBC_//' | sort -uV | tail -1)"
    echo "${v:-none}"
}

# Whether version $1 <= version $2.
version_le() {
    [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" == "$1" ]]
}

# --- build ---------------------------------------------------------------------------------

# Build the wheel into $1 for target $2 with cargo profile $3; prints the wheel's path.
build_wheel() {
    local out="$1" target="$2" profile="$3" auditable wheel
    auditable="$(auditable_bin)"
    mkdir -p "$out"
    rm -f "$out"/gatelake-*.whl
    log "building the wheel ($target, profile $profile, $MANYLINUX through zig, cargo-auditable)"
    # cargo-auditable works as rustc's wrapper for this crate (what `cargo auditable build`
    # sets up); the original arguments it reads are the ones maturin passes to cargo.
    (
        cd "$ROOT"
        export PATH="$VENV/bin:$PATH"
        # A target folder of its own: the test suite's build (target/) runs beside this one
        # in .ci/run instead of waiting for its lock.
        export CARGO_TARGET_DIR="${GATELAKE_DIST_TARGET_DIR:-$ROOT/target/dist-build}"
        export RUSTC_WORKSPACE_WRAPPER="$auditable"
        export CARGO_AUDITABLE_ORIG_ARGS='{"offline":false,"locked":true,"frozen":false,"config":[]}'
        maturin build --locked --profile "$profile" --target "$target" --zig \
            --compatibility "$MANYLINUX" --strip --out "$out" </dev/null
    ) >"$LOGS/dist-maturin.log" 2>&1 || {
        tail -60 "$LOGS/dist-maturin.log" >&2
        die "maturin build failed (whole log: $LOGS/dist-maturin.log)"
    }
    wheel="$(ls "$out"/gatelake-*.whl)"
    [[ -f "$wheel" ]] || die "maturin wrote no wheel into $out"
    echo "$wheel"
}

# Extract the binary the wheel carries into $2.
binary_from_wheel() {
    local wheel="$1" dest="$2"
    "$VENV/bin/python" - "$wheel" "$dest" <<'EOF'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(".data/scripts/gatelake")]
    if len(names) != 1:
        sys.exit(f"expected one .data/scripts/gatelake in {wheel}, found {names}")
    with z.open(names[0]) as src, open(dest, "wb") as out:
        out.write(src.read())
EOF
    chmod 0755 "$dest"
}

# The tarball for $target around $binary, in $out; completions and man pages come from
# $docs_binary (the binary itself when it runs here).
package() {
    local binary="$1" target="$2" out="$3" docs_binary="${4:-$1}" version name stage
    version="$(crate_version)"
    name="gatelake-$version-$target"
    stage="$(mktemp -d)"
    mkdir -p "$stage/$name/completions" "$stage/$name/man/man1" "$out"
    install -m 0755 "$binary" "$stage/$name/gatelake"
    cp "$ROOT"/LICENSE-MIT "$ROOT"/LICENSE-APACHE "$ROOT/README.md" "$ROOT/CHANGELOG.md" "$stage/$name/"
    "$docs_binary" completions bash >"$stage/$name/completions/gatelake.bash"
    "$docs_binary" completions zsh >"$stage/$name/completions/_gatelake"
    "$docs_binary" completions fish >"$stage/$name/completions/gatelake.fish"
    "$docs_binary" completions powershell >"$stage/$name/completions/_gatelake.ps1"
    "$docs_binary" man --dir "$stage/$name/man/man1" 2>/dev/null
    # Reproducible: sorted names, fixed owner and time (the commit's).
    local mtime
    mtime="$(git -C "$ROOT" log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)"
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" \
        -czf "$out/$name.tar.gz" "$name"
    rm -rf "$stage"
    write_sums "$out"
    echo "$out/$name.tar.gz"
}

write_sums() {
    (cd "$1" && sha256sum -- *.tar.gz $(ls -- *.whl 2>/dev/null || true) >SHA256SUMS)
}

# --- checks --------------------------------------------------------------------------------

check_glibc_floor() {
    local binary="$1" needed
    needed="$(glibc_needed "$binary")"
    log "highest GLIBC_ symbol version needed: $needed (floor: $GLIBC_FLOOR)"
    [[ "$needed" == none ]] || version_le "$needed" "$GLIBC_FLOOR" ||
        die "the binary needs GLIBC_$needed, above the $MANYLINUX floor of $GLIBC_FLOOR"
}

check_auditwheel() {
    local wheel="$1" report
    report="$("$VENV/bin/auditwheel" show "$wheel" 2>&1)" || { echo "$report" >&2; die "auditwheel show failed"; }
    echo "$report" | sed 's/^/  auditwheel: /' >&2
    # "is consistent with the following platform tag: manylinux_2_17_x86_64" (quoted or not).
    tr -s ' \n' ' ' <<<"$report" | grep -qE 'consistent with the following platform tag: "?manylinux_2_17_' ||
        die "auditwheel does not place the wheel on manylinux_2_17 ($MANYLINUX)"
    basename "$wheel" | grep -q 'manylinux_2_17' || die "the wheel's name has no manylinux_2_17 tag: $(basename "$wheel")"
}

check_auditable() {
    readelf -S "$1" | grep -q '\.dep-v0' || die "the binary carries no dependency list (.dep-v0 section): cargo-auditable did not run"
    log "the binary carries its dependency list (.dep-v0, cargo-auditable)"
}

check_completion() {
    local script="$1" got
    got="$(bash --noprofile --norc -c '
        set -e
        source "$1"
        fn="$(complete -p gatelake | sed -E "s/.*-F ([^ ]+).*/\1/")"
        COMP_WORDS=(gatelake pu); COMP_CWORD=1; COMP_LINE="gatelake pu"; COMP_POINT=${#COMP_LINE}
        "$fn" gatelake pu gatelake
        printf "%s\n" "${COMPREPLY[@]}"' bash "$script")" || die "the bash completion script does not load"
    [[ "$got" == pull ]] || die "the bash completion of 'gatelake pu' gave '$got', not 'pull'"
    log "bash completion: gatelake pu → pull"
}

# Run the binary inside an older Debian: the glibc floor proved by running, not only by reading
# symbol versions.
check_in_chroot() {
    local binary="$1" suite="$2" root
    root="$TESTBED/chroot-$suite"
    require debootstrap
    require chroot
    if [[ ! -x "$root/bin/sh" ]]; then
        log "unpacking Debian $suite into .testbed/chroot-$suite (debootstrap, minbase)"
        debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" >"$LOGS/debootstrap.log" 2>&1 || {
            tail -20 "$LOGS/debootstrap.log" >&2
            die "debootstrap $suite failed"
        }
    fi
    install -m 0755 "$binary" "$root/usr/local/bin/gatelake"
    log "Debian $suite: $(chroot "$root" /lib/x86_64-linux-gnu/libc.so.6 2>/dev/null | head -1 || true)"
    chroot "$root" /usr/bin/env -i /usr/local/bin/gatelake --version >&2 || die "the binary does not run in Debian $suite"
    # A clean environment: the host's variables (SSL_CERT_FILE, proxies) name its own files.
    chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root /bin/sh -c 'rm -rf /tmp/demo && mkdir -p /tmp/demo && cd /tmp/demo && /usr/local/bin/gatelake demo --records 2000 --progress none' \
        >"$LOGS/dist-chroot-demo.log" 2>&1 || { cat "$LOGS/dist-chroot-demo.log" >&2; die "gatelake demo failed in Debian $suite"; }
    log "Debian $suite: gatelake demo: $(grep -m1 '^Pulled' "$LOGS/dist-chroot-demo.log")"
}

# Install the wheel into a fresh venv and run it as a user would.
check_installed() {
    local wheel="$1" fresh lake start end runs ms
    fresh="$(mktemp -d)"
    python3 -m venv "$fresh/venv" >"$LOGS/dist-venv.log" 2>&1 || { cat "$LOGS/dist-venv.log" >&2; die "python3 -m venv failed"; }
    "$fresh/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" pytest \
        </dev/null >"$LOGS/dist-pip.log" 2>&1 || { cat "$LOGS/dist-pip.log" >&2; die "pip install of the wheel failed"; }
    [[ -x "$fresh/venv/bin/gatelake" ]] || die "the wheel put no gatelake into the venv's bin/"
    log "installed: $("$fresh/venv/bin/gatelake" --version)"
    "$fresh/venv/bin/gatelake" --version --output json >&2
    # Start-up: the mean of 20 runs of --version.
    runs=20
    start="$(date +%s%N)"
    for _ in $(seq "$runs"); do "$fresh/venv/bin/gatelake" --version >/dev/null; done
    end="$(date +%s%N)"
    ms="$(( (end - start) / runs / 1000 ))"
    log "start-up of the installed binary (--version, mean of $runs): $((ms / 1000)).$(printf %03d $((ms % 1000))) ms"
    lake="$fresh/work"
    mkdir -p "$lake"
    (cd "$lake" && "$fresh/venv/bin/gatelake" demo --progress none) >"$LOGS/dist-demo.log" 2>&1 || {
        cat "$LOGS/dist-demo.log" >&2
        die "gatelake demo failed from the installed wheel"
    }
    ls "$lake"/lake/demo/*/_SUCCESS >/dev/null 2>&1 || die "gatelake demo left no _SUCCESS"
    log "gatelake demo from the installed wheel: $(grep -m1 '^Pulled' "$LOGS/dist-demo.log")"
    (cd "$fresh" && env -u PYTHONPATH "$fresh/venv/bin/python" -m pytest -q -p no:cacheprovider \
        "$ROOT/tests/python") >"$LOGS/dist-pytest.log" 2>&1 || {
        cat "$LOGS/dist-pytest.log" >&2
        die "pytest tests/python failed against the installed wheel"
    }
    log "pytest tests/python: $(tail -1 "$LOGS/dist-pytest.log")"
    rm -rf "$fresh"
}

# --- main ----------------------------------------------------------------------------------

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

main() {
    local mode=build profile=release target="" out="$ROOT/target/dist" check=no binary="" docs_binary="" chroot_suite=""
    if [[ "${1:-}" == package ]]; then
        mode=package
        shift
    fi
    while (($#)); do
        case "$1" in
            --profile) profile="${2:?--profile needs a value}"; shift ;;
            --target) target="${2:?--target needs a value}"; shift ;;
            --out) out="${2:?--out needs a folder}"; shift ;;
            --check) check=yes ;;
            --chroot) chroot_suite="${2:?--chroot needs a Debian suite}"; shift ;;
            --binary) binary="${2:?--binary needs a file}"; shift ;;
            --docs-binary) docs_binary="${2:?--docs-binary needs a file}"; shift ;;
            -h|--help) usage ;;
            *) log "unknown argument: $1"; usage ;;
        esac
        shift
    done
    require cargo
    require python3
    target="${target:-$(host_target)}"
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    if [[ "$mode" == package ]]; then
        [[ -x "$binary" ]] || die "package needs --binary FILE (an executable)"
        package "$binary" "$target" "$out" "${docs_binary:-$binary}"
        return 0
    fi
    install_dist_tools
    local began wheel work tarball
    began=$SECONDS
    wheel="$(build_wheel "$out" "$target" "$profile")"
    work="$(mktemp -d)"
    binary_from_wheel "$wheel" "$work/gatelake"
    if [[ -z "$docs_binary" && "$target" != "$(host_target)" ]]; then
        die "$target's binary does not run here: give --docs-binary (a gatelake that does) for the completions and man pages"
    fi
    tarball="$(package "$work/gatelake" "$target" "$out" "${docs_binary:-$work/gatelake}")"
    log "built in $((SECONDS - began))s:"
    (cd "$out" && ls -l -- *.whl *.tar.gz SHA256SUMS | sed 's/^/  /' >&2)
    log "binary: $(stat -c %s "$work/gatelake") bytes; wheel: $(stat -c %s "$wheel") bytes"
    check_glibc_floor "$work/gatelake"
    check_auditable "$work/gatelake"
    if [[ "$check" == yes ]]; then
        check_auditwheel "$wheel"
        local unpacked
        unpacked="$(mktemp -d)"
        tar -C "$unpacked" -xzf "$tarball"
        check_completion "$unpacked"/gatelake-*/completions/gatelake.bash
        rm -rf "$unpacked"
        check_installed "$wheel"
        [[ -z "$chroot_suite" ]] || check_in_chroot "$work/gatelake" "$chroot_suite"
        log "dist check passed in $((SECONDS - began))s"
    fi
    rm -rf "$work"
}

main "$@"
