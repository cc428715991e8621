#!/usr/bin/env bash
# A single-node Slurm cluster on 127.0.0.1, for testing `nsd batch` through submitit.
#
#   tools/slurm_local.sh start    # installs Debian's munge + slurm-wlm when missing (root), starts munged,
#                                 # slurmctld and slurmd; prints `export SLURM_CONF=...` on stdout
#   tools/slurm_local.sh status   # daemons and `sinfo`; exit 0 when the node is up
#   tools/slurm_local.sh stop     # cancels every job, stops the daemons (their state stays)
#
#   eval "$(tools/slurm_local.sh start)"   # then sbatch/squeue/scontrol talk to this cluster
#
# Everything (configuration, munge key and socket, state, spool, logs, pid files) lives under
# ${NSD_SLURM_DIR:-/tmp/nsd-slurm}; nothing under /etc is changed. Needs root (the daemons run as
# root, munged as the `munge` user). Exit status 3: this machine cannot host it (not root, no apt-get, or
# the packages cannot be installed); 1: it should have started but did not (see the logs). The reason goes to stderr.
#
# Requeue delay: Slurm holds a requeued job back (reason BeginTime) for the credential lifetime,
# `cred_expire` (default 120 s). This test cluster sets AuthInfo=cred_expire=${NSD_SLURM_CRED_EXPIRE:-10}
# and runs the scheduler every second, so a requeued job starts again about 10 s later.
set -euo pipefail

DIR="${NSD_SLURM_DIR:-/tmp/nsd-slurm}"
CONF="$DIR/slurm.conf"
CRED_EXPIRE="${NSD_SLURM_CRED_EXPIRE:-10}"
CTLD_PORT="${NSD_SLURM_CTLD_PORT:-6817}"
SLURMD_PORT="${NSD_SLURM_SLURMD_PORT:-6818}"
MUNGE_SOCKET="$DIR/munge/munge.socket.2"

say() { echo "slurm_local: $*" >&2; }
cannot() { say "cannot run here: $*"; exit 3; }   # this machine cannot host it
fail() { say "failed: $*"; exit 1; }                # it should have worked: a bug or a broken installation

alive() { # pid file → 0 if that process runs
    [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
    local missing=()
    for c in munged mungekey slurmctld slurmd sbatch squeue scontrol sinfo scancel srun; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null 2>&1 || cannot "missing ${missing[*]} and there is no apt-get to install them"
    say "installing munge and slurm-wlm (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || cannot "apt-get update failed"
    apt-get install -y -qq --no-install-recommends munge slurm-wlm >&2 || cannot "apt-get install munge slurm-wlm failed"
}

write_config() {
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF" <<EOF
# written by tools/slurm_local.sh: a one-node test cluster on 127.0.0.1
ClusterName=nsdlocal
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=$CRED_EXPIRE
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=60
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    local pidf="$DIR/munge/munged.pid"
    alive "$pidf" && return 0
    id munge >/dev/null 2>&1 || fail "the munge user does not exist (is the munge package installed?)"
    mkdir -p "$DIR/munge"
    chown munge: "$DIR/munge"; chmod 0755 "$DIR/munge"  # munged needs the socket folder open to all; the key itself is 0400
    if [[ ! -s "$DIR/munge/munge.key" ]]; then
        mungekey --create --keyfile="$DIR/munge/munge.key" >&2
        chown munge: "$DIR/munge/munge.key"; chmod 0400 "$DIR/munge/munge.key"
    fi
    runuser -u munge -- munged --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$pidf" --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" >&2
    for _ in $(seq 50); do [[ -S "$MUNGE_SOCKET" ]] && return 0; sleep 0.1; done
    fail "munged did not start (see $DIR/munge/munged.log)"
}

node_state() { SLURM_CONF="$CONF" sinfo -h -n localhost -o %T 2>/dev/null || true; }

start() {
    [[ $(id -u) -eq 0 ]] || cannot "needs root (it installs packages and runs slurmctld/slurmd as root)"
    install_packages
    mkdir -p "$DIR"; chmod 0755 "$DIR"
    if ! alive "$DIR/slurmctld.pid"; then write_config; fi
    start_munge
    export SLURM_CONF="$CONF"
    alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF" >&2 || fail "slurmctld did not start (see $DIR/log/slurmctld.log)"
    alive "$DIR/slurmd.pid" || slurmd -f "$CONF" -N localhost >&2 || fail "slurmd did not start (see $DIR/log/slurmd.log)"
    local state=""
    for _ in $(seq 120); do
        state=$(node_state)
        [[ $state == idle* || $state == mixed* || $state == allocated* ]] && break
        sleep 0.25
    done
    [[ $state == idle* || $state == mixed* || $state == allocated* ]] || fail "the node is '$state', not idle, after 30 s (see $DIR/log/)"
    say "up: node localhost $state; configuration $CONF"
    echo "export SLURM_CONF=$CONF"
}

stop() {
    if alive "$DIR/slurmctld.pid"; then
        SLURM_CONF="$CONF" scancel --quiet --user="$(id -un)" 2>/dev/null || true
    fi
    for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/munge/munged.pid"; do
        if alive "$f"; then
            local pid; pid=$(cat "$f")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
    done
    say "stopped"
}

status() {
    local ok=0
    for d in munge/munged slurmctld slurmd; do
        if alive "$DIR/$d.pid"; then say "$(basename "$d"): running (pid $(cat "$DIR/$d.pid"))"
        else say "$(basename "$d"): not running"; ok=1; fi
    done
    if [[ $ok -eq 0 ]]; then SLURM_CONF="$CONF" sinfo >&2 || ok=1; echo "export SLURM_CONF=$CONF"; fi
    return $ok
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status   (folder: \${NSD_SLURM_DIR:-/tmp/nsd-slurm})" >&2; exit 2 ;;
esac
