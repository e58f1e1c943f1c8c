# crm_sales_sop: run, test, lint and bench the addon against the Odoo 18.0
# importable by $(PYTHON). `make setup` (which `make run` calls) brings Odoo
# and PostgreSQL to a machine that lacks them (tools/setup.sh, README.md).

# Odoo's Git repository and branch, and where `make setup` clones it; the
# virtual environment it makes when python3 refuses pip (Debian's own)
ODOO_GIT ?= https://github.com/odoo/odoo.git
ODOO_REF ?= 18.0
ODOO_DIR ?= $(CURDIR)/.odoo/odoo
ODOO_VENV ?= $(CURDIR)/.odoo/venv
# empty: Odoo's requirements.txt markers evaluated for $(PYTHON), as pip does
ODOO_REQ_PYTHON ?=
PYTHON ?= $(if $(wildcard $(ODOO_VENV)/bin/python),$(ODOO_VENV)/bin/python,python3)
DB ?= crm_sales_sop_demo
TEST_DB ?= crm_sales_sop_test
BENCH_DB ?= crm_sales_sop_bench
PORT ?= 8069
TEST_PORT ?= 8169
# uninstall, core crm's tests, reinstall (make test-uninstall): a database of
# its own, so that it never meets make test's
UNINSTALL_DB ?= $(TEST_DB)_uninstall
# Odoo takes an addon's name from its folder: link the repository under its
# real name in a temporary addons folder, whatever the clone is called.
# One folder per clone: two clones on one machine do not overwrite each
# other's link.
CLONE_ID := $(shell printf '%s' "$(CURDIR)" | cksum | cut -d' ' -f1)
ADDONS_DIR ?= $(or $(TMPDIR),/tmp)/crm_sales_sop_addons_$(CLONE_ID)
ADDON := $(ADDONS_DIR)/crm_sales_sop
ODOO := $(PYTHON) -m odoo
CORE_ADDONS = $(shell $(PYTHON) -c "from odoo.tools import config; config._parse_config([]); print(config['addons_path'])" 2>/dev/null)
ADDONS_PATH = $(CORE_ADDONS),$(ADDONS_DIR)
CRM_TESTS = $(shell $(PYTHON) -c "import os, odoo.modules.module as m; from odoo.tools import config; config._parse_config([]); m.initialize_sys_path(); print(os.path.join(m.get_module_path('crm'), 'tests'))" 2>/dev/null)

.PHONY: help setup test-setup serve check-odoo link deps run upgrade test test-odoo test-pytest test-core test-uninstall lint bench clean

help:
	@echo "make setup  Odoo 18.0 and PostgreSQL when missing (make run calls it)"
	@echo "make run    start Odoo with the addon and its demo data on http://localhost:$(PORT)"
	@echo "make upgrade  update the addon in the database DB (after a git pull)"
	@echo "make test   install the addon with demo data and run all the tests"
	@echo "make lint   ruff and pylint-odoo"
	@echo "make bench  compare the addon with core Odoo (bench/README.md)"
	@echo "make deps   install what tests need (requirements-test.txt, chromium)"

check-odoo:
	@$(PYTHON) -c "import odoo.release as r; assert r.version_info[0] == 18" 2>/dev/null || { \
		echo "error: Odoo 18.0 is not importable by '$(PYTHON)'."; \
		echo "       Run 'make setup', or install Odoo 18.0 Community into this Python (README.md, Prerequisites)."; \
		exit 2; }

link: check-odoo
	@mkdir -p $(ADDONS_DIR)
	@ln -sfn $(CURDIR) $(ADDON)

deps:
	$(PYTHON) -m pip install -q -r requirements-test.txt
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
		else echo "warning: install chromium (and fonts-noto-cjk) for the browser tests"; fi; }

setup:
	@PYTHON=$(PYTHON) ODOO_GIT=$(ODOO_GIT) ODOO_REF=$(ODOO_REF) ODOO_DIR=$(ODOO_DIR) \
		VENV=$(ODOO_VENV) ODOO_REQ_PYTHON=$(ODOO_REQ_PYTHON) tools/setup.sh

# the setup recipe on a machine state as fresh as can be: a new virtual
# environment, a new PostgreSQL role, Odoo from a local clone (not in CI: slow)
test-setup:
	tools/test_setup.sh $(ODOO_SRC)

# setup first, then Odoo in a new make: PYTHON may be the venv setup made
run: setup
	@$(MAKE) --no-print-directory serve

# RUN_ARGS: more options for Odoo (e.g. --stop-after-init)
serve: link
	$(ODOO) -d $(DB) --addons-path=$(ADDONS_PATH) -i crm_sales_sop --load-language=en_US,zh_CN \
		--http-interface=127.0.0.1 --http-port=$(PORT) --db-filter='^$(DB)$$' $(RUN_ARGS)

upgrade: link
	$(ODOO) -d $(DB) --addons-path=$(ADDONS_PATH) -u crm_sales_sop --stop-after-init

