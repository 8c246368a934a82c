#!/bin/sh
# Inside the throwaway root (with Debian's openrc): the vigil OpenRC service (svscan), OpenRC's
# own supervisor=runit backend driving a service under our svscan, and vigil's backend
# (/usr/lib/vigil/openrc.sh). Prints "TIME kind op ms" lines for the caller to report.
# Usage: openrc.sh SV...   each SV is `runit` (runit's sv, kept aside before vigil is installed)
#                          or `vigil` (vigil's own sv; only when `vigil --list` has it)
set -eu
. /tmp/lib.sh
svs=${*:-runit}

# Keep runit's sv whatever happens to the runit package.
mkdir -p /opt/runit-sv
cp /usr/bin/sv /opt/runit-sv/sv
if dpkg-deb -f /tmp/vigil.deb Conflicts | grep -qw runit; then
	dpkg --purge --force-depends runit >/dev/null
fi
dpkg -i /tmp/vigil.deb >/tmp/dpkg.out 2>&1 || { cat /tmp/dpkg.out >&2; fail "dpkg -i"; }

# OpenRC did not boot this root: tell it that it did, without cgroups.
mkdir -p /run/openrc
for d in daemons exclusive failed hotplugged inactive options scheduled started starting \
	stopping tmp wasinactive; do
	mkdir -p "/run/openrc/$d"
done
touch /run/openrc/softlevel
sed -i 's/^#\?rc_cgroup_mode=.*/rc_cgroup_mode="none"/' /etc/rc.conf
grep -q '^rc_cgroup_mode="none"' /etc/rc.conf || echo 'rc_cgroup_mode="none"' >>/etc/rc.conf

timed() { # timed KIND OP CMD...: runs CMD, prints its time, returns its status
	kind=$1 op=$2
	shift 2
	t0=$(date +%s%N)
	rc=0
	"$@" >/tmp/timed.out 2>&1 || rc=$?
	t1=$(date +%s%N)
	echo "TIME $kind $op $(((t1 - t0) / 1000000)) rc=$rc"
	[ $rc -eq 0 ] || sed 's/^/  | /' /tmp/timed.out >&2
	return $rc
}
mkservice() { # mkservice DIR [RUN-BODY]
	mkdir -p "$1"
	printf '#!/bin/sh\n%s\n' "${2:-exec sleep 1000}" >"$1/run"
	chmod +x "$1/run"
}

# --- 1. the vigil service: svscan on /etc/service ---------------------------------------------
mkservice /etc/service/static 'echo static up; exec sleep 1000'
timed scanner start rc-service vigil start || fail "rc-service vigil start"
pid=$(cat /run/vigil.pid)
grep -q svscan "/proc/$pid/cmdline" || fail "no svscan at pid $pid"
# Start returned after svscan's READY=1: its first scan has started static's supervise.
timeout 5 sh -c 'exec 3>/etc/service/static/supervise/ok' || fail "static not supervised"
svc -u -W u -T 5000 /etc/service/static || fail "static not up"
rc-service vigil status >/tmp/st 2>&1 || fail "vigil status: $(cat /tmp/st)"
note "vigil status: $(cat /tmp/st)"

# OpenRC's own cost of one start and stop: an init script whose start and stop do nothing.
printf '#!/sbin/openrc-run\nstart() { :; }\nstop() { :; }\n' >/etc/init.d/noop
chmod +x /etc/init.d/noop
rc-service noop status >/dev/null 2>&1 || true
for i in 1 2 3; do
	timed noop start rc-service noop start || fail "noop start"
	timed noop stop rc-service noop stop || fail "noop stop"
done

# --- 2. vigil's backend ----------------------------------------------------------------------
mkservice /etc/sv/ours
cat >/etc/init.d/ours <<'INIT'
#!/sbin/openrc-run
. /usr/lib/vigil/openrc.sh
vigil_service=/etc/sv/ours
INIT
chmod +x /etc/init.d/ours
# The first rc-service call builds OpenRC's dependency cache: not part of a start.
rc-service ours status >/dev/null 2>&1 || true
for i in 1 2 3 4 5; do
	timed ours start rc-service ours start || fail "ours start"
	[ "$(readlink /etc/service/ours)" = /etc/sv/ours ] || fail "ours not linked"
	svstat /etc/sv/ours | grep -q ': up ' || fail "ours not up after start"
	rc-service ours status >/tmp/st 2>&1 || fail "ours status after start: $(cat /tmp/st)"
	[ $i -eq 1 ] && note "ours status: $(cat /tmp/st)"
	timed ours stop rc-service ours stop || fail "ours stop"
	[ ! -e /etc/service/ours ] || fail "ours still linked after stop"
	assert_none 'svscan.*ours|supervise ours'
	rc=0; rc-service ours status >/tmp/st 2>&1 || rc=$?
	[ $rc -eq 3 ] || fail "ours status after stop: rc $rc $(cat /tmp/st)"
