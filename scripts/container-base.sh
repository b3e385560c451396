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
# Stand-ins for the official redis and postgres images of the generated compose file's optional profiles, built
# from Debian's packages (the compose file takes the image names from CVOPT_REDIS_IMAGE / CVOPT_POSTGRES_IMAGE).
REDIS_IMAGE=${CVOPT_REDIS_IMAGE:-localhost/cvopt-redis}
POSTGRES_IMAGE=${CVOPT_POSTGRES_IMAGE:-localhost/cvopt-postgres}
if ! podman image exists "$REDIS_IMAGE"; then
  echo "container-base: $REDIS_IMAGE (Debian's redis-server)" >&2
  ctx=$(mktemp -d /var/tmp/cvopt-redis.XXXXXX)
  cat > "$ctx/Containerfile" <<'DOCKERFILE'
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
DOCKERFILE
  podman build -q --layers=false --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" -t "$REDIS_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
fi
if ! podman image exists "$POSTGRES_IMAGE"; then
  echo "container-base: $POSTGRES_IMAGE (Debian's PostgreSQL, the official image's POSTGRES_USER/PASSWORD/DB)" >&2
  ctx=$(mktemp -d /var/tmp/cvopt-postgres.XXXXXX)
  cat > "$ctx/entrypoint.sh" <<'SCRIPT'
#!/bin/sh
# First start: initdb with POSTGRES_USER / POSTGRES_PASSWORD, create POSTGRES_DB; then run the server.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -n1)
U=${POSTGRES_USER:-postgres}
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" > /run/postgresql/pw
  chown postgres /run/postgresql/pw
  runuser -u postgres -- "$BIN/initdb" -D "$PGDATA" -U "$U" --pwfile=/run/postgresql/pw --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f /run/postgresql/pw
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != "$U" ] || [ "$U" != postgres ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    runuser -u postgres -- "$BIN/psql" -h /run/postgresql -U "$U" -d postgres -qc "CREATE DATABASE \"${POSTGRES_DB:-$U}\""
    runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  fi
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql
SCRIPT
  cat > "$ctx/Containerfile" <<'DOCKERFILE'
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
RUN chmod 755 /usr/local/bin/postgres-entrypoint.sh
ENV PGHOST=/run/postgresql
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
DOCKERFILE
  podman build -q --layers=false --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" -t "$POSTGRES_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
fi
echo "$NODE_IMAGE"
