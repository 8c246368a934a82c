#!/bin/sh
# Inside the throwaway root: install the vigil .deb with dpkg -i, check what it put where, run a
# service (with a multilog logger) from /etc/service through it, and run scripts written for
# daemontools (setuidgid envdir softlimit) and runit (chpst) with neither installed; stop it all,
# remove the package.
set -eu
. /tmp/lib.sh

# runit's package has the same sv/chpst names once vigil ships them: then it must go first.
if dpkg-deb -f /tmp/vigil.deb Conflicts | grep -qw runit; then
	dpkg --purge --force-depends runit >/dev/null
fi
dpkg -i /tmp/vigil.deb >/tmp/dpkg.out 2>&1 || { cat /tmp/dpkg.out >&2; fail "dpkg -i"; }
note "dpkg -i: $(tail -n 1 /tmp/dpkg.out)"
dpkg -s vigil | grep -q '^Status: install ok installed' || fail "vigil not installed"
for n in $(vigil --list); do
	[ "$(readlink "/usr/bin/$n")" = vigil ] || fail "/usr/bin/$n is not a link to vigil"
	[ -e "/usr/share/man/man8/$n.8.gz" ] || note "note: no man page for $n"
done
test -f /usr/lib/vigil/openrc.sh || fail "openrc.sh missing"
test -x /etc/init.d/vigil || fail "/etc/init.d/vigil missing"
test -f /lib/systemd/system/vigil.service || fail "vigil.service missing"
# Nothing started on install.
assert_none 'svscan|supervise'
note "installed: $(dpkg -L vigil | wc -l) paths; programs: $(vigil --list | tr '\n' ' ')"

mkdir -p /etc/service/hello/log
cat >/etc/service/hello/run <<'RUN'
#!/bin/sh
echo "hello from $$"
exec sleep 1000
RUN
cat >/etc/service/hello/log/run <<'RUN'
#!/bin/sh
exec multilog t ./main
RUN
chmod +x /etc/service/hello/run /etc/service/hello/log/run
svscan /etc/service >/tmp/svscan.out 2>&1 &
scan=$!
wait_supervised /etc/service/hello
svc -u -W u -T 5000 /etc/service/hello || fail "hello not up"
svstat /etc/service/hello /etc/service/hello/log >&2
i=0
until grep -q 'hello from' /etc/service/hello/log/main/current 2>/dev/null; do
	# The logger is asynchronous: wait for the line, bounded (0.05 s steps, 5 s).
	i=$((i + 1)); [ $i -lt 100 ] || fail "no log line"; sleep 0.05
done
note "log: $(cat /etc/service/hello/log/main/current | tai64nlocal)"

# Run scripts as daemontools and runit users write them, with neither package on the machine:
# setuidgid/envdir/softlimit and chpst are vigil's.
! dpkg -s daemontools >/dev/null 2>&1 || fail "daemontools is installed in the root"
! dpkg -s runit >/dev/null 2>&1 || fail "runit is installed in the root"
for p in setuidgid envdir softlimit chpst; do
	[ "$(readlink "$(command -v $p)")" = vigil ] || fail "$p is not vigil's"
done
for s in dt rn; do
	mkdir -p /etc/service/$s/env
	echo "hello-$s" >/etc/service/$s/env/GREETING
done
cat >/etc/service/dt/run <<'RUN'
#!/bin/sh
exec setuidgid nobody envdir ./env softlimit -d 200000000 \
	sh -c 'echo "$GREETING uid=$(id -u) gid=$(id -g) $(grep "Max data size" /proc/self/limits | tr -s " ")" >/tmp/dt.out; exec sleep 1000'
RUN
cat >/etc/service/rn/run <<'RUN'
#!/bin/sh
exec chpst -u nobody -e ./env -d 200000000 \
	sh -c 'echo "$GREETING uid=$(id -u) gid=$(id -g) $(grep "Max data size" /proc/self/limits | tr -s " ")" >/tmp/rn.out; exec sleep 1000'
RUN
chmod +x /etc/service/dt/run /etc/service/rn/run
nobody=$(id -u nobody)
for s in dt rn; do
	wait_supervised /etc/service/$s
	svc -u -W u -T 5000 /etc/service/$s || fail "$s not up"
	i=0
	until [ -s /tmp/$s.out ]; do
		i=$((i + 1)); [ $i -lt 100 ] || fail "$s wrote nothing"; sleep 0.05
	done
	line=$(cat /tmp/$s.out)
	note "$s: $line"
	case $line in
	"hello-$s uid=$nobody gid=$(id -g nobody) Max data size 200000000 "*) ;;
	*) fail "$s: unexpected: $line" ;;
	esac
done
kill -TERM $scan
wait $scan || fail "svscan exit $?"
assert_none 'svscan|supervise|sleep 1000|multilog'
dpkg -r vigil >/dev/null || fail "dpkg -r"
[ ! -e /usr/bin/svscan ] || fail "/usr/bin/svscan left after dpkg -r"
echo "deb: ok"
