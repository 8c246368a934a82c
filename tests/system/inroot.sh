#!/usr/bin/env bash
# Runs a scenario script as root inside a throwaway Debian root: a fresh overlay over the cached
# root from scripts/debroot, in new mount and PID namespaces (the scenario's shell is the
# namespace's PID 1's child; when this script ends, every process left in the namespace dies).
# Usage: inroot.sh DEB SCENARIO [ARGS...]
#   DEB       the vigil .deb (copied to /tmp/vigil.deb inside; the scenario installs it)
#   SCENARIO  a shell script (copied to /tmp/scenario.sh inside, run with ARGS)
# Extra files: every path in $INROOT_FILES (space-separated) is copied to /tmp inside.
# Exit: the scenario's exit code; 111 when the root cannot be built or mounted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deb=$1
scenario=$2
shift 2
root=$("$here/../../scripts/debroot") || exit 111
work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-inroot.XXXXXX")
trap 'umount -R "$work/m" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/u" "$work/w" "$work/m"
cp "$deb" "$work/vigil.deb"
cp "$scenario" "$work/scenario.sh"
for f in ${INROOT_FILES:-}; do cp "$f" "$work/"; done

# Everything below runs in the namespaces; the mounts vanish with them.
unshare --mount --pid --fork --propagation private bash -s -- "$root" "$work" "$@" <<'INNER'
set -eu
root=$1 work=$2
shift 2
m=$work/m
mount -t overlay overlay -o "lowerdir=$root,upperdir=$work/u,workdir=$work/w" "$m"
mount -t proc proc "$m/proc"
mount --rbind /dev "$m/dev"
mount -t tmpfs -o mode=0755 tmpfs "$m/run"
mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
cp "$work/vigil.deb" "$work/scenario.sh" "$m/tmp/"
for f in "$work"/*; do [ -f "$f" ] && cp "$f" "$m/tmp/"; done
rc=0
chroot "$m" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM=dumb /bin/sh /tmp/scenario.sh "$@" || rc=$?
exit $rc
INNER
