# shellcheck shell=bash
# The kTLS bench: shared by tests/vm/run (one command, one boot) and
# tests/vm/session (one boot serving many commands, for CTest).
#
# A guest is a Debian kernel (fetched from Debian's archive into a cache
# under the build tree, never installed system-wide) booted under qemu/TCG
# with a busybox initramfs that mounts the host's root over virtio-9p and
# switch_roots into it.  The guest therefore runs the host's own binaries
# (the build tree, nginx, openssl, curl) with its own kernel, which has kTLS.
#
# The host and the guest talk through a session directory on the shared
# filesystem: the host drops job directories into jobs/, the guest agent
# (guest/agent) runs them and writes their stdout, stderr and exit status
# back.  Nothing is passed over the serial console, which only carries the
# kernel log (session/console.log) for post-mortems.

# Exit statuses of the bench itself.  A command run in the guest can exit
# with any of these too; the bench's own failures always print a line that
# starts with "zctls-vm: error:" on stderr, so the two can be told apart.
readonly VM_EXIT_GUEST=123    # the guest died, failed to set up, or lost a job
readonly VM_EXIT_TIMEOUT=124  # boot or command timed out (like timeout(1))
readonly VM_EXIT_SETUP=125    # bad usage, missing tools, kernel not fetchable

VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
VM_PROJECT_DIR=$(cd "$VM_LIB_DIR/../.." && pwd -P)

vm_log()  { echo "zctls-vm: $*" >&2; }
vm_die()  { local code=$1; shift; echo "zctls-vm: error: $*" >&2; exit "$code"; }

# Where kernels, initramfs images and sessions live.  Defaults to the build
# tree so that `rm -rf build` resets everything; ZCTLS_VM_CACHE overrides.
vm_cache_dir() {
    local build=${ZCTLS_BUILD_DIR:-$VM_PROJECT_DIR/build}
    # Absolute: the guest resolves it from its own working directory.
    realpath -m "${ZCTLS_VM_CACHE:-$build/vm}"
}

# Where each supported kernel series comes from: the suite set (its own
# apt state, below) and the metapackage that names the newest image there.
#   6.1     bookworm's linux-image-amd64
#   6.12    bookworm's linux-image-6.12-amd64 (bookworm-security carries the
#           same 6.12.y as trixie: Debian 12 users get it from there)
#   newest  trixie-backports' linux-image-amd64 (7.3 on 2026-11-29;
#           whatever it is on the day: the metapackage decides)
vm_kernel_source() {
    case $1 in
        6.1)    echo "bookworm linux-image-amd64" ;;
        6.12)   echo "bookworm linux-image-6.12-amd64" ;;
        newest) echo "trixie-backports linux-image-amd64" ;;
        *)      return 1 ;;
    esac
}
VM_KERNELS="6.1 6.12 newest"

vm_require_tools() {
    local t
    for t in qemu-system-x86_64 dpkg-deb depmod modprobe cpio xz apt-get; do
        command -v "$t" >/dev/null 2>&1 ||
            vm_die $VM_EXIT_SETUP "'$t' not found; run scripts/install-deps"
    done
    [ -x /bin/busybox ] && /bin/busybox --list | grep -qx switch_root ||
        vm_die $VM_EXIT_SETUP "/bin/busybox (static) not found; run scripts/install-deps"
}

# --- the bench's own apt state -------------------------------------------
# Kernels come from the suites named above, whatever the host's sources
# list says (a Debian 12 host has no trixie-backports in it).  Each suite
# set gets a private apt tree under the cache: sources, lists, no status
# (nothing is installed), Debian's keyring.  ZCTLS_DEBIAN_MIRROR and
# ZCTLS_DEBIAN_SECURITY override the archive URLs.

vm_apt_dir() { echo "$(vm_cache_dir)/apt/$1"; }

