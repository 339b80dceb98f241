# keycap — `make run` builds and starts the app, `make test` installs what the
# tests need and runs them all. Both work on a fresh Debian/Ubuntu machine
# with Go; system packages are installed with apt (through sudo when not root).

SHELL := /bin/bash
GO ?= go
BIN := bin/keycap
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 5s

# Fyne's OpenGL/X11 build dependencies.
APT_BUILD := gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev
# Real parts the tests run against: an X server, a session bus, a Secret
# Service, a notification daemon, and a browser for rendered reports.
APT_TEST := xvfb xauth dbus gnome-keyring dunst libnotify-bin curl imagemagick chromium fonts-dejavu-core

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# ensure installs the listed Debian packages that are missing.
define ensure
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

.PHONY: run build test deps-build deps-test lint unit fuzz fuzz-short bench audit clean

run: build
	@./$(BIN)

build: deps-build
	$(GO) build -o $(BIN) ./cmd/keycap

deps-build:
	$(call ensure,$(APT_BUILD))

deps-test: deps-build
	$(call ensure,$(APT_TEST))
	@command -v npm >/dev/null || { echo "Installing Node.js and npm (for the official Node SDK test)"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }

test: deps-test lint unit fuzz-short

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit:
	npm ci --prefix cmd/keycap/testdata/node --no-audit --no-fund --loglevel=error
	$(GO) test -race -count=1 ./watchdog/... ./keystore/...
	$(GO) test -count=1 ./cmd/... ./app/...

# Each fuzz target briefly; `make fuzz FUZZTIME=5m` for a longer run.
FUZZ_TARGETS := \
	./watchdog/meter:FuzzSSE \
	./watchdog/meter:FuzzJSONBody \
	./watchdog/meter:FuzzPlan \
	./keystore/dotenv:FuzzRemove \
	./watchdog/reconcile:FuzzPage \
	./watchdog/standin:FuzzWAVSeconds

fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg >/tmp/keycap-fuzz.log 2>&1 || { cat /tmp/keycap-fuzz.log; exit 1; }; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(if $(filter 5s,$(FUZZTIME)),2m,$(FUZZTIME))

# Benchmarks: direct vs a bare reverse proxy vs keycap in one run, then
# memory, start-up and `keycap status` with a million-row ledger.
bench: build deps-test
	$(GO) test -run '^$$' -bench . -benchtime 3s ./watchdog/...
	xvfb-run -a $(GO) run ./cmd/keycap/testdata/bench -keycap $(BIN)

# govulncheck needs the online vulnerability database; run it where the
# network allows. It is not part of `make test`.
audit:
	$(GO) run golang.org/x/vuln/cmd/govulncheck@latest ./...

clean:
	rm -rf bin
