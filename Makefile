# The dev loop.  `make test` is the README's test command and what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# `make run CONFIG=x.json`, or ROSEY_CONFIG=x.json in the environment (as for `rosey` itself).
CONFIG ?= $(or $(ROSEY_CONFIG),config.json)

.PHONY: setup run status doctor check-config scale test unit integration e2e test-tools check lint types \
	bench clean

# `make` alone is the dev loop: lint, types and the whole suite.
.DEFAULT_GOAL := check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: setup
	$(VENV)/bin/rosey --config $(CONFIG) run

status: setup
	$(VENV)/bin/rosey --config $(CONFIG) status

doctor: setup
	$(VENV)/bin/rosey --config $(CONFIG) doctor

check-config: setup
	$(VENV)/bin/rosey check-config $(CONFIG)

test: setup test-tools
	$(PY) -m pytest -q

# The quick loop while editing (~20 s): the unit tier only, which tests/conftest.py keeps
# in one process (no subprocesses, no network sockets).  `make test` runs every tier.
unit: setup
	$(PY) -m pytest -q -m unit tests/unit

# The tiers above it, for when a change touches processes, sockets or supervisord.
integration: setup test-tools
	$(PY) -m pytest -q -m integration

e2e: setup test-tools
	$(PY) -m pytest -q -m e2e

# The alert-rule and dashboard tests run Prometheus' own promtool/amtool/prometheus: a
# missing tool fails those tests (a skip would hide it), so install them when we can.
PROM_TOOLS := promtool amtool prometheus
test-tools:
	@missing=""; for t in $(PROM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "test-tools: installing prometheus prometheus-alertmanager (missing:$$missing)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      prometheus prometheus-alertmanager >/dev/null; \
	  else \
	    echo "test-tools: missing$$missing: sudo apt-get install --no-install-recommends" \
	      "prometheus prometheus-alertmanager (the monitoring tests need them)"; exit 1; \
	  fi; \
	fi

lint: setup
	$(VENV)/bin/ruff check rosey procs tests bench fakes

# Strict, on the trees pyproject's [tool.mypy] files lists (rosey procs tests bench fakes).
types: setup
	$(VENV)/bin/mypy

check: lint types test

bench: setup
	$(PY) -m bench.scenarios
	$(PY) -m bench.router
	$(PY) -m bench.pool
	$(PY) -m bench.conn_intake
	$(PY) -m bench.conn_memory
	$(PY) -m bench.pipeline
	$(PY) -m bench.memory
	$(PY) -m bench.streaming
	$(PY) -m bench.channels
	$(PY) -m bench.fairness
	$(PY) -m bench.endpoints

scale: setup
	$(VENV)/bin/rosey --config $(CONFIG) scale $(N)

# systemd service (README "Deployment with systemd"): as root, from the checkout the unit
# will run (default /opt/rosey; not under /home or /root: the unit has ProtectHome=yes).
# Creates the system user `rosey`, /etc/rosey/config.json (from the example, with the run
# and data dirs the unit may write) and an empty /etc/rosey/rosey.env for secrets, both
# kept if present; installs and enables the unit.  Start it with `systemctl start rosey`.
.PHONY: install-service
install-service: setup
	@test "$$(id -u)" = 0 || { echo "install-service: run as root (sudo make install-service)"; exit 1; }
	@case "$(CURDIR)" in /home/*|/root/*) echo "install-service: move the checkout out of \
	$(CURDIR) (e.g. to /opt/rosey): the unit has ProtectHome=yes"; exit 1;; esac
	id -u rosey >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/rosey \
		--no-create-home --shell /usr/sbin/nologin rosey
	install -d -m 0750 -o root -g rosey /etc/rosey
	test -e /etc/rosey/config.json || $(PY) -c 'import json; c = json.load(open("etc/config.example.json")); \
		c["paths"].update(run_dir="/run/rosey", data_dir="/var/lib/rosey"); \
		json.dump(c, open("/etc/rosey/config.json", "w"), indent=2)'
	chown root:rosey /etc/rosey/config.json && chmod 0640 /etc/rosey/config.json
	test -e /etc/rosey/rosey.env || install -m 0600 -o root -g root /dev/null /etc/rosey/rosey.env
	sed 's#/opt/rosey#$(CURDIR)#g' etc/systemd/rosey.service > /etc/systemd/system/rosey.service
	chmod 0644 /etc/systemd/system/rosey.service
	systemctl daemon-reload
	systemctl enable rosey
	@echo "next: edit /etc/rosey/config.json (channel, user, llm) and /etc/rosey/rosey.env"
	@echo "(OPENAI_API_KEY=..., ROSEY_PASSWORD=...), check with"
	@echo "  systemd-run --pty --wait --collect -p User=rosey -p EnvironmentFile=/etc/rosey/rosey.env \\"
	@echo "    $(CURDIR)/.venv/bin/rosey --config /etc/rosey/config.json doctor"
	@echo "then: systemctl start rosey; journalctl -u rosey -f"

clean:
	rm -rf $(VENV) run .pytest_cache .mypy_cache .ruff_cache

# Chaos (tests/e2e/test_chaos.py): 30 rounds of SIGKILL of a random process under real
# supervisord; prints lost/duplicates/recovery and the seed (ROSEY_CHAOS_SEED=N replays it).
.PHONY: chaos
chaos: setup
	ROSEY_CHAOS_ROUNDS=$${ROSEY_CHAOS_ROUNDS:-30} \
	ROSEY_CHAOS_MAX_EXCESS=$${ROSEY_CHAOS_MAX_EXCESS:-2.5} \
	ROSEY_CHAOS_MAX_EXCESS_POOL=$${ROSEY_CHAOS_MAX_EXCESS_POOL:-6} \
	$(PY) -m pytest -q -s -p no:cacheprovider tests/e2e/test_chaos.py
