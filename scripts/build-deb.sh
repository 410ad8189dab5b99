#!/usr/bin/env bash
# Build the Debian package of Paddock from the release binary (dpkg-deb, no other tool):
#
#   scripts/build-deb.sh [--bin target/release/paddock] [--out target/debian]
#
# The package: /usr/bin/paddock, the systemd unit (paddock server /etc/paddock/zoo.cfg as the
# paddock user), /etc/paddock/zoo.cfg (a conffile), data in /var/lib/paddock; the maintainer
# scripts make the user and directory and, on purge, remove them (packaging/deb/).
# Prints the path of the .deb.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$repo/target/release/paddock
out=$repo/target/debian
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--bin PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "build-deb: $bin is missing (cargo build --release)" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d "${TMPDIR:-/tmp}/paddock-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/paddock_${version}_$arch
src=$repo/packaging/deb

install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/paddock" \
    "$root/usr/share/doc/paddock"
# The release profile keeps line tables for backtraces; the package ships without them.
objcopy --strip-debug "$bin" "$root/usr/bin/paddock"
chmod 755 "$root/usr/bin/paddock"
install -m 644 "$src/paddock.service" "$root/lib/systemd/system/paddock.service"
install -m 644 "$src/zoo.cfg" "$root/etc/paddock/zoo.cfg"
install -m 644 "$repo/README.md" "$repo/docs/operations.md" "$root/usr/share/doc/paddock/"
install -m 755 "$src/postinst" "$src/prerm" "$src/postrm" "$root/DEBIAN/"
echo /etc/paddock/zoo.cfg >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: paddock
Version: $version
Architecture: $arch
Maintainer: Paddock developers <paddock@localhost>
Installed-Size: $size
Depends: adduser, libc6
Recommends: libgssapi-krb5-2
Section: net
Priority: optional
Description: ZooKeeper-compatible distributed coordination service
 Paddock speaks ZooKeeper 3.8's client protocol, so ZooKeeper clients (Java, zkCli.sh,
 kazoo, Curator, the C client) work with it unchanged. It runs standalone or as a
 replicated ensemble, with ZooKeeper's zoo.cfg, four-letter words, AdminServer and
 Prometheus metrics.
CONTROL
mkdir -p "$out"
dpkg-deb --root-owner-group --build "$root" "$out/" >/dev/null
echo "$out/paddock_${version}_$arch.deb"