vm_apt_sources() {
    local mirror=${ZCTLS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
    local security=${ZCTLS_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
    local key=/usr/share/keyrings/debian-archive-keyring.gpg
    case $1 in
        bookworm|trixie)
            echo "deb [signed-by=$key] $mirror $1 main"
            echo "deb [signed-by=$key] $mirror $1-updates main"
            echo "deb [signed-by=$key] $security $1-security main" ;;
        trixie-backports)
            echo "deb [signed-by=$key] $mirror trixie main"
            echo "deb [signed-by=$key] $mirror trixie-backports main" ;;
        *) return 1 ;;
    esac
}

# apt-get/apt-cache options that point apt at the set's private tree.
vm_apt_options() {
    local d
    d=$(vm_apt_dir "$1")
    local opts=(
        -o "Dir::State=$d/state" -o "Dir::State::status=$d/state/status"
        -o "Dir::Cache=$d/cache" -o "Dir::Etc::SourceList=$d/sources.list"
        -o "Dir::Etc::SourceParts=$d/empty" -o "Dir::Etc::Preferences=$d/empty/none"
        -o "Dir::Etc::PreferencesParts=$d/empty" -o "APT::Architecture=amd64"
        -o "APT::Architectures=amd64" -o "Acquire::Languages=none" -o "Debug::NoLocking=1"
    )
    # The newest kernel lives in backports, which apt ranks below the
    # release it backports.
    [ "$1" = trixie-backports ] && opts+=(-o "APT::Default-Release=trixie-backports")
    printf '%s\n' "${opts[@]}"
}

vm_apt() {
    local set=$1 cmd=$2; shift 2
    local opts
    mapfile -t opts < <(vm_apt_options "$set")
    "$cmd" "${opts[@]}" "$@"
}

# Makes the set's lists current: fetched when missing, older than a day, or
# ZCTLS_VM_REFRESH is set.
vm_apt_update() {
    local set=$1 d
    d=$(vm_apt_dir "$set")
    if [ -e "$d/updated" ] && [ -z "${ZCTLS_VM_REFRESH:-}" ] &&
        [ -n "$(find "$d/updated" -mmin -1440 2>/dev/null)" ]; then
        return 0
    fi
    mkdir -p "$d/state/lists/partial" "$d/cache/archives/partial" "$d/empty" ||
        vm_die $VM_EXIT_SETUP "cannot create $d"
    : > "$d/state/status"
    vm_apt_sources "$set" > "$d/sources.list" || vm_die $VM_EXIT_SETUP "unknown suite set '$set'"
    # apt drops privileges to _apt for downloads when run as root.
    [ "$(id -u)" = 0 ] && chown -R _apt "$d/state/lists/partial" 2>/dev/null
    vm_log "updating the bench's apt lists for $set ($d)"
    vm_apt "$set" apt-get -qq update >&2 ||
        vm_die $VM_EXIT_SETUP "apt-get update for $set failed (is Debian's archive reachable?)"
    touch "$d/updated"
}

# The concrete package a metapackage depends on whose name starts with
# $3, e.g. linux-image-amd64 -> linux-image-6.1.0-56-amd64.
vm_apt_depends() {
    vm_apt "$1" apt-cache depends "$2" 2>/dev/null |
        awk -v p="$3" '$1 == "Depends:" && index($2, p) == 1 {print $2; exit}'
}

