#!/usr/bin/env bash
# npm run package:deb [-- OUTPUT_DIR]: builds oauth2-mail-proxy_<version>_all.deb with dpkg-deb.
# The program is compiled from src/ into the package's own tree (the working copy's dist/ is left
# alone, so tests running from it are not disturbed) and installed with its production
# dependencies under /usr/lib/oauth2-mail-proxy; /usr/bin/oauth2-mail-proxy runs it with the
# nodejs package's /usr/bin/node. Maintainer and date: DEBFULLNAME/DEBEMAIL, SOURCE_DATE_EPOCH.
set -euo pipefail
cd "$(dirname "$0")/.."

name=oauth2-mail-proxy
version=$(node -p "require('./package.json').version")
out_dir=$(realpath "${1:-.}")
maintainer="${DEBFULLNAME:-oauth2-mail-proxy developers} <${DEBEMAIL:-oauth2-mail-proxy@users.noreply.github.com}>"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
lib=$root/usr/lib/$name
doc=$root/usr/share/doc/$name
umask 022

# The program and its production dependencies, exactly as locked.
install -d "$lib"
npx tsc -p tsconfig.build.json --outDir "$lib/dist" --sourceMap false
chmod 0755 "$lib/dist/cli/main.js"
cp package.json package-lock.json "$lib/"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
rm -f "$lib/package-lock.json"
# What the modules ship for their developers (tests, benchmarks, docs, dotfiles, type declarations)
# is not needed to run them. Scripts (#!) keep the x bit, nothing else needs it.
find "$lib/node_modules" -mindepth 1 \( -name '.*' -o \( -type d \( -name test -o -name tests \
  -o -name benchmarks -o -name docs -o -name examples \) \) -o -name '*.md' -o -name '*.d.ts' \
  -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.html' \) -prune -exec rm -rf {} +
find "$lib/node_modules" -type d -empty -delete
find "$lib/node_modules" -type f -exec chmod 0644 {} +
grep -rlZ --include='*' -m1 '^#!' "$lib/node_modules" | xargs -0 -r sh -c '
  for file; do [ "$(head -c2 "$file")" = "#!" ] && chmod 0755 "$file"; done' sh

install -d "$root/usr/bin"
printf '#!/bin/sh\nexec /usr/bin/node /usr/lib/%s/dist/cli/main.js "$@"\n' "$name" >"$root/usr/bin/$name"
chmod 0755 "$root/usr/bin/$name"

# Units and the system user. The units in systemd/ name the npm-installed /usr/local/bin path.
for unit in system user; do
  src=systemd/$name.service
  [ "$unit" = user ] && src=systemd/user/$name.service
  install -d "$root/usr/lib/systemd/$unit"
  sed "s|/usr/local/bin/$name|/usr/bin/$name|g" "$src" >"$root/usr/lib/systemd/$unit/$name.service"
done
install -D -m 0644 systemd/sysusers.d/$name.conf "$root/usr/lib/sysusers.d/$name.conf"

# The configuration directory: root's, like systemd's ConfigurationDirectory= makes it. dpkg removes
# it only when empty, so a config.ini the administrator wrote stays through removal and purge.
install -d -m 0755 "$root/etc/$name"

# Documentation, the example config, the man page.
install -D -m 0644 config.example.ini "$doc/examples/config.example.ini"
install -m 0644 README.md "$doc/"
install -d "$doc/docs"
find docs -maxdepth 1 -name '*.md' ! -name '*.1.md' -exec install -m 0644 {} "$doc/docs/" \;
date_rfc=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
sed -e "s|@VERSION@|$version|g" -e "s|@MAINTAINER@|$maintainer|g" -e "s|@DATE@|$date_rfc|g" \
  packaging/deb/changelog | gzip -9n >"$doc/changelog.gz"
node packaging/deb-copyright.js "$lib" >"$doc/copyright"
install -d "$root/usr/share/man/man1"
npx marked-man --no-breaks --version "$version" --manual "$name manual" --section 1 \
  docs/$name.1.md | gzip -9n >"$root/usr/share/man/man1/$name.1.gz"

# Control files.
install -d "$root/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/postrm "$root/DEBIAN/"
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|g" -e "s|@MAINTAINER@|$maintainer|g" \
  -e "s|@INSTALLED_SIZE@|$installed_size|g" packaging/deb/control >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb=$out_dir/${name}_${version}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
