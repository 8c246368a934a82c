# Helpers for scenario scripts run inside the throwaway root (POSIX sh).
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "$*" >&2; }
# now_ms: wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# Waits until supervise runs in $1 (blocking open of supervise/ok for writing; $2 s at most).
wait_supervised() {
	[ -p "$1/supervise/ok" ] || { mkdir -p "$1/supervise"; mkfifo -m 600 "$1/supervise/ok" 2>/dev/null || true; }
	timeout "${2:-5}" sh -c 'exec 3>"$1"' x "$1/supervise/ok" || fail "$1 not supervised within ${2:-5} s"
}
# Pids of live processes (not zombies) other than this shell's own family, whose command line
# matches the extended regex $1.
procs() {
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ "$p" = 1 ] && continue
		[ "$p" = $$ ] && continue
		st=$(sed -n 's/^State:\t\(.\).*/\1/p' "$d/status" 2>/dev/null) || continue
		[ "$st" = Z ] && continue
		cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
		case "$cmd" in *scenario.sh*|"") continue ;; esac
		printf '%s\n' "$cmd" | grep -Eq -- "$1" && echo "$p $cmd"
	done
	return 0
}
# Fails if any process matching $1 is left.
assert_none() {
	left=$(procs "$1")
	[ -z "$left" ] || fail "processes left behind: $left"
}
