# Seed-harness habits. PROFILE=photoncloud on Nix hosts (nix run .#cluster -- ...).
PROFILE ?= reference
DRIVER ?= photon-driver --profile $(PROFILE)

.PHONY: cluster-smoke cluster-start cluster-status cluster-stop cluster-clean test lint
cluster-smoke:
	$(DRIVER) fresh-smoke
cluster-start:
	$(DRIVER) cluster start
cluster-status:
	$(DRIVER) cluster status
cluster-stop:
	$(DRIVER) cluster stop
cluster-clean:
	$(DRIVER) cluster clean
test:
	python3 -m pytest -v tests
lint:
	ruff check driver tests testscripts bench && ruff format --check driver tests bench && mypy
