#!/bin/sh
# Builds the stand-in rancher/server:v1.0.1 image and, from the same binary,
# the rancher/agent:v1.0.1 image an HA node pulls at run time. Works from any
# directory.
# The agent image is also tagged as the network agent image nodes pre-pull
# (rancher/agent-instance:v0.8.1; the stand-in never runs it).
# Usage: lab/standin/build.sh [TAG [AGENT_TAG [INSTANCE_TAG]]]
#   (defaults rancher/server:v1.0.1 rancher/agent:v1.0.1 rancher/agent-instance:v0.8.1)
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
root=$(CDPATH= cd -- "$here/../.." && pwd)
tag=${1:-rancher/server:v1.0.1}
agent_tag=${2:-rancher/agent:v1.0.1}
instance_tag=${3:-rancher/agent-instance:v0.8.1}
go=${GO:-go}
if ! command -v "$go" >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    go=/usr/local/go/bin/go
fi
mkdir -p "$root/bin"
(cd "$root" && CGO_ENABLED=0 "$go" build -trimpath -ldflags='-s -w' -o bin/rancher-standin ./cmd/rancher-standin)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$root/bin/rancher-standin" "$ctx/rancher-standin"
docker build -q -f "$here/Dockerfile" -t "$tag" "$ctx"
# The next release, for upgrade tests: the same server, another tag.
if [ "$tag" = rancher/server:v1.0.1 ]; then
    docker build -q -f "$here/Dockerfile" --build-arg SERVER_TAG=v1.0.2 -t rancher/server:v1.0.2 "$ctx"
fi
docker build -q -f "$here/Dockerfile.agent" -t "$agent_tag" "$ctx"
docker tag "$agent_tag" "$instance_tag"
