# Shortcuts for the scripts in scripts/ (which need only python3; make is optional).
.PHONY: run test lint bench
run:
	scripts/run
test:
	scripts/test
lint:
	scripts/lint
bench:
	scripts/bench
