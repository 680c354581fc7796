#!/usr/bin/env bash
# Redmine for tests/apps/redmine.rs: Debian bookworm's `redmine` 5.0.4 with `redmine-sqlite`,
# served by Rails' own server on Debian's `puma`.
#
# Debian's package reads its instance from REDMINE_INSTANCE (or X_DEBIAN_SITEID): config,
# tmp, log and files under /usr/share/redmine/instances/<instance>/, a symlink to
# /var/lib/redmine. Nothing here touches the system's instances: dbconfig-common is told not
# to set up a database (debconf preseed), and a copy of /usr/share/redmine under
# target/apps/redmine/root has its own `instances` folder (each test instance is a symlink
# there to its temporary folder) and a Gemfile.local adding puma and bootsnap. A template database is
# migrated and seeded once here (tests/apps/redmine/prepare.rake: the default data, a project
# with the issue tracker, a member role); each test instance starts on a copy of it and adds
# its accounts. Idempotent; skipped once target/apps/redmine/.installed exists.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source tests/apps/lib.sh
repo=$(pwd)

dir=target/apps/redmine
version=5.0.4-5+deb12u1
packages=(redmine=$version redmine-sqlite=$version puma ruby-bootsnap sqlite3)

missing() {
  [ -f /usr/share/redmine/config/application.rb ] || return 0
  [ -d /usr/share/doc/redmine-sqlite ] || return 0
  [ -d /usr/share/doc/puma ] || return 0
  [ -d /usr/share/doc/ruby-bootsnap ] || return 0
  command -v sqlite3 >/dev/null 2>&1 || return 0
  return 1
}

if missing; then
  # dbconfig-common sets up no database for the system's default instance.
  debconf-set-selections <<'SELECTIONS'
redmine redmine/instances/default/dbconfig-install boolean false
redmine redmine/instances/default/database-type select sqlite3
SELECTIONS
  apt_install "${packages[@]}"
fi
if [ -f "$dir/.installed" ]; then
  exit 0
fi

echo "preparing: redmine's own root and template database (in $dir)"
rm -rf "$dir"
mkdir -p "$dir"
abs=$(cd "$dir" && pwd)
cp -a /usr/share/redmine "$dir/root"
root="$dir/root"
# The package's relative links (public/javascripts/jquery.min.js -> ../../../javascript/...)
# would point nowhere from the copy: each becomes a link to what it resolves to.
(cd /usr/share/redmine && find . -type l) | while read -r link; do
  ln -sfn "$(readlink -f "/usr/share/redmine/$link")" "$root/$link"
done
rm -f "$root/instances" "$root/Gemfile.lock" "$root/config/database.yml"
mkdir -p "$root/instances"
cat >"$root/Gemfile.local" <<'GEMS'
# chorus tests: Rails' server on Debian's puma, bootsnap (loaded through RUBYOPT), and
# SQLite whatever the system's instances use (the Gemfile only looks at /usr/share/redmine's).
gem 'puma'
gem 'bootsnap', require: false
gem 'msgpack', require: false
gem 'sqlite3', '~> 1.4.0' unless dependencies.any? { |d| d.name == 'sqlite3' }
GEMS
(cd "$root" && BUNDLE_SILENCE_ROOT_WARNING=1 bundle install --local --quiet)

# The template instance: its config, and a database migrated and seeded once.
template="$root/instances/template"
mkdir -p "$template/config" "$template/tmp" "$template/log" "$template/files"
cat >"$template/config/database.yml" <<YAML
production:
  adapter: sqlite3
  database: $abs/template.sqlite3
  timeout: 5000
YAML
ruby -rsecurerandom -e 'puts SecureRandom.hex(32)' >"$template/config/secret_key.txt"
(
  cd "$root"
  export REDMINE_INSTANCE=template RAILS_ENV=production BUNDLE_SILENCE_ROOT_WARNING=1
  # Debian's bootsnap caches what Rails loads (chorus:prepare loads all of Redmine), so that
  # each test instance boots on a warm cache (tests/apps/redmine.rs sets the same).
  export RUBYOPT="-rmsgpack -rbootsnap/setup" BOOTSNAP_CACHE_DIR="$abs/bootsnap"
  # The migrations, then (in a process that sees the migrated tables) Redmine's default data
  # and chorus:prepare (prepare.rake).
  if ! { bundle exec rake db:migrate &&
    REDMINE_LANG=en bundle exec rake --rakelib "$repo/tests/apps/redmine" \
      redmine:load_default_data chorus:prepare; } >"$abs/prepare.log" 2>&1; then
    cat "$abs/prepare.log"
    exit 1
  fi
  tail -n 1 "$abs/prepare.log"
)
rm -rf "$template"
touch "$dir/.installed"
