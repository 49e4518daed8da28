# PyROS: the two commands are `make up` (run everything in one process) and `make test`.
.PHONY: up test setup lint kafka postgres bench clean

up: setup
	.venv/bin/pyros up

test:
	scripts/test.sh

setup:
	scripts/setup.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy libs/

bench:
	.venv/bin/python benchmarks/bus_hop.py
	.venv/bin/python benchmarks/visibility.py
	.venv/bin/python benchmarks/scheduler.py
	.venv/bin/python benchmarks/alert_intake.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
