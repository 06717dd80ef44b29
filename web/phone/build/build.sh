#!/usr/bin/env bash
# Rebuilds web/phone/vendor/jssip.min.js from the pinned JsSIP (run after changing its version).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --silent
npx esbuild entry.js --bundle --format=iife --minify --legal-comments=none --outfile=../vendor/jssip.min.js
