#!/usr/bin/env bash
# Start / stop / inspect a throw-away single-node Slurm cluster on localhost.
#
#   cluster.sh start  STATE_DIR   # writes config under STATE_DIR, starts daemons,
#                                 # waits until the node is idle, prints env lines
#   cluster.sh stop   STATE_DIR   # cancels jobs, stops what `start` started (idempotent)
#   cluster.sh status STATE_DIR   # exit 0 if slurmctld+slurmd are up and answering
#
# stdout of `start` is ONLY the env lines (e.g. `export SLURM_CONF=...`), so a
# caller may do:  eval "$(tests/slurm/cluster.sh start /tmp/slurm)"
# The same lines are written to STATE_DIR/env.sh. Progress goes to stderr.
#
# Needs root (slurmd and SlurmUser=root). Designed for Debian 12 (Slurm 22.05),
# VMs/containers without systemd or cgroup delegation. Every wait is bounded.
#
# Tunables (environment):
#   SLURM_TEST_CTLD_PORT  (default 6817)   SLURM_TEST_SLURMD_PORT (default 6818)
#   SLURM_TEST_START_TIMEOUT  seconds to wait for the node to become idle (default 90)
#   SLURM_TEST_MIN_JOB_AGE    seconds finished jobs stay visible in scontrol (default 60)
#   SLURM_TEST_CRED_EXPIRE    AuthInfo cred_expire = delay before a requeued job restarts (default 10)
#   SLURM_TEST_SMOKE=0        skip the smoke job `start` runs to prove jobs really execute
#   SLURM_TEST_KEEP_STATE=1   keep slurmctld state (queued jobs) and log/jobcomp.txt on start
#   SLURM_TEST_CGROUP_VARIANTS  override the cgroup.conf variants tried, in order
#                             (autodetect v1 v2-systemd-fallback v2-nosystemd)
#   SLURM_TEST_NO_INSTALL=1   never run apt-get
set -euo pipefail