done
# crashed: up for OpenRC, down behind its back.
rc-service ours start >/dev/null 2>&1 || fail "ours start"
svc -d -W d -T 5000 /etc/sv/ours
rc=0; rc-service ours status >/tmp/st 2>&1 || rc=$?
[ $rc -eq 32 ] || fail "ours status when down behind OpenRC: rc $rc $(cat /tmp/st)"
note "ours status when down behind OpenRC's back: rc $rc $(cat /tmp/st)"
rc-service ours stop >/dev/null 2>&1 || fail "ours stop of a crashed service"

# Readiness: ready 300 ms after start (notification-fd 3).
mkservice /etc/sv/ready 'sleep 0.3; echo >&3; exec sleep 1000'
echo 3 >/etc/sv/ready/notification-fd
sed 's/ours/ready/g' /etc/init.d/ours >/etc/init.d/ready
chmod +x /etc/init.d/ready
timed ready start rc-service ready start || fail "ready start"
svstat -l /etc/sv/ready | grep -q ready || fail "ready: not ready after start"
rc-service ready stop >/dev/null 2>&1 || fail "ready stop"

# Never ready: start fails after vigil_timeout_up, the service is down and unlinked.
mkservice /etc/sv/never 'exec sleep 1000'
echo 3 >/etc/sv/never/notification-fd
printf '#!/sbin/openrc-run\n. /usr/lib/vigil/openrc.sh\nvigil_service=/etc/sv/never\nvigil_timeout_up=500\n' >/etc/init.d/never
chmod +x /etc/init.d/never
rc=0; timed never start rc-service never start || rc=$?
[ $rc -ne 0 ] || fail "never: start succeeded without readiness"
[ ! -e /etc/service/never ] || fail "never still linked after failed start"
rc-service never status >/dev/null 2>&1 && fail "never: status says started"
rc=0; svwait -u -t 5000 /etc/sv/never 2>/dev/null || rc=$?
[ $rc -eq 102 ] || fail "never: supervise still there (svwait $rc)"
assert_none 'sleep 1000.*never'

# Stubborn: ignores TERM; stop escalates to KILL after vigil_timeout_down.
mkservice /etc/sv/stubborn "trap '' TERM; sleep 1000 & wait; wait"
printf '#!/sbin/openrc-run\n. /usr/lib/vigil/openrc.sh\nvigil_service=/etc/sv/stubborn\nvigil_timeout_down=500\n' >/etc/init.d/stubborn
chmod +x /etc/init.d/stubborn
rc-service stubborn start >/dev/null 2>&1 || fail "stubborn start"
spid=$(svstat /etc/sv/stubborn | sed -n 's/.*(pid \([0-9]*\)).*/\1/p')
timed stubborn stop rc-service stubborn stop || fail "stubborn stop"
[ ! -d "/proc/$spid" ] || fail "stubborn's run (pid $spid) survived stop"

# --- 3. OpenRC's supervisor=runit under a second vigil scanner on $RC_SVCDIR/sv ---------------
ln -s vigil /etc/init.d/vigil.runit
printf 'SCANDIR=/run/openrc/sv\nSVSCAN_LOG=/var/log/vigil.runit.log\n' >/etc/conf.d/vigil.runit
timed scanner.runit start rc-service vigil.runit start || fail "vigil.runit start"
mkservice /etc/sv/rtest
for sv in $svs; do
	mkdir -p "/opt/sv-$sv"
	case $sv in
	runit) ln -sf /opt/runit-sv/sv "/opt/sv-$sv/sv" ;;
	vigil) ln -sf /usr/bin/vigil "/opt/sv-$sv/sv" ;;
	esac
	cat >/etc/init.d/rtest <<INIT
#!/sbin/openrc-run
# OpenRC's own runit backend; the sv it runs is the first on PATH.
PATH=/opt/sv-$sv:\$PATH
supervisor=runit
runit_service=/etc/sv/rtest
depend() { need vigil.runit; }
INIT
	chmod +x /etc/init.d/rtest
	rc-service rtest status >/dev/null 2>&1 || true
	for i in 1 2 3; do
		timed "runit-$sv" start rc-service rtest start || fail "rtest start ($sv)"
		svstat /etc/sv/rtest | grep -q ': up ' || fail "rtest not up ($sv)"
		rc-service rtest status >/tmp/st 2>&1 || fail "rtest status ($sv): $(cat /tmp/st)"
		[ $i -eq 1 ] && note "runit backend ($sv sv) status: $(cat /tmp/st)"
		timed "runit-$sv" stop rc-service rtest stop || fail "rtest stop ($sv)"
		svstat /etc/sv/rtest | grep -q ': up ' && fail "rtest still up ($sv)"
		[ ! -e /run/openrc/sv/rtest ] || fail "rtest still linked ($sv)"
	done
done

# --- stop everything: no process may be left ------------------------------------------------
timed scanner.runit stop rc-service vigil.runit stop || fail "vigil.runit stop"
timed scanner stop rc-service vigil stop || fail "vigil stop"
assert_none 'svscan|supervise|sleep 1000|multilog'
echo "openrc: ok"
