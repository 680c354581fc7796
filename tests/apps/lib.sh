# What the install scripts of tests/apps/*/install.sh share. Each script sources it after its
# `cd` to the repository's root (`source tests/apps/lib.sh`), so that each stays runnable
# alone (`bash tests/apps/<app>/install.sh`); .ci/run runs them all.

# apt_install PACKAGE...: installs Debian packages, quietly and without questions (a
# package's own questions are preseeded before), waiting for apt's lock when another install
# holds it.
apt_install() {
  echo "installing: $* (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "$@" </dev/null >/dev/null
}

# need_python_venv: python3 and its venv module (for an app installed from PyPI in a venv),
# from Debian when either is missing.
need_python_venv() {
  local missing=()
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

# npm_app NAME PACKAGE...: the npm packages of app NAME under target/apps/NAME, once
# (target/apps/NAME/.installed marks it done); when done, only checks that node is there.
npm_app() {
  local name=$1
  shift
  local dir=target/apps/$name
  if [ -f "$dir/.installed" ]; then
    command -v node >/dev/null || { echo "$name needs node: apt-get install nodejs npm" >&2; exit 1; }
    return 0
  fi
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "$@" >/dev/null
  touch "$dir/.installed"
}