# Fetch and unpack the kernel of series $1 into the cache (once; later runs
# reuse it offline) and build its initramfs.  Sets VM_KDIR, VM_KVER,
# VM_VMLINUZ, VM_MODROOT (the -d/-b root for modprobe and depmod),
# VM_INITRD.
#
# Two packagings: up to 6.x an image package holds /boot/vmlinuz-V and
# /lib/modules/V; from 7.x linux-image-V is empty and depends on
# linux-binary-V (/usr/lib/modules/V/vmlinuz) and linux-modules-V
# (/usr/lib/modules/V/kernel/..., .ko.xz).
vm_prepare_kernel() {
    local series=$1 source set meta cache kdir pkg lock=""
    source=$(vm_kernel_source "$series") ||
        vm_die $VM_EXIT_SETUP "unknown kernel '$series' (supported: $VM_KERNELS)"
    set=${source% *} meta=${source#* }
    cache=$(vm_cache_dir)/kernels
    kdir=$cache/$series
    mkdir -p "$cache" || vm_die $VM_EXIT_SETUP "cannot create $cache"

    if [ ! -e "$kdir/.complete" ] || [ -n "${ZCTLS_VM_REFRESH:-}" ]; then
        # One fetch per suite set at a time: CTest starts the kernels'
        # guests in parallel, and two apt-get updates of one list tree
        # trip over each other's partial files.  Held until this shell
        # exits (or the fetch is done).
        mkdir -p "$(vm_cache_dir)/apt" || vm_die $VM_EXIT_SETUP "cannot create $(vm_cache_dir)/apt"
        exec {lock}>"$(vm_cache_dir)/apt/$set.lock" &&
            flock "$lock" || vm_die $VM_EXIT_SETUP "cannot lock the apt state for $set"
    fi
    # (Another run may have fetched it while this one waited.)
    if [ ! -e "$kdir/.complete" ] || [ -n "${ZCTLS_VM_REFRESH:-}" ]; then
        vm_apt_update "$set"
        pkg=$(vm_apt_depends "$set" "$meta" linux-image-)
        [ -n "$pkg" ] ||
            vm_die $VM_EXIT_SETUP "cannot resolve $meta in $set to a kernel package"
        local pkgs=("$pkg") dep
        # (linux-base-V: the config, modules.order and modules.builtin.)
        for dep in linux-binary- linux-modules- linux-base-; do
            dep=$(vm_apt_depends "$set" "$pkg" "$dep")
            [ -n "$dep" ] && pkgs+=("$dep")
        done
        vm_log "fetching ${pkgs[*]} ($set) into $kdir"
        rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp/deb" || vm_die $VM_EXIT_SETUP "cannot write $kdir.tmp"
        # Downloaded as _apt when root: a world-writable temp dir.
        (cd "$kdir.tmp/deb" && chmod 777 . && vm_apt "$set" apt-get download -qq "${pkgs[@]}" >&2) ||
            vm_die $VM_EXIT_SETUP "apt-get download ${pkgs[*]} failed"
        local deb n=0
        for deb in "$kdir.tmp/deb/"*.deb; do
            [ -e "$deb" ] || continue
            dpkg-deb -x "$deb" "$kdir.tmp/root" || vm_die $VM_EXIT_SETUP "cannot unpack $deb"
            n=$((n + 1))
        done
        [ "$n" = "${#pkgs[@]}" ] || vm_die $VM_EXIT_SETUP "apt-get download ${pkgs[*]} gave $n packages"
        rm -rf "$kdir.tmp/deb"
        local base ver image
        for base in "$kdir.tmp/root" "$kdir.tmp/root/usr"; do
            ver=$(ls "$base/lib/modules" 2>/dev/null | head -1)
            [ -n "$ver" ] && break
        done
        for image in "$kdir.tmp/root/boot/vmlinuz-$ver" "$base/lib/modules/$ver/vmlinuz"; do
            [ -e "$image" ] && break
        done
        [ -n "$ver" ] && [ -e "$image" ] ||
            vm_die $VM_EXIT_SETUP "${pkgs[*]} hold no vmlinuz/modules"
        # Debian generates modules.dep at install time; an unpacked package
        # has none.  The guest's modprobe and the initramfs builder need it.
        # (7.x packages lack modules.order and modules.builtin*: depmod
        # warns, and modprobe then calls built-in virtio_pci "not found",
        # which vm_initrd_modules ignores.)
        depmod -b "$base" "$ver" 2> >(grep -v '^depmod: WARNING: could not open modules\.' >&2) ||
            vm_die $VM_EXIT_SETUP "depmod failed for $ver"
        echo "$ver" > "$kdir.tmp/version"
        echo "${pkgs[*]}" > "$kdir.tmp/package"
        echo "$set" > "$kdir.tmp/suite"
        echo "${base#"$kdir.tmp/"}" > "$kdir.tmp/modroot"
        echo "${image#"$kdir.tmp/"}" > "$kdir.tmp/image"
        touch "$kdir.tmp/.complete"
        rm -rf "$kdir" && mv "$kdir.tmp" "$kdir"
    fi
    [ -n "${lock:-}" ] && exec {lock}>&-

    VM_KDIR=$kdir
    VM_KVER=$(cat "$kdir/version")
    # Caches made before 7.x support have neither file: the 6.x layout.
    VM_MODROOT=$kdir/$(cat "$kdir/modroot" 2>/dev/null || echo root)
    VM_VMLINUZ=$kdir/$(cat "$kdir/image" 2>/dev/null || echo "root/boot/vmlinuz-$VM_KVER")
    VM_INITRD=$kdir/initrd.cpio.gz
    # The kernel's build config, which the guest shows as /boot/config-V:
    # 6.x packages ship it in /boot, 7.x in linux-base-V's
    # /usr/lib/modules/V; caches made before the latter was fetched may
    # have the offload NIC's headers (tests/offload-nic/build).
    VM_KCONFIG=""
    local kconfig
    for kconfig in "$kdir/root/boot/config-$VM_KVER" "$VM_MODROOT/lib/modules/$VM_KVER/config" \
            "$kdir/headers/root/usr/src/linux-headers-$VM_KVER/.config"; do
        [ -f "$kconfig" ] && VM_KCONFIG=$kconfig && break
    done
    vm_build_initrd
}

# The modules the initramfs needs to mount the host over virtio-9p (and an
# overlay over a booted system's root), in load
# order, as modprobe resolves them for this kernel (6.1 has virtio_pci as a
# module, 6.12 builds it in).
vm_initrd_modules() {
    local m
    # overlay: the upper layer of a booted system (tests/vm/run --system).
    for m in virtio_pci 9pnet_virtio 9p overlay; do
        modprobe -d "$VM_MODROOT" -S "$VM_KVER" --show-depends "$m" 2>/dev/null |
            awk '$1 == "insmod" {print $2}'
    done | awk '!seen[$0]++'
}

vm_build_initrd() {
    local stamp want
    # Rebuild when the init script, busybox or the module list changes.
    want=$({ cat "$VM_LIB_DIR/guest/init" /bin/busybox; vm_initrd_modules; } | sha256sum | cut -c1-16)
    stamp=$VM_KDIR/initrd.stamp
    [ -e "$VM_INITRD" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0

    # CTest starts a kernel's guest and its offload-NIC build at once, and
    # both come here on a fresh cache: one builds, the other waits for it
    # and then finds it built.
    local lock
    exec {lock}>"$VM_KDIR/initrd.lock" && flock "$lock" ||
        vm_die $VM_EXIT_SETUP "cannot lock $VM_KDIR/initrd.lock"
    if [ -e "$VM_INITRD" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        exec {lock}>&-
        return 0
    fi

    local staging m i=0
    staging=$(mktemp -d "$VM_KDIR/initrd.tmp.XXXXXX") &&
        mkdir -p "$staging"/{bin,modules,dev,proc,sys,mnt} ||
        vm_die $VM_EXIT_SETUP "cannot write a staging directory in $VM_KDIR"
    chmod 755 "$staging"
    mkdir -p "$staging/host"
    cp /bin/busybox "$staging/bin/busybox"
    cp "$VM_LIB_DIR/guest/init" "$staging/init" && chmod 755 "$staging/init"
    # busybox insmod cannot read compressed modules; number them so that the
    # init script loads them in dependency order.
    while read -r m; do
        i=$((i + 1))
        case $m in
            *.xz) xz -dc "$m" > "$staging/modules/$(printf %02d $i)-$(basename "${m%.xz}")" ;;
            *.zst) vm_die $VM_EXIT_SETUP "zstd-compressed modules are not supported ($m)" ;;
            *)   cp "$m" "$staging/modules/$(printf %02d $i)-$(basename "$m")" ;;
        esac || vm_die $VM_EXIT_SETUP "cannot copy module $m"
    done < <(vm_initrd_modules)
    (cd "$staging" && find . | cpio -o -H newc --quiet | gzip -1) > "$VM_INITRD.tmp" ||
        vm_die $VM_EXIT_SETUP "cannot build initramfs"
    mv "$VM_INITRD.tmp" "$VM_INITRD"
    echo "$want" > "$stamp"
    rm -rf "$staging"
    exec {lock}>&-
}

