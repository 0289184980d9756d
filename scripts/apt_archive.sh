#!/usr/bin/env bash
# Prints the URI of the Debian archive this machine's apt uses for SUITE (default: bookworm),
# read from its own sources (/etc/apt/sources.list, sources.list.d/*.list in one-line form,
# sources.list.d/*.sources in deb822 form), so scripts that bootstrap a Debian root or fetch
# packages use the same archive as the host and name no host of their own.
#
#   scripts/apt_archive.sh [SUITE]     exit 1, with a message, when no source serves SUITE
set -euo pipefail
suite=${1:-bookworm}
shopt -s nullglob
uri=""
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [[ -f $f ]] || continue
  # deb [options] URI SUITE COMPONENTS...
  uri=$(awk -v suite="$suite" '
    $1 == "deb" {
      i = 2
      if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
      if ($(i + 1) == suite) { print $i; exit }
    }' "$f")
  [[ -n $uri ]] && break
done
if [[ -z $uri ]]; then
  for f in /etc/apt/sources.list.d/*.sources; do
    # Stanzas are separated by blank lines; fields are "Name: value" (names case-insensitive).
    uri=$(awk -v suite="$suite" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        for (k = 1; k <= NF; k++) {
          line = $k
          if (line ~ /^#/) continue
          split(line, kv, ":")
          name = tolower(kv[1]); value = substr(line, length(kv[1]) + 2)
          gsub(/^[ \t]+|[ \t]+$/, "", value)
          if (name == "types") types = value
          else if (name == "uris") uris = value
          else if (name == "suites") suites = value
          else if (name == "enabled") enabled = tolower(value)
        }
        if (enabled == "no" || (" " types " ") !~ / deb /) next
        if ((" " suites " ") ~ (" " suite " ")) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f")
    [[ -n $uri ]] && break
  done
fi
if [[ -z $uri ]]; then
  echo "apt_archive: no apt source of this machine serves '$suite' (looked in /etc/apt/sources.list" \
    "and /etc/apt/sources.list.d/)" >&2
  exit 1
fi
echo "${uri%/}"
