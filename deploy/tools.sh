# The tools deploy/check and deploy/podman/check need, installed when missing: sourced by both
# (not run on its own). The caller sets `me` (its name, for messages) and `deploy` (this
# directory). Debian packages with apt-get, as root; the Python ones with pip into one
# virtualenv under ~/.cache (DEPLOY_CHECK_VENV overrides) that both scripts share.
# shellcheck shell=bash

python_requirements=(
  yamllint==1.38.0
  kubernetes-validate==1.37.0
  cloudcoil-models-prometheus-operator==0.80.1.0
  # Helm v4's Go library (with its lint, values schema and renderer) in a wheel: no helm
  # binary is packaged for Debian 12, and none can be downloaded here.
  helm-python-sdk==0.2.2
  # CloudFormation's own linter (its resource schemas ship in the wheel): validates
  # deploy/cloudformation offline.
  cfn-lint==1.58.0
)
me=${me:-deploy/tools.sh}
venv=${DEPLOY_CHECK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ssm-association-exporter/deploy-check-venv}

die() {
  printf '%s: %s\n' "$me" "$*" >&2
  exit 1
}

apt_updated=
apt_install() {
  [[ $(id -u) == 0 ]] || die "missing Debian package(s) $*: install them (apt-get install $*) or run as root"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z $apt_updated ]]; then
    apt-get update -qq
    apt_updated=1
  fi
  echo "$me: installing $* (apt-get)"
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_debian_tool() { # COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
  command -v "$1" >/dev/null 2>&1 || die "$2 is installed but $1 is still not on PATH"
}

need_python_tools() {
  if [[ -x $venv/bin/python && "$(cat "$venv/.requirements" 2>/dev/null)" == "${python_requirements[*]}" ]]; then
    return
  fi
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  echo "$me: installing ${python_requirements[*]} (pip, into $venv)"
  if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
    apt_install python3-venv
    python3 -m venv --clear "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${python_requirements[@]}"
  echo "${python_requirements[*]}" >"$venv/.requirements"
}

# kustomize >= 4 renders these kustomizations (a directory in `resources`, `patches` with a
# target, per-generator `options`). It comes with kubectl >= 1.21 (`kubectl kustomize`), which
# this project's machine image has, or as the standalone `kustomize`. Neither can be installed
# from what is reachable here: Debian (bookworm) has no kustomize package, and its only kubectl,
# kubernetes-client 1.20, embeds kustomize v2.0.3, which rejects all three features; no PyPI or
# npm package ships kustomize itself. So a machine without either fails here, saying so.
kustomize=()
need_kustomize() {
  if command -v kustomize >/dev/null 2>&1; then
    kustomize=(kustomize build)
  elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
    kustomize=(kubectl kustomize)
  else
    die "neither kubectl (>= 1.21) nor kustomize (>= 4) is on PATH, and neither can be installed from Debian, PyPI or npm (Debian's kubernetes-client 1.20 embeds kustomize v2.0.3, too old for these kustomizations)"
  fi
  local version
  version=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p' || true)
  [[ ${kustomize[0]} == kustomize ]] && version=$(kustomize version 2>/dev/null || true)
  echo "$me: rendering with '${kustomize[*]}' (kustomize ${version:-version unknown})"
}
