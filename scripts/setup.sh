#!/usr/bin/env bash
# One set-up for a fresh machine of this kind: Debian packages the project needs, npm dependencies, the build.
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(python3-torch python3-torchvision python3-pytest python3-yaml python3-opencv python3-onnx ffmpeg tmux)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Reinstall npm dependencies only when the lockfile changed since the last install.
stamp=node_modules/.cvopt-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci" >&2
  npm ci --no-fund --no-audit --loglevel=error
  echo "$want" > "$stamp"
fi

# Native modules must really load, not just be present.
node -e "require('onnxruntime-node'); require('sharp'); new (require('better-sqlite3'))(':memory:')"

npm run --silent build

# Put `cvopt` on PATH (the README's examples call it so); elsewhere use `npx cvopt`.
if [ -w /usr/local/bin ]; then
  printf '#!/bin/sh\nexec node "%s/packages/cli/dist/main.js" "$@"\n' "$PWD" > /usr/local/bin/cvopt
  chmod +x /usr/local/bin/cvopt
fi
