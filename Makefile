# Two commands do all the set-up on a fresh Debian 12 machine, as root:
#   make demo   bring up the local three-host lab and run the wizard on profiles/lab.yaml
#   make test   install what the tests need, then run them (unit + real integration tests on the lab)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := mariadb-server galera-4 galera-arbitrator-4 mariadb-backup socat rsync openssh-server \
	redis-server pdns-server pdns-backend-bind pdns-backend-sqlite3 iproute2 iptables dnsutils tmux procps binutils curl python3-venv \
	systemd-container debootstrap tcpdump
PYTEST_ARGS ?=

.PHONY: deps apt venv demo test unit lint lab-up lab-down bench bench-backup bench-backup-large faults drills first-connections clean

deps: apt venv

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: deps
	$(BIN)/studio-cluster lab up
	$(BIN)/studio-cluster check profiles/lab.yaml
	@if [ -t 0 ] && [ -t 1 ]; then $(BIN)/studio-cluster --profile profiles/lab.yaml; \
	else echo "no terminal: skipping the wizard (run: $(BIN)/studio-cluster --profile profiles/lab.yaml)"; fi

lint: venv
	$(BIN)/ruff check wizard tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

# Two pytest-xdist workers: one drives the namespace lab, the other the systemd lab and then the tests that need no
# lab (tests/conftest.py groups them); the two labs share nothing.
test: deps lint
	$(BIN)/pytest -q -n 2 --dist loadgroup -m "not drill" --durations=30 $(PYTEST_ARGS)

# Long fault and day-2 drills (issues 8 and 16): the systemd lab's day-2 drills, backup faults mid-stream.
drills: deps
	$(BIN)/pytest -q -m drill $(PYTEST_ARGS)

# Issue 9 input 7: the first SSH connections right after `lab up`, LOOPS times (make test runs 5).
LOOPS ?= 50
first-connections: deps
	STUDIO_CLUSTER_FIRST_CONNECTION_LOOPS=$(LOOPS) $(BIN)/pytest -q tests/lab/test_first_connections.py

lab-up: deps
	$(BIN)/studio-cluster lab up

lab-down: venv
	$(BIN)/studio-cluster lab down

# Issue 12: every benchmark against its floor, alternating in one run, each printing its ratio and writing its
# report to docs/ (bench-bootstrap.md, bench-recover.md, bench-checks.md, bench-first-paint.md); the lab ones
# under the lab lock, one after the other (about 10 minutes with a free lab).
bench: deps
	flock /tmp/studio-lab.lock $(BIN)/python bench/bootstrap.py
	flock /tmp/studio-lab.lock $(BIN)/python bench/recover.py
	flock /tmp/studio-lab.lock $(BIN)/python bench/checks.py
	$(BIN)/python bench/first_paint.py

# Issue 8: `backup take` against a raw mariabackup stream to the Arbiter on a 1.3 GB data set, 3 alternating rounds,
# in one run under the lab lock (about 3 minutes; not part of `make test`); writes docs/bench-backup.md.
bench-backup: deps
	flock /tmp/studio-lab.lock $(BIN)/python bench/backup.py

# The same at 8,000,000 rows (a 9.5 GB copy, where the stream is long next to garbd's join): about 10 minutes and
# about 40 GB of free disk while it runs; writes docs/bench-backup-large.md.
bench-backup-large: deps
	flock /tmp/studio-lab.lock $(BIN)/python bench/backup.py --rows 8000000 --rounds 5 --out docs/bench-backup-large.md

# The seeded fault suite (issue 7): SCHEDULES schedules of kill/partition/DDL-crash/... faults, each recovered by
# `studio-cluster recover` alone; takes the shared lab lock per schedule; writes docs/reliability.md.
SEED ?= 1
SCHEDULES ?= 20
faults: deps
	mkdir -p runs
	$(BIN)/python -m tests.faults --seed $(SEED) --schedules $(SCHEDULES) --lock /tmp/studio-lab.lock \
		--report docs/reliability.md --json runs/faults-seed$(SEED).json

clean: lab-down
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
