#!/usr/bin/env bash
# make setup: what `make run` needs on a fresh Debian or Ubuntu machine, and
# nothing when it is already there.
#
# 1. Odoo 18.0 importable by $PYTHON: else a shallow clone of $ODOO_GIT
#    (branch $ODOO_REF) into $ODOO_DIR, its requirements.txt as pip selects
#    them for $PYTHON (or for $ODOO_REQ_PYTHON, see below), and Odoo itself
#    (pip install --no-deps -e). A Python that refuses pip (Debian's
#    "externally managed" python3) gets a virtual environment, $ODOO_DIR/venv,
#    which the Makefile then uses.
# 2. PostgreSQL reachable by the current user (local socket, $PGUSER or the
#    login name): else, as root with apt-get, Debian's postgresql package,
#    its cluster started, and a superuser role of that name.
set -euo pipefail

PYTHON=${PYTHON:-python3}
ODOO_GIT=${ODOO_GIT:-https://github.com/odoo/odoo.git}
ODOO_REF=${ODOO_REF:-18.0}
ODOO_DIR=${ODOO_DIR:-$(pwd)/.odoo/odoo}
VENV=${VENV:-$(pwd)/.odoo/venv}
ODOO_REQ_PYTHON=${ODOO_REQ_PYTHON:-}
ROLE=${PGUSER:-$(id -un)}

say() { echo "setup: $*"; }
as_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
apt_install() {
	as_root || { say "install $* (as root: apt-get install $*)"; exit 2; }
	say "apt-get install $*"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
odoo_ok() { "$1" -c "import odoo.release as r; assert r.version_info[0] == 18" 2>/dev/null; }

# ---------------------------------------------------------------- Odoo 18.0
if odoo_ok "$PYTHON"; then
	say "Odoo 18.0 is importable by $PYTHON"
elif [ -x "$VENV/bin/python" ] && odoo_ok "$VENV/bin/python"; then
	say "Odoo 18.0 is importable by $VENV/bin/python"
else
	command -v git >/dev/null 2>&1 || apt_install git
	if [ ! -f "$ODOO_DIR/odoo-bin" ]; then
		say "cloning Odoo $ODOO_REF from $ODOO_GIT into $ODOO_DIR (shallow)"
		mkdir -p "$(dirname "$ODOO_DIR")"
		git clone -q --depth 1 --branch "$ODOO_REF" "$ODOO_GIT" "$ODOO_DIR"
	fi
	py=$PYTHON
	if "$py" -c "import sys, sysconfig, os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"; then
		# Debian's python3: pip refuses to install into it (PEP 668)
		if [ ! -x "$VENV/bin/python" ]; then
			"$py" -m venv "$VENV" 2>/dev/null || {
				apt_install python3-venv
				"$py" -m venv "$VENV"
			}
		fi
		py=$VENV/bin/python
		say "installing into the virtual environment $VENV"
	fi
	"$py" -m pip --version >/dev/null 2>&1 || apt_install python3-pip
	req=$ODOO_DIR/requirements.txt
	if [ -n "$ODOO_REQ_PYTHON" ]; then
		# Odoo's pins for an older Python may have no wheel for this machine
		# (built from source, needing compilers and headers): select them as
		# for Python $ODOO_REQ_PYTHON; python-ldap (LDAP login, needs the
		# LDAP headers) is left out.
		"$py" -m pip install -q packaging
		req=$(mktemp)
		"$py" - "$ODOO_DIR/requirements.txt" "$ODOO_REQ_PYTHON" >"$req" <<'PY'
import sys
from packaging.requirements import Requirement
from packaging.markers import default_environment

path, version = sys.argv[1], sys.argv[2]
env = dict(default_environment(), python_version=version, python_full_version=version + ".0")
for line in open(path, encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    req = Requirement(line)
    if req.name.lower() == "python-ldap":
        continue
    if req.marker is None or req.marker.evaluate(env):
        req.marker = None
        print(req)
PY
		say "Odoo's requirements as for Python $ODOO_REQ_PYTHON: $(wc -l <"$req") packages"
	fi
	say "pip install -r requirements.txt (Odoo's Python requirements)"
	"$py" -m pip install -q -r "$req" || {
		[ -n "$ODOO_REQ_PYTHON" ] || say "Odoo's pins for this Python failed to install" \
			"(old releases without wheels build from source): try" \
			"make setup ODOO_REQ_PYTHON=3.12 (README.md, Prerequisites)"
		exit 2
	}
	# compat: a .pth puts the clone on sys.path, so that odoo is a regular
	# package found before the odoo/addons folders of addons installed by pip
	# (OCA wheels), which setuptools' default editable finder would lose to
	"$py" -m pip install -q --no-deps -e "$ODOO_DIR" --config-settings editable_mode=compat
	odoo_ok "$py" || { say "Odoo 18.0 is still not importable by $py"; exit 2; }
	say "Odoo 18.0 installed for $py"
fi

# -------------------------------------------------------------- PostgreSQL
if psql -d postgres -Atqc "SELECT 1" >/dev/null 2>&1; then
	say "PostgreSQL is reachable as role $ROLE"
	exit 0
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1; then
	apt_install postgresql
fi
if command -v pg_lsclusters >/dev/null 2>&1; then
	# start the clusters that are down (Debian's wrapper)
	pg_lsclusters -h | while read -r version cluster _port status _rest; do
		if [ "$status" != online ]; then
			as_root || { say "start PostgreSQL: pg_ctlcluster $version $cluster start (as root)"; exit 2; }
			say "starting PostgreSQL $version/$cluster"
			pg_ctlcluster "$version" "$cluster" start
		fi
	done
fi
if ! psql -d postgres -Atqc "SELECT 1" >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
		say "creating the PostgreSQL role $ROLE (superuser, as Odoo's developers use)"
		# as postgres, whatever PGUSER says (su keeps the environment)
		su postgres -c "PGUSER=postgres createuser -s '$ROLE'"
	else
		say "create a PostgreSQL role for $ROLE: sudo -u postgres createuser -s $ROLE"
		exit 2
	fi
fi
psql -d postgres -Atqc "SELECT 1" >/dev/null || { say "PostgreSQL is still not reachable as $ROLE"; exit 2; }
say "PostgreSQL is reachable as role $ROLE"