# Start qemu in the background for session directory $1.  Options via
# globals: VM_TLS (1 = load tls, 0 = make tls unloadable), VM_MAX_SECONDS
# (hard limit on the guest's life), VM_SYSTEM_ROOT (a root to boot with
# systemd as PID 1, guest/init).  Writes $1/qemu.pid.
vm_start_qemu() {
    local sess=$1 sec_model=passthrough keep="" path
    # Trees that must stay shared even under /tmp or /run (guest/init).
    for path in "$VM_PROJECT_DIR" "$(vm_cache_dir)" "${ZCTLS_BUILD_DIR:-}" "$PWD" ${VM_KEEP:-}; do
        [ -n "$path" ] || continue
        path=$(realpath -m "$path")
        case $path in
            *[[:space:],]*) vm_die $VM_EXIT_SETUP "'$path' contains whitespace or a comma; the bench cannot pass it to the guest (set ZCTLS_VM_CACHE or move the tree)" ;;
        esac
        keep+=${keep:+,}$path
    done
    # passthrough needs root on the host to create files as the guest's owners.
    [ "$(id -u)" = 0 ] || sec_model=none
    mkdir -p "$sess/jobs" || vm_die $VM_EXIT_SETUP "cannot create $sess"
    rm -f "$sess/ready" "$sess/error" "$sess/stop" "$sess/console.log"
    # The guest's modprobe (also the one the kernel runs to autoload crypto
    # modules) must look at the unpacked kernel's modules, which the host's
    # /lib/modules does not have.
    cat > "$sess/modprobe" <<EOS