PROG=$(basename "$0")
log() { printf '[%s %s] %s\n' "$PROG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    echo "usage: $PROG start|stop|status STATE_DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
CMD=$1
STATE_DIR=$2
case "$STATE_DIR" in
    /*) ;;
    *) STATE_DIR="$(pwd)/$STATE_DIR" ;;
esac
STATE_DIR=${STATE_DIR%/}

CTLD_PORT=${SLURM_TEST_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_TEST_SLURMD_PORT:-6818}
START_TIMEOUT=${SLURM_TEST_START_TIMEOUT:-90}
MIN_JOB_AGE=${SLURM_TEST_MIN_JOB_AGE:-60}
CRED_EXPIRE=${SLURM_TEST_CRED_EXPIRE:-10}

CONF="$STATE_DIR/slurm.conf"
LOGDIR="$STATE_DIR/log"
RUNDIR="$STATE_DIR/run"
CTLD_PID="$RUNDIR/slurmctld.pid"
SLURMD_PID="$RUNDIR/slurmd.pid"
MUNGED_MARK="$RUNDIR/munged.started-by-us"
ENV_FILE="$STATE_DIR/env.sh"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_SOCKET_DIR=/run/munge
MUNGE_PIDFILE=/run/munge/munged.pid

export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------- helpers

node_name() {
    local h
    h=$(hostname -s 2>/dev/null || true)
    # Slurm node names: keep it simple; fall back to localhost.
    if [ -z "$h" ] || ! printf '%s' "$h" | grep -Eq '^[A-Za-z][A-Za-z0-9-]*$'; then
        h=localhost
    fi
    printf '%s\n' "$h"
}

pid_alive() { # pidfile
    local p
    [ -f "$1" ] || return 1
    p=$(cat "$1" 2>/dev/null || true)
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

# kill_pidfile PIDFILE NAME: TERM, wait up to 15 s, then KILL.
kill_pidfile() {
    local f=$1 name=$2 p i
    [ -f "$f" ] || return 0
    p=$(cat "$f" 2>/dev/null || true)
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
        log "stopping $name (pid $p)"
        kill -TERM "$p" 2>/dev/null || true
        for i in $(seq 1 30); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$p" 2>/dev/null; then
            log "$name did not exit after 15 s, sending KILL"
            kill -KILL "$p" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    rm -f "$f"
}

munge_ok() { timeout 10 munge -n </dev/null 2>/dev/null | timeout 10 unmunge >/dev/null 2>&1; }

have_binaries() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v sinfo >/dev/null &&
        command -v munged >/dev/null && command -v munge >/dev/null
}

ensure_installed() {
    have_binaries && return 0
    [ "${SLURM_TEST_NO_INSTALL:-}" = 1 ] && die "slurm-wlm/munge not installed and SLURM_TEST_NO_INSTALL=1"
    command -v apt-get >/dev/null || die "slurm-wlm/munge not installed and no apt-get"
    log "installing slurm-wlm munge with apt-get"
    if ! timeout 900 apt-get install -y -q slurm-wlm munge </dev/null >&2; then
        log "apt-get install failed; retrying after apt-get update"
        timeout 600 apt-get update -q </dev/null >&2 || die "apt-get update failed"
        timeout 900 apt-get install -y -q slurm-wlm munge </dev/null >&2 || die "apt-get install slurm-wlm munge failed"
    fi
    have_binaries || die "slurm/munge binaries still missing after install"
}

ensure_munge() {
    if munge_ok; then
        log "munged already running"
        return 0
    fi
    getent passwd munge >/dev/null || die "user 'munge' does not exist (munge package broken?)"
    install -d -o munge -g munge -m 0700 /etc/munge
    if [ ! -s "$MUNGE_KEY" ]; then
        log "creating munge key $MUNGE_KEY"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE_KEY" --force >&2
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    install -d -o munge -g munge -m 0755 "$MUNGE_SOCKET_DIR"
    install -d -o munge -g munge -m 0711 /var/lib/munge
    install -d -o munge -g munge -m 0700 /var/log/munge
    # a stale socket/pidfile from a dead munged makes munged refuse to start
    if [ -f "$MUNGE_PIDFILE" ] && ! pid_alive "$MUNGE_PIDFILE"; then
        rm -f "$MUNGE_PIDFILE" "$MUNGE_SOCKET_DIR"/munge.socket.2*
    fi
    log "starting munged"
    timeout 30 runuser -u munge -- /usr/sbin/munged </dev/null >>"$LOGDIR/munged.start.log" 2>&1 ||
        die "munged failed to start: $(tail -n 5 "$LOGDIR/munged.start.log" 2>/dev/null; tail -n 5 /var/log/munge/munged.log 2>/dev/null)"
    local i
    for i in $(seq 1 40); do
        munge_ok && break
        sleep 0.25
    done
    munge_ok || die "munged started but munge -n | unmunge fails; see /var/log/munge/munged.log"
    cp "$MUNGE_PIDFILE" "$MUNGED_MARK" 2>/dev/null || echo unknown >"$MUNGED_MARK"
}

write_config() {
    local node cpus mem_total realmem
    node=$(node_name)
    cpus=$(nproc)
    # same number as `free -m` total, without needing procps
    mem_total=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    # a bit below the real total so slurmd never thinks it has less than configured
    realmem=$((mem_total * 90 / 100))
    [ "$realmem" -ge 1 ] || realmem=1

    install -d -m 0755 "$STATE_DIR" "$LOGDIR" "$RUNDIR" "$STATE_DIR/ctld-state" "$STATE_DIR/slurmd-spool"

    cat >"$CONF" <<EOF
# Generated by tests/slurm/cluster.sh -- single-node test cluster. Do not edit.
ClusterName=rensoutest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire also sets how long a requeued job waits before it may start again
# (default 120 s); keep it short so requeue tests are fast.
AuthInfo=cred_expire=$CRED_EXPIRE
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true

StateSaveLocation=$STATE_DIR/ctld-state
SlurmdSpoolDir=$STATE_DIR/slurmd-spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No systemd / cgroup delegation needed
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.txt

SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=2,batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU

ReturnToService=2
JobRequeue=1
MinJobAge=$MIN_JOB_AGE
KillWait=5
InactiveLimit=0
Waittime=0
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=60
SlurmdParameters=config_overrides

NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus RealMemory=$realmem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    printf 'export SLURM_CONF=%s\n' "$CONF" >"$ENV_FILE"
    log "config: node=$node CPUs=$cpus RealMemory=${realmem}MB ports=$CTLD_PORT/$SLURMD_PORT"
}

# slurmd (22.05) always loads a cgroup plugin, even with proctrack/linuxproc and
# task/none, so cgroup.conf must suit the host. Candidates, tried in order until
# slurmd starts and a smoke job runs:
#   cgroup v2 only (e.g. Debian 12 VM with systemd): v2 + IgnoreSystemdOnFailure,
#     then v2 + IgnoreSystemd (no dbus/systemd scope), then autodetect;
#   v1 / hybrid (e.g. containers): autodetect, then cgroup/v1.
cgroup_variants() {
    if [ -n "${SLURM_TEST_CGROUP_VARIANTS:-}" ]; then
        echo "$SLURM_TEST_CGROUP_VARIANTS"
    elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        echo v2-systemd-fallback v2-nosystemd autodetect
    else
        echo autodetect v1
    fi
}

write_cgroup_conf() { # variant
    {
        echo "# Generated by tests/slurm/cluster.sh (variant $1). No cgroup-based"
        echo "# proctrack/task plugins are used; slurmd still loads a cgroup plugin."
        case "$1" in
            autodetect) echo "CgroupPlugin=autodetect" ;;
            v1) echo "CgroupPlugin=cgroup/v1" ;;
            v2-systemd-fallback) printf 'CgroupPlugin=cgroup/v2\nIgnoreSystemdOnFailure=yes\n' ;;
            v2-nosystemd) printf 'CgroupPlugin=cgroup/v2\nIgnoreSystemd=yes\n' ;;
        esac
    } >"$STATE_DIR/cgroup.conf"
}

node_state() { # prints the node's state (e.g. idle, down*, drain), or nothing
    SLURM_CONF="$CONF" timeout 15 sinfo -h -N -n "$(node_name)" -o '%T' 2>/dev/null | head -n1 || true
}

log_tail() {
    local f
    for f in "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log"; do
        [ -f "$f" ] && { echo "---- tail $f" >&2; tail -n 20 "$f" >&2; }
    done
    return 0
}

start_daemon() { # name pidfile args...   (returns 1 on failure, after showing logs)
    local name=$1 pidf=$2 i
    shift 2
    log "starting $name"
    : >"$LOGDIR/$name.start.log"
    # daemon mode: the process checks its config, forks, detaches, writes its pid file
    if ! SLURM_CONF="$CONF" timeout 60 "$@" </dev/null >>"$LOGDIR/$name.start.log" 2>&1; then
        cat "$LOGDIR/$name.start.log" >&2 || true
        log_tail
        log "$name failed to start"
        return 1
    fi
    for i in $(seq 1 60); do
        pid_alive "$pidf" && return 0
        sleep 0.5
    done
    cat "$LOGDIR/$name.start.log" >&2 || true
    log_tail
    log "$name did not write a live pid file ($pidf) within 30 s"
    return 1
}

wait_node_idle() { # node timeout_s
    local node=$1 deadline=$(($(date +%s) + $2)) resumed=0 st
    log "waiting (max ${2}s) for node $node to be idle"
    while :; do
        st=$(node_state)
        case "$st" in
            idle) return 0 ;;
            down* | drain* | fail*)
                # e.g. after an unclean stop; ReturnToService=2 usually handles it
                if [ "$resumed" = 0 ] && ! printf '%s' "$st" | grep -q '\*$'; then
                    log "node state '$st', resuming"
                    SLURM_CONF="$CONF" timeout 15 scontrol update nodename="$node" state=resume >&2 || true
                    resumed=1
                fi
                ;;
        esac
        pid_alive "$CTLD_PID" || { log_tail; die "slurmctld died during start-up"; }
        if ! pid_alive "$SLURMD_PID"; then
            log_tail
            log "slurmd died during start-up"
            return 1
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            SLURM_CONF="$CONF" timeout 15 scontrol show node "$node" >&2 || true
            log_tail
            log "node $node not idle after ${2}s (state '${st}')"
            return 1
        fi
        sleep 0.5
    done
}

# Run one tiny batch job and check it completed: proves slurmstepd can launch jobs
# with the chosen cgroup.conf (slurmd can start fine and still fail every job).
smoke_job() {
    [ "${SLURM_TEST_SMOKE:-1}" = 0 ] && return 0
    local id st i out="$LOGDIR/smoke-%j.out"
    id=$(SLURM_CONF="$CONF" timeout 30 sbatch --parsable --job-name=cluster-sh-smoke \
        --output="$out" --chdir="$STATE_DIR" --wrap 'echo smoke-ok' 2>&1) || {
        log "smoke job submission failed: $id"
        return 1
    }
    id=${id%%;*}
    for i in $(seq 1 120); do
        st=$(SLURM_CONF="$CONF" timeout 15 scontrol show job "$id" 2>/dev/null |
            sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n1)
        case "$st" in
            COMPLETED)
                grep -q smoke-ok "$LOGDIR/smoke-$id.out" 2>/dev/null && {
                    log "smoke job $id completed"
                    return 0
                }
                ;;
            FAILED | NODE_FAIL | CANCELLED | TIMEOUT | BOOT_FAIL | OUT_OF_MEMORY | DEADLINE) break ;;
            PENDING)
                # a failed launch can leave it held/requeued; don't wait forever on that
                ;;
        esac
        sleep 0.5
    done
    log "smoke job $id did not complete (state '${st:-?}')"
    SLURM_CONF="$CONF" timeout 15 scontrol show job "$id" >&2 || true
    SLURM_CONF="$CONF" timeout 15 scancel "$id" >/dev/null 2>&1 || true
    log_tail
    return 1
}

do_start() {
    [ "$(id -u)" = 0 ] || die "must run as root"
    local t0 node v ok=0
    t0=$(date +%s)
    ensure_installed
    if pid_alive "$CTLD_PID" && pid_alive "$SLURMD_PID" && [ "$(node_state)" = idle ]; then
        log "cluster already running in $STATE_DIR"
        cat "$ENV_FILE"
        return 0
    fi
    # something half-started: clean it up first
    do_stop_daemons
    install -d -m 0755 "$STATE_DIR" "$LOGDIR" "$RUNDIR"
    ensure_munge
    write_config
    node=$(node_name)
    # first variant before slurmctld starts (it reads cgroup.conf too)
    write_cgroup_conf "$(cgroup_variants | awk '{print $1}')"

    local ctld_args=(slurmctld -f "$CONF")
    if [ "${SLURM_TEST_KEEP_STATE:-}" != 1 ]; then
        ctld_args+=(-c) # forget previous jobs (job ids still keep counting up)
        rm -rf "${STATE_DIR:?}/slurmd-spool"/*
        : >"$LOGDIR/jobcomp.txt"
        rm -f "$LOGDIR"/smoke-*.out
    fi
    start_daemon slurmctld "$CTLD_PID" "${ctld_args[@]}" || die "slurmctld failed to start"

    for v in $(cgroup_variants); do
        log "trying cgroup.conf variant '$v'"
        write_cgroup_conf "$v"
        if start_daemon slurmd "$SLURMD_PID" slurmd -f "$CONF" -N "$node" &&
            wait_node_idle "$node" "$START_TIMEOUT" && smoke_job; then
            ok=1
            break
        fi
        log "cgroup.conf variant '$v' did not work"
        kill_pidfile "$SLURMD_PID" slurmd
        # the node may now be drained/down because of the failure
        SLURM_CONF="$CONF" timeout 15 scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
    done
    [ "$ok" = 1 ] || die "could not get a working slurmd (tried cgroup variants: $(cgroup_variants)); logs in $LOGDIR"
    log "cluster up in $(($(date +%s) - t0))s: $(SLURM_CONF="$CONF" timeout 15 sinfo -h -o '%P %a %D %T %c' | tr '\n' ' ')"
    cat "$ENV_FILE"
}

# slurmstepd processes of this cluster (found via the SLURM_CONF they inherit from
# our slurmd) plus all their descendants (the job scripts and what they started)
cluster_job_pids() {
    local p ppid stepds="" all
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ] || continue
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_CONF=$CONF"; then
            stepds="$stepds $p"
        fi
    done
    [ -n "$stepds" ] || return 0
    # breadth-first over the parent links, bounded depth
    all=" $stepds "
    local i changed
    for i in $(seq 1 20); do
        changed=0
        for p in /proc/[0-9]*; do
            p=${p#/proc/}
            case "$all" in *" $p "*) continue ;; esac
            ppid=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
            case "$all" in *" $ppid "*) all="$all$p "; changed=1 ;; esac
        done
        [ "$changed" = 1 ] || break
    done
    echo $all
}

# kill leftover job processes of this cluster (normally scancel already did it)
kill_stepds() {
    local pids
    pids=$(cluster_job_pids)
    [ -n "$pids" ] || return 0
    log "killing leftover job processes: $pids"
    local p starts="" 
    for p in $pids; do # remember start times so a reused pid is never hit
        starts="$starts $p:$(awk '{print $22}' "/proc/$p/stat" 2>/dev/null || true)"
    done
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    sleep 2
    for p in $starts; do
        [ "$(awk '{print $22}' "/proc/${p%%:*}/stat" 2>/dev/null || true)" = "${p#*:}" ] &&
            kill -KILL "${p%%:*}" 2>/dev/null || true
    done
}

do_stop_daemons() {
    local i
    if pid_alive "$CTLD_PID"; then
        # cancel jobs so their processes are cleaned up by slurmstepd
        SLURM_CONF="$CONF" timeout 15 scancel --quiet --partition=debug >/dev/null 2>&1 || true
        for i in $(seq 1 20); do
            [ -z "$(SLURM_CONF="$CONF" timeout 10 squeue -h -t R,CG 2>/dev/null || true)" ] && break
            sleep 0.5
        done
    fi
    kill_pidfile "$SLURMD_PID" slurmd
    kill_pidfile "$CTLD_PID" slurmctld
    kill_stepds
}

do_stop() {
    [ -d "$STATE_DIR" ] || { log "no state dir $STATE_DIR; nothing to stop"; return 0; }
    do_stop_daemons
    if [ -f "$MUNGED_MARK" ]; then
        if [ -f "$MUNGE_PIDFILE" ] && [ "$(cat "$MUNGE_PIDFILE" 2>/dev/null)" = "$(cat "$MUNGED_MARK")" ]; then
            kill_pidfile "$MUNGE_PIDFILE" munged
        fi
        rm -f "$MUNGED_MARK"
    fi
    log "stopped"
}

do_status() {
    local rc=0 st
    if pid_alive "$CTLD_PID"; then echo "slurmctld: running (pid $(cat "$CTLD_PID"))"; else echo "slurmctld: stopped"; rc=1; fi
    if pid_alive "$SLURMD_PID"; then echo "slurmd: running (pid $(cat "$SLURMD_PID"))"; else echo "slurmd: stopped"; rc=1; fi
    if munge_ok; then echo "munge: ok"; else echo "munge: not working"; rc=1; fi
    if [ "$rc" = 0 ]; then
        st=$(node_state)
        echo "node $(node_name): ${st:-unknown}"
        [ -n "$st" ] || rc=1
        SLURM_CONF="$CONF" timeout 15 sinfo 2>&1 || rc=1
    fi
    return $rc
}

case "$CMD" in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    *) usage ;;
esac
