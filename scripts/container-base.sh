#!/usr/bin/env bash
# Everything the container tests and bench/package.mjs need, on a machine with no Docker daemon and no image
# registry: rootful podman (+ compose and the dnsname plugin so compose services resolve each other), a Debian
# bookworm base image made with debootstrap, and a Node base image holding the host's own node binary (the same
# major as the project). Both images are built once and reused (`podman image exists`), so a second run takes
# a second. Kept out of scripts/setup.sh so the ordinary setup stays fast; only the container tests call it.
#
# Usage: bash scripts/container-base.sh        prints the Node base image name on stdout when done
# Needs root (apt, debootstrap, rootful podman). Source scripts/containers.env for CONTAINERS_CONF.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF="$PWD/scripts/containers.conf"

DEBIAN_IMAGE=${CVOPT_DEBIAN_IMAGE:-localhost/debian:bookworm-slim}
NODE_IMAGE=${CVOPT_NODE_IMAGE:-localhost/cvopt-node20}
MIRROR=${CVOPT_DEBIAN_MIRROR:-http://deb.debian.org/debian}

DEBS=(podman runc podman-compose golang-github-containernetworking-plugin-dnsname debootstrap)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "container-base: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! podman image exists "$DEBIAN_IMAGE"; then
  echo "container-base: debootstrap bookworm -> $DEBIAN_IMAGE (about a minute)" >&2
  root=$(mktemp -d /var/tmp/cvopt-debootstrap.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/dev/null
  # What the official slim images also leave out: package caches and lists, docs, man pages, locales.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log
  find "$root"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
  tar -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

if ! podman image exists "$NODE_IMAGE"; then
  echo "container-base: $NODE_IMAGE (host node $(node -v))" >&2
  ctx=$(mktemp -d /var/tmp/cvopt-node-base.XXXXXX)
  cp "$(readlink -f "$(command -v node)")" "$ctx/node"
  # The same layout as the official node:*-bookworm-slim image: node in /usr/local/bin, a `node` user of uid 1000.
  cat > "$ctx/Containerfile" <<'DOCKERFILE'
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY node /usr/local/bin/node
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node && node --version
CMD ["node"]
DOCKERFILE
  podman build -q --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" -t "$NODE_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
fi
echo "$NODE_IMAGE"