#!/bin/sh
exec /sbin/modprobe -d '$VM_MODROOT' "\$@"
EOS
    chmod 755 "$sess/modprobe"

    # -nodefaults: no VGA, no NIC, no default serial; one serial port to a
    # log.  Loopback is the only network, by design.
    setsid timeout --kill-after=5 "${VM_MAX_SECONDS:-3600}" \
        qemu-system-x86_64 -accel tcg -cpu max -m "${ZCTLS_VM_MEMORY:-1024}" \
        -smp "${ZCTLS_VM_CPUS:-2}" -nodefaults -display none -no-reboot \
        -serial "file:$sess/console.log" \
        -kernel "$VM_VMLINUZ" -initrd "$VM_INITRD" \
        -append "console=ttyS0 quiet panic=-1 zctls.session=$sess zctls.agent=$VM_LIB_DIR/guest/agent zctls.keep=$keep zctls.tls=${VM_TLS:-1} zctls.idle=${VM_IDLE_SECONDS:-900}${VM_KCONFIG:+ zctls.kconfig=$VM_KCONFIG}${VM_SYSTEM_ROOT:+ zctls.system=$VM_SYSTEM_ROOT zctls.modules=$VM_MODROOT/lib/modules/$VM_KVER}" \
        -virtfs "local,path=/,mount_tag=hostroot,security_model=$sec_model,id=hostroot,multidevs=remap" \
        </dev/null >"$sess/qemu.log" 2>&1 &
    echo $! > "$sess/qemu.pid"
}

vm_qemu_alive() { kill -0 "$(cat "$1/qemu.pid" 2>/dev/null)" 2>/dev/null; }

vm_guest_failure() {
    local sess=$1
    [ -s "$sess/error" ] && vm_log "guest: $(cat "$sess/error")"
    if [ -s "$sess/qemu.log" ]; then vm_log "qemu: $(tail -5 "$sess/qemu.log")"; fi
    if [ -s "$sess/console.log" ]; then
        vm_log "last lines of the guest console ($sess/console.log):"
        tail -15 "$sess/console.log" | sed 's/^/    /' >&2
    fi
}

