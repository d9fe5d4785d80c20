#!/bin/sh
# docker-image-pusher: runs the program bundled in this kit with the Deno runtime bundled beside
# it. Nothing else is needed: no Deno or Node installed, no network, no writable home.
# (Made by scripts/release.ts from scripts/release/launcher.sh.)
set -e

# The kit's folder, found from this file's own path through any symlinks to it (e.g. one in
# /usr/local/bin). `readlink -f` is missing on older macOS, so links are followed one by one.
self=$0
case $self in */*) ;; *) self=./$self ;; esac
while [ -L "$self" ]; do
  target=$(readlink -- "$self")
  case $target in
    /*) self=$target ;;
    *) self=${self%/*}/$target ;;
  esac
done
unset CDPATH
kit=$(cd -P -- "${self%/*}/.." && pwd -P)

# No update check (it would reach the network) and no permission prompt (it would stop a script
# waiting for an answer). Deno keeps its code cache in DENO_DIR (default ~/.cache/deno) when it
# can write there, and runs without one when it cannot.
DENO_NO_UPDATE_CHECK=1
DENO_NO_PROMPT=1
export DENO_NO_UPDATE_CHECK DENO_NO_PROMPT

# exec: the runtime takes this process's place, so signals (Ctrl-C), stdin, stdout and the exit
# code are the program's own.
exec "$kit/lib/deno" run @DENO_FLAGS@ "$kit/lib/docker-image-pusher.js" "$@"
