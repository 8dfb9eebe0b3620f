# Sourced by scripts/vm-image and scripts/deb-check: an initramfs root with
# busybox and Debian's kernel modules, and the kernel next to it. Downloads
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
