# PyROS: the two commands are `make up` (run everything in one process) and `make test`.
.PHONY: up up-real night test setup lint kafka postgres bench clean

up: setup
	.venv/bin/pyros up --simulate

up-real: setup
	.venv/bin/pyros up

test:
	scripts/test.sh

setup:
	scripts/setup.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy libs/

night: setup
	.venv/bin/pyros night --simulate --site gft-spm --date 2026-12-15 --workload examples/night.json \
	  --alert tests/data/voevents/swift/bat_grb_pos_1125809.xml@06:10 --speed max --report out/

bench:
	.venv/bin/python benchmarks/bus_hop.py
	.venv/bin/python benchmarks/visibility.py
	.venv/bin/python benchmarks/scheduler.py
	.venv/bin/python benchmarks/alert_intake.py
	.venv/bin/python benchmarks/night.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