# Wait until the guest agent reports ready.  $2 = timeout in seconds.
vm_wait_ready() {
    local sess=$1 limit=$2 start=$SECONDS
    while [ ! -e "$sess/ready" ]; do
        if [ -e "$sess/error" ] || ! vm_qemu_alive "$sess"; then
            sleep 0.2
            vm_guest_failure "$sess"
            vm_stop_qemu "$sess"
            vm_die $VM_EXIT_GUEST "the guest failed to boot ($VM_KVER)"
        fi
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            vm_guest_failure "$sess"
            vm_stop_qemu "$sess"
            vm_die $VM_EXIT_TIMEOUT "the guest did not come up within ${limit}s ($VM_KVER)"
        fi
        sleep 0.1
    done
}

# Ask the agent to power off; kill qemu if it does not within 20 s.
vm_stop_qemu() {
    local sess=$1 pid i
    pid=$(cat "$sess/qemu.pid" 2>/dev/null) || return 0
    touch "$sess/stop"
    for i in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        vm_log "guest did not power off; killing qemu"
        kill -- -"$pid" 2>/dev/null || kill "$pid" 2>/dev/null
    fi
    rm -f "$sess/qemu.pid"
}

# Quote a command line for the guest's bash.
vm_quote() { local a out=""; for a in "$@"; do out+=$(printf '%q ' "$a"); done; echo "$out"; }

# Submit "$@" as a job to session $sess, stream its stdout/stderr, return its
# exit status.  The job runs in the caller's working directory with a small,
# explicit environment: PATH, HOME, LANG, TERM and every ZCTLS_*, GTEST_*,
# sanitizer option (ASAN_* UBSAN_* LSAN_* TSAN_*) and
# CTEST_* variable of the caller.
vm_exec() {
    local sess=$1 timeout=$2; shift 2
    local job name v
    job=$(mktemp -d "$sess/jobs/XXXXXX.new") || vm_die $VM_EXIT_SETUP "cannot create a job in $sess"
    {
        echo "cd $(vm_quote "$PWD") || exit $VM_EXIT_GUEST"
        echo "export PATH=$(vm_quote "${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}")"
        echo "export HOME=/root LANG=C.UTF-8 TERM=dumb"
        while read -r name; do
            v=${!name}
            echo "export $name=$(vm_quote "$v")"
        done < <(compgen -e | grep -E '^(ZCTLS_|GTEST_|CTEST_|ASAN_|UBSAN_|LSAN_|TSAN_)')
        echo "exec $(vm_quote "$@")"
    } > "$job/cmd"
    local running=${job%.new}.job
    mv "$job" "$running" || vm_die $VM_EXIT_SETUP "cannot submit the job"
    vm_stream_job "$sess" "$running" "$timeout"
}

# Copy the bytes of file $1 past offset $2 to fd $3; leave the new offset in
# VM_OFFSET (not printed: the copy itself goes to stdout).
vm_copy_new() {
    local file=$1 off=$2 fd=$3 size
    size=$(stat -c %s "$file" 2>/dev/null || echo 0)
    if [ "$size" -gt "$off" ]; then
        tail -c +$((off + 1)) "$file" | head -c $((size - off)) >&"$fd"
    fi
    VM_OFFSET=$size
}

vm_stream_job() {
    local sess=$1 job=$2 timeout=$3 start=$SECONDS out_off=0 err_off=0 finished
    local dir
    while :; do
        # The agent renames NAME.job to NAME.run when it claims the job.
        dir=$job; [ -d "$dir" ] || dir=${job%.job}.run
        finished=0; [ -e "$dir/rc" ] && finished=1
        vm_copy_new "$dir/stdout" "$out_off" 1; out_off=$VM_OFFSET
        vm_copy_new "$dir/stderr" "$err_off" 2; err_off=$VM_OFFSET
        if [ $finished = 1 ]; then
            local rc; rc=$(cat "$dir/rc")
            rm -rf "$dir"
            return "$rc"
        fi
        if ! vm_qemu_alive "$sess"; then
            vm_guest_failure "$sess"
            vm_die $VM_EXIT_GUEST "the guest went away while running the command"
        fi
        if [ "$timeout" -gt 0 ] && [ $((SECONDS - start)) -ge "$timeout" ]; then
            touch "$dir/kill"
            vm_die $VM_EXIT_TIMEOUT "the command did not finish within ${timeout}s"
        fi
        sleep 0.1
    done
}
