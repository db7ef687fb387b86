# Two entry points for a fresh Debian machine with Python 3.11: `make demo` and `make test`.
PY := .venv/bin/python

.PHONY: demo test lint bench bench-quick clean

demo:
	@bash scripts/bootstrap.sh base
	@bash scripts/demo.sh

test:
	@bash scripts/bootstrap.sh test
	@bash scripts/test.sh

lint:
	@.venv/bin/ruff check src tests bench

bench:
	@bash scripts/bootstrap.sh test
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

bench-quick:
	@bash scripts/bootstrap.sh test
	@for b in bench/bench_*.py; do echo "== $$b --quick"; $(PY) $$b --quick || exit 1; done

clean:
	rm -rf .venv demo-campaign build *.egg-info
