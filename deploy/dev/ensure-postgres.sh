#!/usr/bin/env bash
# Makes sure a Postgres server answers on 127.0.0.1:5432 for `make run` and `make test`, whose
# default DATABASE_URL is postgres://postgres@127.0.0.1:5432/onboarding (no password).
#
#   1. Postgres already answers: do nothing. A running server is never touched.
#   2. A Debian cluster on port 5432 exists but is down: start it.
#   3. No Postgres at all: as root, install the distribution's package and start its cluster,
#      configured to let `postgres` in without a password on loopback (dev/test only).
#
# Running it again is always safe.
set -euo pipefail

readonly HOST=127.0.0.1
readonly PORT=5432
# Written next to a cluster's configuration when this script created it, so a later run (after a
# reboot, or after an interrupted first run) knows it may finish configuring that cluster.
readonly MARKER_NAME=.onboarding-dev-installed
readonly HBA_TAG='# onboarding dev: added by deploy/dev/ensure-postgres.sh'

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

ready() {
	if command -v pg_isready >/dev/null 2>&1; then
		pg_isready -q -h "$HOST" -p "$PORT"
	else
		# Postgres may run elsewhere (a container) with no client tools here: an open port is
		# the best evidence available, and installing a second server could not bind it anyway.
		(exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
	fi
}

wait_ready() {
	local i
	for ((i = 0; i < 60; i++)); do
		ready && return 0
		sleep 0.5
	done
	die "Postgres did not accept connections on $HOST:$PORT within 30 s"
}

# Prints "version name status owner" of the Debian cluster configured for $PORT, if any.
cluster_on_port() {
	command -v pg_lsclusters >/dev/null 2>&1 || return 0
	pg_lsclusters --no-header 2>/dev/null | awk -v port="$PORT" '$3 == port { print $1, $2, $4, $5; exit }'
}

# Lets the postgres role in without a password over loopback TCP, ahead of the packaged rules
# (pg_hba.conf is first match wins). DEV/TEST ONLY: it is applied solely to a cluster this script
# installed, never to an existing one.
trust_loopback() {
	local version=$1 name=$2
	local hba="/etc/postgresql/$version/$name/pg_hba.conf"
	[[ -f $hba ]] || die "$hba not found"
	grep -qF "$HBA_TAG" "$hba" && return 0
	log "allowing user postgres without a password on 127.0.0.1 and ::1 in $hba (dev/test only)"
	local tmp
	tmp=$(mktemp "$hba.XXXXXX")
	{
		printf '%s (dev/test only: trust for postgres on loopback)\n' "$HBA_TAG"
		printf 'host    all    postgres    127.0.0.1/32    trust\n'
		printf 'host    all    postgres    ::1/128         trust\n\n'
		cat "$hba"
	} >"$tmp"
	chown --reference="$hba" "$tmp"
	chmod --reference="$hba" "$tmp"
	mv "$tmp" "$hba"
}

start_cluster() {
	local version=$1 name=$2 owner=$3
	if [[ $EUID -ne 0 && $(id -un) != "$owner" ]]; then
		die "Postgres cluster $version/$name is down; start it with: sudo pg_ctlcluster $version $name start"
	fi
	log "starting Postgres cluster $version/$name"
	# --skip-systemctl-redirect: containers and CI machines often have no running systemd.
	pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
}

install_postgres() {
	[[ $EUID -eq 0 ]] || die "no Postgres answers on $HOST:$PORT and installing one needs root.
Install and start PostgreSQL (e.g. sudo apt-get install postgresql), or point DATABASE_URL at a server."
	command -v apt-get >/dev/null 2>&1 || die "no Postgres answers on $HOST:$PORT and apt-get is not available; install PostgreSQL and start it"

	log "installing PostgreSQL with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends postgresql

	local version name
	version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -V | tail -n 1)
	[[ -n $version ]] || die "the postgresql package installed no server under /usr/lib/postgresql"
	# The package creates cluster "main" on the first free port unless createcluster.conf says
	# otherwise; create it when it did not.
	if [[ -z $(cluster_on_port) ]]; then
		[[ ! -e /etc/postgresql/$version/main ]] ||
			die "Postgres cluster $version/main exists but not on port $PORT; start a server on $PORT or set DATABASE_URL"
		pg_createcluster --port "$PORT" "$version" main
	fi
	read -r version name _ _ <<<"$(cluster_on_port)"
	[[ -n ${name:-} ]] || die "no Postgres cluster on port $PORT after installing (is the port taken?)"
	touch "/etc/postgresql/$version/$name/$MARKER_NAME"
	trust_loopback "$version" "$name"
}

main() {
	if ready; then
		exit 0
	fi

	local version name status owner
	read -r version name status owner <<<"$(cluster_on_port)"
	if [[ -z ${version:-} ]]; then
		install_postgres
		read -r version name status owner <<<"$(cluster_on_port)"
	elif [[ -f /etc/postgresql/$version/$name/$MARKER_NAME ]]; then
		# Ours, maybe from a run that stopped half-way: finish configuring it.
		trust_loopback "$version" "$name"
	fi

	case $status in
	down) start_cluster "$version" "$name" "$owner" ;;
	online) ;; # it started in the meantime, or the package's postinst started it
	*) die "Postgres cluster $version/$name is in state '$status'; see pg_lsclusters" ;;
	esac
	# A cluster already online keeps running: reload so an edited pg_hba.conf takes effect.
	if [[ -f /etc/postgresql/$version/$name/$MARKER_NAME && $status == online ]]; then
		pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload
	fi
	wait_ready
	log "Postgres $version/$name is ready on $HOST:$PORT"
}

main "$@"
