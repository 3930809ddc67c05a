#!/usr/bin/env bash
# A one-node SLURM test cluster on a Debian machine: munge, mariadb, slurmdbd (so `sacct` works), slurmctld, slurmd.
#
#   tools/slurm_cluster.sh start  [STATE_DIR]   install the packages if missing, start what is not running
#   tools/slurm_cluster.sh status [STATE_DIR]   one line per daemon and the node; exit 0 when all are up
#   tools/slurm_cluster.sh stop   [STATE_DIR]   cancel every job, wait for the queue to empty, stop every daemon
#
# STATE_DIR (default $SLURM_CLUSTER_DIR, else /tmp/inn-slurm-cluster) holds everything the daemons write: pid
# files, logs, slurmctld's state, slurmd's spool, the database. Each daemon is stopped by its pid file, waiting for
# it to exit. The script writes /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf (marked as its own; it refuses
# to replace files it did not write). Needs root and Debian's packages (apt-get). Idempotent: `start` on a running
# cluster changes nothing, `stop` on a stopped one neither. Exit codes: 0 done, 1 failed (see the logs in
# STATE_DIR), 2 usage, 3 no cluster can be started here (not root, not Debian, no apt-get), with the reason.
# Facts and pitfalls behind the settings: ../shared/docs/slurm_local.md.
set -euo pipefail

COMMAND=${1:-}
DIR=${2:-${SLURM_CLUSTER_DIR:-/tmp/inn-slurm-cluster}}
DB_PORT=${SLURM_CLUSTER_DB_PORT:-3307}
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
MARKER="# written by tools/slurm_cluster.sh"
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf

say() { echo "slurm_cluster: $*"; }
die() { echo "slurm_cluster: error: $*" >&2; exit 1; }
cannot() { echo "slurm_cluster: cannot start a cluster here: $*" >&2; exit 3; }

usage() {
    echo "usage: $0 start|stop|status [STATE_DIR]" >&2
    exit 2
}

# The pid in a pid file, if that process is alive and is the named program; empty otherwise.
live_pid() {
    local pidfile=$1 name=$2 pid
    [[ -r $pidfile ]] || return 0
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid && -r /proc/$pid/comm ]] || return 0
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] && echo "$pid"
    return 0
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${seconds} s waiting for $what (logs in $DIR)"
        sleep 0.2
    done
}

