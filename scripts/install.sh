#!/usr/bin/env bash
# Install ktp-printsrv as a service on Debian 12 (as root), from this checkout.
#
#   bash scripts/install.sh              install or upgrade
#   bash scripts/install.sh --uninstall  remove the program and its units; keep the data
#
# Where things go (each can be overridden from the environment, e.g. for a test install):
#   PREFIX=/opt/ktp-printsrv          the program and its own venv (.venv)
#   STATE_DIR=/var/lib/ktp-printsrv   the instance: database, token, keys, logs (0700)
#   CONF_DIR=/etc/ktp-printsrv        printsrv.toml (settings) and printsrv.env (secrets)
#   BACKUP_DIR=/var/backups/ktp-printsrv
#   UNIT_DIR=/etc/systemd/system
#   SERVICE_USER=printsrv
#   SYSTEMCTL=systemctl               "true" installs the units without touching systemd
#   VENV_FROM=                        reuse this venv (symlink) instead of building one
set -euo pipefail
umask 022  # the program files are world-readable; the instance makes itself private (0700)
SRC="$(cd "$(dirname "$0")/.." && pwd)"

PREFIX=${PREFIX:-/opt/ktp-printsrv}
STATE_DIR=${STATE_DIR:-/var/lib/ktp-printsrv}
CONF_DIR=${CONF_DIR:-/etc/ktp-printsrv}
BACKUP_DIR=${BACKUP_DIR:-/var/backups/ktp-printsrv}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
SERVICE_USER=${SERVICE_USER:-printsrv}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
VENV_FROM=${VENV_FROM:-}

UNITS=(printsrv-web.service printsrv-station@.service printsrv-notify.service
       printsrv-purge.service
       printsrv-purge.timer printsrv-backup.service printsrv-backup.timer
       printsrv-audit-checkpoint.service printsrv-audit-checkpoint.timer)

[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

if [ "${1:-}" = "--uninstall" ]; then
  for unit in printsrv-web.service printsrv-notify.service printsrv-purge.timer printsrv-backup.timer \
              printsrv-audit-checkpoint.timer; do
    $SYSTEMCTL disable --now "$unit" 2>/dev/null || true
  done
  $SYSTEMCTL stop 'printsrv-station@*.service' 2>/dev/null || true
  for unit in "${UNITS[@]}"; do rm -f "$UNIT_DIR/$unit"; done
  $SYSTEMCTL daemon-reload 2>/dev/null || true
  rm -rf "$PREFIX"
  echo "removed $PREFIX and the units; kept the data: $STATE_DIR, $CONF_DIR, $BACKUP_DIR" \
       "and the user $SERVICE_USER"
  exit 0
fi

echo "== system packages and the program ($PREFIX)"
mkdir -p "$PREFIX"
# The tracked files of this checkout (or all of it outside git), never a venv or instance data.
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$SRC" ls-files -z | (cd "$SRC" && xargs -0 cp --parents -t "$PREFIX")
else
  tar -C "$SRC" --exclude=.venv --exclude=var --exclude=.git -cf - . | tar -C "$PREFIX" -xf -
fi
chown -R root:root "$PREFIX"
chmod -R go-w "$PREFIX"
if [ -n "$VENV_FROM" ]; then
  ln -sfn "$VENV_FROM" "$PREFIX/.venv"
else
  # The system Python: a service user cannot run an interpreter under /root (pyenv).
  PYTHON=${PYTHON:-/usr/bin/python3} bash "$PREFIX/scripts/setup.sh"
fi

echo "== user $SERVICE_USER and folders"
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  useradd --system --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
          --comment "ktp-printsrv" "$SERVICE_USER"
fi
install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"
install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$BACKUP_DIR"
install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR"
if [ ! -e "$CONF_DIR/printsrv.toml" ]; then
  cat > "$CONF_DIR/printsrv.toml" <<EOF
# ktp-printsrv settings (docs/operations.md). Unknown keys are errors.
instance_dir = "$STATE_DIR"
# database_url = "postgresql+psycopg://printsrv@/printsrv?host=db1,db2&target_session_attrs=read-write"

# One table per print station; enable each with: systemctl enable --now printsrv-station@NAME
# [stations.loket1]
# office = "35.26.01"
# cups_queue = "Evolis1"
# reader = "Evolis Primacy 2 CL 00 00"
# profile = "evolis-primacy2"
EOF
  chown root:"$SERVICE_USER" "$CONF_DIR/printsrv.toml"
  chmod 0640 "$CONF_DIR/printsrv.toml"
fi
if [ ! -e "$CONF_DIR/printsrv.env" ]; then
  (
  umask 027
  {
    echo "# Secrets for the services (mode 0640, root:$SERVICE_USER)."
    echo "PRINTSRV_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    echo "# PRINTSRV_TOKEN_PIN=   (production HSM PIN; development tokens keep theirs in keys/)"
  } > "$CONF_DIR/printsrv.env"
  )
  chown root:"$SERVICE_USER" "$CONF_DIR/printsrv.env"
  chmod 0640 "$CONF_DIR/printsrv.env"
fi

echo "== database and keys (run.py init as $SERVICE_USER)"
run_as_service() {
  runuser -u "$SERVICE_USER" -- env PRINTSRV_CONFIG="$CONF_DIR/printsrv.toml" \
    "$PREFIX/.venv/bin/python" "$PREFIX/run.py" "$@"
}
(cd "$STATE_DIR" && run_as_service init)

echo "== systemd units ($UNIT_DIR)"
mkdir -p "$UNIT_DIR"
for unit in "${UNITS[@]}"; do
  sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@STATE_DIR@|$STATE_DIR|g" -e "s|@CONF_DIR@|$CONF_DIR|g" \
      -e "s|@BACKUP_DIR@|$BACKUP_DIR|g" -e "s|^User=printsrv$|User=$SERVICE_USER|" \
      -e "s|^Group=printsrv$|Group=$SERVICE_USER|" \
      "$PREFIX/scripts/systemd/$unit" > "$UNIT_DIR/$unit"
  chmod 0644 "$UNIT_DIR/$unit"
done
$SYSTEMCTL daemon-reload
$SYSTEMCTL enable --now printsrv-web.service printsrv-notify.service printsrv-purge.timer \
  printsrv-backup.timer \
  printsrv-audit-checkpoint.timer

echo "installed. Import the personalization key (key ceremony, one component per custodian):"
echo "  runuser -u $SERVICE_USER -- env PRINTSRV_CONFIG=$CONF_DIR/printsrv.toml \\"
echo "      $PREFIX/.venv/bin/python $PREFIX/run.py keys import-perso"
echo "then check it with:"
echo "  runuser -u $SERVICE_USER -- env PRINTSRV_CONFIG=$CONF_DIR/printsrv.toml \\"
echo "      $PREFIX/.venv/bin/python $PREFIX/run.py doctor"
echo "Add stations to $CONF_DIR/printsrv.toml, then: systemctl enable --now printsrv-station@NAME"