# The test command: a new database with the addon and its demo data, then
# (1) Odoo's own runner on the addon's tests, browser tour included,
# (2) pytest-odoo on the addon's tests,
# (3) pytest-odoo on core crm's own tests, against this database,
# (4) uninstall and reinstall (test-uninstall).
test: link
	@dropdb --if-exists $(TEST_DB) >/dev/null 2>&1 || true
	$(MAKE) --no-print-directory test-odoo test-pytest test-core test-uninstall
	@echo "crm_sales_sop: all tests passed"

test-odoo: link
	$(ODOO) -d $(TEST_DB) --addons-path=$(ADDONS_PATH) -i crm_sales_sop --load-language=en_US,zh_CN \
		--test-enable --test-tags=/crm_sales_sop --stop-after-init --http-interface=127.0.0.1 \
		--http-port=$(TEST_PORT) --log-level=test 2>&1 | tee $(ADDONS_DIR)/test-odoo.log
	@! grep -E "(ERROR|CRITICAL) $(TEST_DB)|[1-9][0-9]* failed|[1-9][0-9]* error|demo data failed" $(ADDONS_DIR)/test-odoo.log >/dev/null || { \
		echo "Odoo's test runner reported failures (see above)"; exit 1; }

test-pytest: link
	cd $(ADDONS_DIR) && $(PYTHON) -m pytest -q -p no:cacheprovider --odoo-database=$(TEST_DB) \
		--odoo-addons-path=$(ADDONS_PATH) --ignore=$(ADDON)/tests/test_ui.py $(ADDON)/tests

test-core: link
	cd $(ADDONS_DIR) && $(PYTHON) -m pytest -q -p no:cacheprovider --odoo-database=$(TEST_DB) \
		--odoo-addons-path=$(ADDONS_PATH) $(CRM_TESTS)

# The addon installed with its demo data and used (tools/uninstall_check.py),
# uninstalled as the Apps menu does, core crm's own tests on what is left,
# then installed again. Any ERROR logged fails it.
UNINSTALL_LOG = $(ADDONS_DIR)/test-uninstall.log

test-uninstall: link
	@dropdb --if-exists $(UNINSTALL_DB) >/dev/null 2>&1 || true
	$(ODOO) -d $(UNINSTALL_DB) --addons-path=$(ADDONS_PATH) -i crm_sales_sop --load-language=en_US,zh_CN \
		--stop-after-init --log-level=warn 2>&1 | tee $(UNINSTALL_LOG)
	$(PYTHON) tools/uninstall_check.py use $(UNINSTALL_DB) --addons-path=$(ADDONS_PATH)
	$(PYTHON) tools/uninstall_check.py uninstall $(UNINSTALL_DB) --addons-path=$(ADDONS_PATH)
	cd $(ADDONS_DIR) && $(PYTHON) -m pytest -q -p no:cacheprovider --odoo-database=$(UNINSTALL_DB) \
		--odoo-addons-path=$(ADDONS_PATH) $(CRM_TESTS)
	$(ODOO) -d $(UNINSTALL_DB) --addons-path=$(ADDONS_PATH) -i crm_sales_sop \
		--stop-after-init --log-level=warn 2>&1 | tee -a $(UNINSTALL_LOG)
	@! grep -E "(ERROR|CRITICAL) $(UNINSTALL_DB)" $(UNINSTALL_LOG) >/dev/null || { \
		echo "installing the addon logged errors (see above)"; exit 1; }
	$(PYTHON) tools/uninstall_check.py reinstalled $(UNINSTALL_DB) --addons-path=$(ADDONS_PATH)
	@dropdb --if-exists $(UNINSTALL_DB) >/dev/null 2>&1 || true
	@echo "crm_sales_sop: uninstalled, core crm's tests passed, installed again"

# pylint-odoo finds an addon by its manifest above the linted file and below
# the git root: in a clone whose root is the addon it finds none and skips
# every Odoo check. Lint a copy named crm_sales_sop outside any git tree,
# whatever the clone is called.
LINT_DIR = $(ADDONS_DIR)/lint

lint:
	ruff check .
	ruff format --check .
	$(PYTHON) tools/gen_readme.py --check
	@rm -rf $(LINT_DIR) && mkdir -p $(LINT_DIR)/crm_sales_sop
	@tar --exclude=.git --exclude=.odoo --exclude=build -cf - . | tar -xf - -C $(LINT_DIR)/crm_sales_sop
	cd $(LINT_DIR) && $(PYTHON) -m pylint --rcfile=crm_sales_sop/.pylintrc \
		--valid-odoo-versions=18.0 crm_sales_sop

bench: link
	$(PYTHON) bench/bench.py --db $(BENCH_DB) --addons-path $(ADDONS_PATH)

clean:
	@dropdb --if-exists $(TEST_DB) || true
	@dropdb --if-exists $(BENCH_DB) || true
	@dropdb --if-exists $(UNINSTALL_DB) || true
	@rm -rf $(ADDONS_DIR)
