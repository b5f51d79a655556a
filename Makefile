# haplan: make demo (lab + plan + apply) and make test (everything CI runs).
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
NODES ?= 3
HOSTS ?= 3
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build test unit lint fuzz e2e demo prereqs tools clean

all: build

build:
	$(GO) build -o bin/haplan ./cmd/haplan

include lab/lab.mk

tools:
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags lab ./...
	staticcheck ./...
	staticcheck -tags lab ./...

unit:
	$(GO) test -race -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime 10s -fuzzminimizetime 3s ./manifests/
	$(GO) test -run '^$$' -fuzz '^FuzzLoadHCL$$' -fuzztime 10s -fuzzminimizetime 3s ./manifests/
	$(GO) test -run '^$$' -fuzz '^FuzzHostsFile$$' -fuzztime 10s -fuzzminimizetime 3s ./manifests/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 10s -fuzzminimizetime 3s ./rancherapi/

# End-to-end and lab tests: real sshd, dockerd, MariaDB, HAProxy and registry.
e2e: lab build
	$(GO) test -tags lab -count=1 -timeout 40m -p 1 ./...

test: lint unit fuzz e2e

demo: lab build
	@echo "== haplan plan (lab/out/cluster.yaml)"
	./bin/haplan plan -f lab/out/cluster.yaml
	@echo "== haplan apply"
	./bin/haplan apply -f lab/out/cluster.yaml --auto-approve
	@echo "== haplan plan again (must be empty)"
	./bin/haplan plan -f lab/out/cluster.yaml --detailed-exitcode

clean:
	rm -rf bin

# Performance, side by side with Ansible and raw OpenSSH on the lab's fleet
# (f1..f1000 as hosts of the lab's cluster), and apply's engine overhead on a
# full install (resets the lab's cluster). Not part of make test. See BENCHMARKS.md.
BENCH_SIZES ?= 10,100,1000
# e.g. BENCH_FLAGS="-ansible-max 20m" to run Ansible at 1000 hosts too (~25 min)
BENCH_FLAGS ?=
.PHONY: bench
bench: lab build
	$(GO) run ./cmd/haplab fleet up --hosts 1001 --per 251
	./bench/prereqs.sh
	$(GO) build -o bin/haplan-bench ./bench/cmd/haplan-bench
	./bin/haplan-bench -sizes $(BENCH_SIZES) $(BENCH_FLAGS)
