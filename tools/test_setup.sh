#!/usr/bin/env bash
# The setup recipe (make setup, make run) on a machine state as fresh as can
# be made without a new machine: a new virtual environment without Odoo, a
# new PostgreSQL role, Odoo cloned (shallow) from a local clone of Odoo 18.0
# instead of GitHub. Then the addon installed with its demo data by `make
# run`, a second `make setup` that finds everything there, and the addon
# installed from its wheel (pip install ., whool) with no addons path of ours.
#
#   tools/test_setup.sh /path/to/a/clone/of/odoo    (make test-setup ODOO_SRC=...)
#
# Run as root (it creates and drops a PostgreSQL role through the postgres
# user). Not part of .ci/run: it installs Odoo's requirements (minutes).
# ODOO_REQ_PYTHON is passed on to make setup (README.md, Prerequisites).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:?usage: tools/test_setup.sh /path/to/a/clone/of/odoo}
SRC=$(cd "$SRC" && pwd)
ODOO_REF=${ODOO_REF:-18.0}
TMP=$(mktemp -d)
ROLE=sop_setup_$$
DB=sop_setup_$$
cleanup() {
	dropdb --if-exists "$DB" >/dev/null 2>&1 || true
	dropdb --if-exists "${DB}_wheel" >/dev/null 2>&1 || true
	# as postgres: a role cannot drop itself
	su postgres -c "PGUSER=postgres dropuser --if-exists '$ROLE'" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT
start=$(date +%s)
step() { echo "== $* ($(($(date +%s) - start)) s)"; }

step "a bare clone of $SRC with a branch $ODOO_REF, served as file:// (shallow clones need a URL)"
git clone -q --bare "$SRC" "$TMP/odoo.git"
git -C "$TMP/odoo.git" rev-parse -q --verify "refs/heads/$ODOO_REF" >/dev/null ||
	git -C "$TMP/odoo.git" branch "$ODOO_REF" HEAD

step "a new virtual environment, without Odoo"
python3 -m venv "$TMP/venv"
PY=$TMP/venv/bin/python
! "$PY" -c "import odoo" 2>/dev/null

step "a new PostgreSQL role $ROLE that does not exist yet"
su postgres -c "PGUSER=postgres dropuser --if-exists '$ROLE'" >/dev/null 2>&1
export PGUSER=$ROLE
! psql -d postgres -Atqc "SELECT 1" 2>/dev/null

# `make run`: setup, then Odoo installs the addon with its demo data
# (--stop-after-init instead of serving)
step "make run (setup, then install with demo)"
make run PYTHON="$PY" ODOO_GIT="file://$TMP/odoo.git" ODOO_REF="$ODOO_REF" ODOO_DIR="$TMP/odoo" \
	ODOO_VENV="$TMP/no-venv" ODOO_REQ_PYTHON="${ODOO_REQ_PYTHON:-}" DB="$DB" \
	RUN_ARGS="--stop-after-init --log-level=warn" 2>&1 | tee "$TMP/run.log"
! grep -E "(ERROR|CRITICAL) $DB" "$TMP/run.log"
[ "$(git -C "$TMP/odoo" rev-list --count HEAD)" = 1 ] # shallow
"$PY" -c "import odoo, sys; assert odoo.__file__.startswith('$TMP/odoo/'), odoo.__file__"
[ "$(psql -d "$DB" -Atqc "SELECT state FROM ir_module_module WHERE name = 'crm_sales_sop'")" = installed ]
[ "$(psql -d "$DB" -Atqc "SELECT count(*) > 0 FROM crm_sop_task")" = t ]

step "make setup again: everything there, nothing done"
t0=$(date +%s)
make setup PYTHON="$PY" ODOO_DIR="$TMP/odoo" ODOO_VENV="$TMP/no-venv" | tee "$TMP/again.log"
! grep -E "cloning|pip install|creating|apt-get" "$TMP/again.log"
echo "second make setup: $(($(date +%s) - t0)) s"

step "pip install . (whool) into the venv: Odoo finds the addon in odoo.addons"
"$PY" -m pip install -q .
site=$("$PY" -c "import sysconfig; print(sysconfig.get_path('purelib'))")
ls "$site"/odoo_addon_crm_sales_sop-*.dist-info/METADATA
[ -f "$site/odoo/addons/crm_sales_sop/__manifest__.py" ]
# no --addons-path: Odoo's own, and odoo.addons' folders in site-packages
"$PY" -m odoo -d "${DB}_wheel" -i crm_sales_sop --without-demo=all --stop-after-init \
	--log-level=warn 2>&1 | tee "$TMP/wheel.log"
! grep -E "(ERROR|CRITICAL) ${DB}_wheel" "$TMP/wheel.log"
[ "$(psql -d "${DB}_wheel" -Atqc "SELECT state FROM ir_module_module WHERE name = 'crm_sales_sop'")" = installed ]

step "setup recipe passed"
