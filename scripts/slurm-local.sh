#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for trying configs/slurm/ingest.sbatch and for the
# Slurm test. Needs root (slurmd runs jobs as their submitter) and Debian's slurmctld, slurmd,
# slurm-client and munge (scripts/setup.sh --test installs them); no systemd.
#   scripts/slurm-local.sh start DIR [NODES]   a private munge and Slurm under DIR; prints the
#                                              SLURM_CONF line to export
#   scripts/slurm-local.sh stop DIR            stop them (jobs still running are killed)
set -euo pipefail
action="${1:?usage: slurm-local.sh start|stop DIR [NODES]}"
dir="$(mkdir -p "${2:?usage: slurm-local.sh start|stop DIR [NODES]}" && cd "$2" && pwd)"
nodes="${3:-1}"
export SLURM_CONF="$dir/slurm.conf"

# N distinct free ports below the kernel's ephemeral range (32768 and up by default), so that no
# outgoing connection of a busy machine (an S3 client's, say) can take one between this check and
# the daemon's bind: a slurmd that cannot bind its port never comes up.
free_ports() {
    python3 - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
held = []
while len(held) < int(sys.argv[1]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randrange(10000, low)))
    except OSError:
        continue
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

wait_gone() {
    for pid in "$@"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
}

case "$action" in
start)
    mkdir -p "$dir"/{munge,state,spool,log}
    # munged checks that its socket directory is reachable by everyone.
    chmod 755 "$dir" "$dir/munge"
    head -c 1024 /dev/urandom > "$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    munged --socket="$dir/munge/socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed"
    host="$(hostname -s)"
    read -r ctld_port node_ports <<< "$(free_ports $((nodes + 1)))"
    {
        echo "ClusterName=clipline-local"
        echo "SlurmctldHost=$host"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "SlurmctldPort=$ctld_port"
        echo "AuthType=auth/munge"
        echo "CredType=cred/munge"
        echo "AuthInfo=socket=$dir/munge/socket"
        echo "StateSaveLocation=$dir/state"
        echo "SlurmdSpoolDir=$dir/spool/%n"
        echo "SlurmctldPidFile=$dir/slurmctld.pid"
        echo "SlurmdPidFile=$dir/slurmd-%n.pid"
        echo "SlurmctldLogFile=$dir/log/slurmctld.log"
        echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
        # Plain process tracking: the cgroup plugins need systemd's cgroup set-up.
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "AccountingStorageType=accounting_storage/none"
        echo "SchedulerType=sched/backfill"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_Core"
        echo "MpiDefault=none"
        echo "ReturnToService=2"
        n=0
        for port in $node_ports; do
            n=$((n + 1))
            echo "NodeName=n$n NodeHostname=$host NodeAddr=127.0.0.1 Port=$port CPUs=$(nproc) RealMemory=1000 State=UNKNOWN"
        done
        echo "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4"
    } > "$SLURM_CONF"
    slurmctld
    for n in $(seq "$nodes"); do slurmd -N "n$n"; done
    for _ in $(seq 300); do
        if [ "$(sinfo -h -o %t 2>/dev/null | sort -u)" = "idle" ]; then
            echo "export SLURM_CONF=$SLURM_CONF"
            exit 0
        fi
        sleep 0.2
    done
    {
        echo "slurm-local: the nodes did not become idle within 60 s; sinfo says:"
        sinfo -N -o '%N %t %E' 2>&1 || true
        for log in "$dir"/log/*.log "$dir"/munge/munged.log; do
            [ -f "$log" ] && { echo "--- last lines of $log"; tail -n 15 "$log"; }
        done
    } >&2
    exit 1
    ;;
stop)
    pids=""
    for f in "$dir"/slurmctld.pid "$dir"/slurmd-*.pid; do [ -f "$f" ] && pids="$pids $(cat "$f")"; done
    scontrol shutdown 2>/dev/null || kill $pids 2>/dev/null || true
    wait_gone $pids
    if [ -f "$dir/munge/munged.pid" ]; then
        pid="$(cat "$dir/munge/munged.pid")"
        kill "$pid" 2>/dev/null || true
        wait_gone "$pid"
    fi
    ;;
*)
    echo "usage: slurm-local.sh start|stop DIR [NODES]" >&2
    exit 2
    ;;
esac
