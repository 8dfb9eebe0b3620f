# Sourced by scripts/vm-image, vm-check and deb-check: an initramfs root with
# busybox and Debian's kernel modules, the kernel next to it, and booting it
# under qemu to check the sample app answers. Downloads
# (linux-image-amd64, busybox-static) are cached in target/vm/cache.

vm_cache=target/vm/cache

# debian_package NAME: the path of NAME's .deb, downloaded into the cache once.
debian_package() {
    local deb
    mkdir -p "$vm_cache"
    deb=$(ls "$vm_cache/$1"_*.deb 2>/dev/null | head -1)
    if [ -z "$deb" ]; then
        (cd "$vm_cache" && apt-get download -q "$1" >&2 2>/dev/null) \
            || { apt_update && (cd "$vm_cache" && apt-get download -q "$1" >&2); }
        deb=$(ls "$vm_cache/$1"_*.deb | head -1)
    fi
    echo "$deb"
}

# vm_root WORK KERNEL_OUT MODULE...: makes WORK/root, an initramfs tree with
# busybox (every applet linked in /bin) and MODULE... plus the modules they
# depend on, numbered in load order in /lib/modules; copies the kernel to
# KERNEL_OUT. Sets $kernel_package.
vm_root() {
    local work=$1 kernel_out=$2 root=$1/root
    shift 2
    mkdir -p "$root"/{bin,usr/bin,etc,proc,sys,dev,tmp,lib/modules}
    apt-cache show linux-image-amd64 >/dev/null 2>&1 || apt_update
    kernel_package=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
    [ -n "$kernel_package" ] || { echo "cannot resolve linux-image-amd64 to a kernel package" >&2; return 1; }
    dpkg-deb -x "$(debian_package "$kernel_package")" "$work/kernel"
    cp "$work"/kernel/boot/vmlinuz-* "$kernel_out"
    local loaded=" " order=0
    # Depth first, so every module comes after what it depends on.
    add_module() {
        local name=$1 file dep
        case "$loaded" in *" $name "*) return 0 ;; esac
        file=$(find "$work/kernel/lib/modules" -name "$name.ko" | head -1)
        [ -n "$file" ] || { echo "$kernel_package has no $name.ko" >&2; return 1; }
        for dep in $(grep -ao 'depends=[a-z0-9_,-]*' "$file" | head -1 | cut -d= -f2 | tr , ' '); do
            add_module "$dep"
        done
        order=$((order + 1))
        cp "$file" "$root/lib/modules/$(printf %02d "$order")-$name.ko"
        loaded="$loaded$name "
    }
    local module
    for module in "$@"; do add_module "$module"; done

    dpkg-deb -x "$(debian_package busybox-static)" "$work/busybox"
    vm_busybox=$work/busybox/bin/busybox
    install -m 0755 "$vm_busybox" "$root/bin/busybox"
    local applet
    for applet in $("$vm_busybox" --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
}

# vm_pack ROOT OUT: the xz-compressed newc initramfs of ROOT. The kernel's xz
# decoder checks CRC32 only and allocates the whole dictionary: 1 MiB keeps
# a small VM able to unpack it.
vm_pack() {
    need_command xz xz-utils
    (cd "$1" && find . | LC_ALL=C sort | "$vm_busybox" cpio -o -H newc -R 0:0 2>/dev/null) \
        | xz --check=crc32 --lzma2=preset=9,dict=1MiB >"$2"
}

# vm_boot KERNEL INITRD MEMORY LOG GUEST_PORT APPEND [QEMU ARGS...]: starts
# qemu-system-x86_64 in the background with GUEST_PORT forwarded to a free
# host port, the console in LOG; sets $vm_pid and $vm_port. Software
# emulation: /dev/kvm exists on some machines where KVM hangs.
vm_boot() {
    local kernel=$1 initrd=$2 memory=$3 log=$4 guest_port=$5 append=$6
    shift 6
    need_command qemu-system-x86_64 qemu-system-x86
    vm_port=$(free_port)
    qemu-system-x86_64 -accel tcg -m "$memory" -display none -monitor none -no-reboot \
        -serial "file:$log" -kernel "$kernel" -initrd "$initrd" -append "$append" \
        -nic "user,model=e1000,hostfwd=tcp:127.0.0.1:$vm_port-:$guest_port" "$@" 2>>"$log" &
    vm_pid=$!
}

# vm_fail LOG MESSAGE: prints the console log and MESSAGE, and exits.
vm_fail() {
    cat "$1"
    echo "$2" >&2
    exit 1
}

# vm_wait_for_app LOG SECONDS: waits until the sample app (boards/app) answers
# /hello on $vm_port, failing when the VM stops or SECONDS pass.
vm_wait_for_app() {
    local deadline=$(($(date +%s) + $2))
    need_command curl curl
    until curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$vm_port/hello"; do
        kill -0 "$vm_pid" 2>/dev/null || vm_fail "$1" "the VM stopped before the app answered"
        [ "$(date +%s)" -lt "$deadline" ] || vm_fail "$1" "the app did not answer on the forwarded port within $2 s"
        sleep 0.5
    done
}

# vm_expect LOG PATH BODY: GET PATH on $vm_port must answer BODY.
vm_expect() {
    local got
    got=$(curl -sS --max-time 30 "http://127.0.0.1:$vm_port$2")
    [ "$got" = "$3" ] || vm_fail "$1" "$2 answered '$got', expected '$3'"
}
