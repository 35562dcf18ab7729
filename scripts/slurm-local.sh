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

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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
    ctld_port="$(free_port)"
    first_node_port="$(free_port)"
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
        echo "NodeName=n[1-$nodes] NodeHostname=$host NodeAddr=127.0.0.1 Port=$first_node_port-$((first_node_port + nodes - 1)) CPUs=$(nproc) RealMemory=1000 State=UNKNOWN"
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
    echo "slurm-local: the nodes did not become idle within 60 s; see $dir/log" >&2
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
