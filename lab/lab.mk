# Makefile fragment for the haplan lab; the top-level Makefile includes it.
#   make lab [NODES=3] [SPARES=2] [HOSTS=3]   install prerequisites, bring the lab up
#   make lab-down                  remove the lab (keeps the cached host image)
#   make lab-status                one line per lab host
#   make lab-reset                 remove the haplan cluster from the lab (watch a full install again)
#   make lab-test                  the lab's own end-to-end tests (build tag lab)
NODES ?= 3
HOSTS ?= 3
SPARES ?= 2
GO ?= go

.PHONY: lab lab-down lab-status lab-test lab-reset
lab:
	./lab/prereqs.sh
	$(GO) run ./cmd/haplab up --nodes $(NODES) --spares $(SPARES) --hosts $(HOSTS)

lab-down:
	$(GO) run ./cmd/haplab down

lab-reset:
	$(GO) run ./cmd/haplab reset

lab-status:
	$(GO) run ./cmd/haplab status

lab-test:
	$(GO) test -tags lab -count=1 ./lab/
