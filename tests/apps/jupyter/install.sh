#!/usr/bin/env bash
# Jupyter (tests/apps/jupyter.rs): Notebook 7.5 (its UI on JupyterLab 4.5, served by
# jupyter_server 2.21) and the Python kernel ipykernel 7.1, from PyPI in a venv under
# target/apps/jupyter. Idempotent: once target/apps/jupyter/.installed holds the fingerprint
# of this script, it only checks the Debian packages and exits.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source tests/apps/lib.sh

app=target/apps/jupyter
src=tests/apps/jupyter

need_python_venv

fingerprint=$(cat "$src"/install.sh | sha256sum | cut -d' ' -f1)
# A venv is not relocatable: one made under another path (a worktree's) does not start here.
if [ -f "$app/.installed" ] && [ "$(cat "$app/.installed")" = "$fingerprint" ] \
  && "$app/venv/bin/jupyter-notebook" --version >/dev/null 2>&1; then
  exit 0
fi

echo "installing: Jupyter Notebook 7.5 and ipykernel 7.1 (pip, in $app)"
rm -rf "$app"
python3 -m venv "$app/venv"
"$app/venv/bin/pip" install -q --disable-pip-version-check \
  notebook==7.5.0 jupyterlab==4.5.11 jupyter_server==2.21.1 jupyter_client==8.10.0 \
  ipykernel==7.1.0 tornado==6.6.1
echo "$fingerprint" > "$app/.installed"
