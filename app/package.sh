#!/usr/bin/env bash
# Builds keycap and wraps it in a desktop package with `fyne package`
# (module fyne.io/tools): on Linux a keycap.tar.xz holding the program, a
# .desktop entry and the icon, installable with `make -C keycap install`
# after unpacking (or `sudo make install` there).
#
# usage: app/package.sh [linux|darwin|windows]   (run from the repository root)
#
# fyne package reads FyneApp.toml from the directory it runs in and rewrites
# it (it bumps Build and drops comments), so this runs it on a copy.
set -euo pipefail
os=${1:-$(go env GOOS)}
fyne_tools=fyne.io/tools/cmd/fyne@v1.7.4
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
exe=keycap
[ "$os" = windows ] && exe=keycap.exe
GOOS=$os go build -trimpath -ldflags=-s -o "$work/$exe" ./cmd/keycap
cp FyneApp.toml "$work/"
mkdir -p "$work/assets" && cp assets/icon.png "$work/assets/"
# fyne package wants Go code in its source directory; a stub will do, as
# the program is already built.
printf 'package main\n' > "$work/stub.go"
(cd "$work" && go run "$fyne_tools" package -os "$os" -executable "$work/$exe" -release)
for f in "$work"/keycap.tar.xz "$work"/keycap.app "$work"/keycap.exe.zip; do
	[ -e "$f" ] && cp -R "$f" "$root/" && echo "wrote $(basename "$f")"
done
exit 0