# Stop the daemon of a pid file: SIGTERM, wait for it to exit, SIGKILL after 30 s.
stop_daemon() {
    local pidfile=$1 name=$2 pid
    pid=$(live_pid "$pidfile" "$name")
    if [[ -z $pid ]]; then
        say "$name: not running"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while [[ -e /proc/$pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; do
        if ((SECONDS >= deadline)); then
            say "$name (pid $pid) did not exit after SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
    say "$name: stopped (pid $pid)"
}

check_machine() {
    [[ $(id -u) == 0 ]] || cannot "not root (the daemons and the configuration in /etc/slurm need root)"
    [[ -r /etc/debian_version ]] || cannot "not a Debian machine (the script installs Debian's packages)"
    command -v apt-get >/dev/null || cannot "no apt-get"
}

install_packages() {
    local missing=()
    local tool
    for tool in slurmctld slurmd sbatch munged slurmdbd mariadbd; do
        command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) && return 0
    say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    local apt=(apt-get -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends)
    export DEBIAN_FRONTEND=noninteractive
    if ! "${apt[@]}" install "${PACKAGES[@]}" >"$DIR/apt.log" 2>&1; then
        apt-get -o DPkg::Lock::Timeout=600 -q update >>"$DIR/apt.log" 2>&1 || true
        "${apt[@]}" install "${PACKAGES[@]}" >>"$DIR/apt.log" 2>&1 || die "apt-get install failed (see $DIR/apt.log)"
    fi
}

# Refuse to overwrite a configuration file this script did not write.
ours() {
    [[ ! -e $1 ]] || head -n 1 "$1" | grep -qF "$MARKER" || die "$1 exists and was not written by this script; not touching it"
}

write_config() {
    local host=$1 node memory other
    ours "$CONF"
    ours "$DBD_CONF"
    # one cluster per machine: a running one from another state folder keeps its configuration
    other=$( (head -n 1 "$CONF" 2>/dev/null || true) | sed -nE 's/.*\(state in (.*)\)$/\1/p')
    if [[ -n $other && $other != "$DIR" && -n $(live_pid "$other/slurmctld.pid" slurmctld) ]]; then
        die "a cluster with its state in $other is running: stop it first ($0 stop $other) or use that folder"
    fi
    # slurmd -C: this machine's CPUs, sockets, cores and threads; RealMemory a little below what is free.
    node=$(slurmd -C | grep '^NodeName=' | sed -E 's/ RealMemory=[0-9]+//; s/ UpTime=.*//')
    memory=$(($(free -m | awk '/^Mem:/ {print $2}') * 9 / 10))
    mkdir -p /etc/slurm
    local conf
    conf=$(
        cat <<EOF
$MARKER (state in $DIR)
ClusterName=inntest
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job waits cred_expire + 1 s before it runs again (121 s by default).
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$DIR/slurmctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$host
JobCompType=jobcomp/none
$node RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    )
    [[ -e $CONF && $(cat "$CONF") == "$conf" ]] || printf '%s\n' "$conf" >"$CONF"
    local dbd
    dbd=$(
        cat <<EOF
$MARKER (state in $DIR)
AuthType=auth/munge
DbdHost=$host
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    )
    [[ -e $DBD_CONF && $(cat "$DBD_CONF") == "$dbd" ]] || printf '%s\n' "$dbd" >"$DBD_CONF"
    chmod 600 "$DBD_CONF"
}

start_munge() {
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 "$DIR/munge"
    if [[ ! -e /etc/munge/munge.key ]]; then
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    fi
    if [[ -z $(live_pid "$DIR/munge/munged.pid" munged) ]]; then
        runuser -u munge -- /usr/sbin/munged --pid-file="$DIR/munge/munged.pid" \
            --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
        say "munged: started"
    fi
    wait_for 20 "munge" bash -c 'munge -n | unmunge'
}

mariadb_ping() { mariadb-admin --socket="$DIR/mysql-run/mysqld.sock" ping; }

start_mariadb() {
    install -d -o mysql -g mysql -m 0755 "$DIR/mysql-run"
    if [[ ! -d $DIR/mysql/mysql ]]; then
        install -d -o mysql -g mysql -m 0700 "$DIR/mysql"
        mariadb-install-db --user=mysql --datadir="$DIR/mysql" --auth-root-authentication-method=socket \
            --skip-test-db >"$DIR/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $DIR/mariadb-install.log)"
    fi
    if [[ -z $(live_pid "$DIR/mysql-run/mariadbd.pid" mariadbd) ]]; then
        # mariadbd does not daemonise itself: detach it from this shell (and from a CI job's process group).
        setsid /usr/sbin/mariadbd --user=mysql --datadir="$DIR/mysql" --socket="$DIR/mysql-run/mysqld.sock" \
            --pid-file="$DIR/mysql-run/mariadbd.pid" --port="$DB_PORT" --bind-address=127.0.0.1 \
            --log-error="$DIR/mariadb.log" </dev/null >/dev/null 2>&1 &
        wait_for 60 "mariadbd" mariadb_ping
        say "mariadbd: started"
    fi
    mariadb --socket="$DIR/mysql-run/mysqld.sock" -e "
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

# start_slurm_daemon NAME PIDFILE PORT: start a daemon (each one daemonises and writes its pid file) and wait
# until it listens on its port.
start_slurm_daemon() {
    local name=$1 pidfile=$2 port=$3
    if [[ -z $(live_pid "$pidfile" "$name") ]]; then
        "/usr/sbin/$name" || die "$name did not start (see $DIR/$name.log)"
        say "$name: started"
    fi
    wait_for 60 "$name to listen on port $port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
}

node_up() {
    local host=$1 state
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1)
    [[ $state == idle* || $state == mixed* || $state == allocated* || $state == completing* ]]
}

start() {
    check_machine
    mkdir -p "$DIR"
    chmod 0755 "$DIR"
    install_packages
    local host
    host=$(hostname -s)
    write_config "$host"
    mkdir -p "$DIR/slurmctld" "$DIR/slurmd"
    start_munge
    start_mariadb
    start_slurm_daemon slurmdbd "$DIR/slurmdbd.pid" 6819
    start_slurm_daemon slurmctld "$DIR/slurmctld.pid" 6817
    start_slurm_daemon slurmd "$DIR/slurmd.pid" 6818
    if ! node_up "$host"; then
        # a node left down or drained by an earlier, unclean stop
        wait_for 20 "the node to register" bash -c "sinfo -h -n $host -o %T | grep -q ."
        scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
    fi
    wait_for 60 "node $host to be idle (sinfo)" node_up "$host"
    wait_for 60 "accounting (sacct)" sacct -n -X -S now
    say "cluster up: node $host, state in $DIR"
}

stop() {
    if [[ -n $(live_pid "$DIR/slurmctld.pid" slurmctld) ]]; then
        scancel --user=root >/dev/null 2>&1 || true
        # job steps outlive slurmd: wait for the queue to empty before stopping it
        local deadline=$((SECONDS + 90))
        while [[ -n $(squeue -h 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 0.5; done
    fi
    stop_daemon "$DIR/slurmd.pid" slurmd
    stop_daemon "$DIR/slurmctld.pid" slurmctld
    stop_daemon "$DIR/slurmdbd.pid" slurmdbd
    stop_daemon "$DIR/mysql-run/mariadbd.pid" mariadbd
    stop_daemon "$DIR/munge/munged.pid" munged
}

status() {
    local up=0 pid
    local entries=("munged:$DIR/munge/munged.pid" "mariadbd:$DIR/mysql-run/mariadbd.pid" "slurmdbd:$DIR/slurmdbd.pid"
        "slurmctld:$DIR/slurmctld.pid" "slurmd:$DIR/slurmd.pid")
    local entry
    for entry in "${entries[@]}"; do
        pid=$(live_pid "${entry#*:}" "${entry%%:*}")
        if [[ -n $pid ]]; then
            echo "${entry%%:*}: running (pid $pid)"
        else
            echo "${entry%%:*}: stopped"
            up=1
        fi
    done
    if ((up == 0)) && node_up "$(hostname -s)"; then
        echo "node $(hostname -s): $(sinfo -h -n "$(hostname -s)" -o %T)"
    else
        echo "node: not up"
        up=1
    fi
    return $up
}

case $COMMAND in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
