# harden — see README.md. `make demo` and `make test` do all set-up themselves.
GO      ?= go
BIN     := bin
PLUGINS := $(notdir $(wildcard plugins/*))
# Go modules besides the root one: the plugin SDK (shared/) and plugins
# written against the SDK alone, outside harden's module (plugins/*/go.mod).
MODULES := shared $(patsubst %/go.mod,%,$(wildcard plugins/*/go.mod))
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/harden-dev/harden/host/internal/cli.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2

.PHONY: all build setup test test-unit test-sdk proto proto-check lint demo bench clean

all: build

# Every binary is built with -trimpath: one set of build-cache entries for
# all of them (mixed flags compile every package twice — minutes on a
# fresh machine).
build:
	@mkdir -p $(BIN)/plugins
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/harden ./host/cmd/harden
	@for p in $(PLUGINS); do \
		out=$(CURDIR)/$(BIN)/plugins/harden-plugin-$$p; \
		echo "(cd plugins/$$p && $(GO) build -trimpath -ldflags \"-s -w\" -o $$out .)"; \
		(cd plugins/$$p && $(GO) build -trimpath -ldflags "-s -w" -o $$out .) || exit 1; \
		chmod go-w $$out; \
	done
	$(GO) build -trimpath -o $(BIN)/testenv ./testenv/cmd/testenv

# Installs what the real servers need (PostgreSQL from Debian when missing).
setup:
	@scripts/setup.sh

# Unit tests, end-to-end tests over real plugin processes, and real-server
# tests (PostgreSQL, Kafka, Vault, SeaweedFS: setup installs them). The real
# servers are required: CI=true makes a test whose server cannot start fail
# instead of skipping. HARDEN_ALLOW_SKIP=1 lets them skip (CI as the caller
# set it); scripts/testrun lists every skipped test at the end either way.
test: setup build
	CI=$(if $(filter 1,$(HARDEN_ALLOW_SKIP)),$(CI),true) GO=$(GO) $(GO) run ./scripts/testrun $(addprefix -module ,$(MODULES)) -count=1 -timeout 30m ./...

# The plugin SDK module on its own, as a third party builds it.
test-sdk:
	cd shared && GOWORK=off $(GO) test -count=1 ./...

proto:
	scripts/proto.sh

proto-check:
	scripts/proto.sh --check

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	@for m in $(MODULES); do \
		echo "(cd $$m && go vet ./... && staticcheck ./...)"; \
		(cd $$m && $(GO) vet ./... && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...) || exit 1; \
	done
	cd host/testdata/echoplugin && $(GO) vet ./...

# The demo installs only its own needs first (setup's test-only packages and
# the Vault/SeaweedFS builds are not waited for: demo.sh builds those in the
# background while its first stage runs).
# The Debian packages and the Kafka jars install while Go builds (network
# and disk against CPU): on a fresh machine the first check shows sooner.
# Only the first stage's plugins are built before the demo starts; demo.sh
# builds the rest (make build) in the background before Vault and SeaweedFS.
DEMO_FIRST_PLUGINS := postgres kafka service proxy
demo:
	@HARDEN_SETUP_DEMO=1 HARDEN_SETUP_SKIP_BUILDS=1 scripts/setup.sh & setup=$$!; \
		$(MAKE) --no-print-directory build PLUGINS="$(DEMO_FIRST_PLUGINS)" || { wait $$setup; exit 1; }; \
		wait $$setup || { echo "make demo: setup failed"; exit 1; }
	scripts/demo.sh

bench: build
	scripts/bench.sh

clean:
	rm -rf $(BIN)
