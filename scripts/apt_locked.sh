# apt_locked ARGS...: `apt-get ARGS...` that waits for other apt/dpkg runs (unattended
# upgrades, a parallel install) instead of failing at once. apt itself waits for dpkg's
# locks (DPkg::Lock::Timeout), but gives up at once on the lists lock (`update`) and the
# archives lock (`install` while another apt downloads): those are retried here, every
# APT_RETRY_SECONDS (10) for up to APT_RETRY_TIMES (90) tries. Any other failure fails at
# once, with apt's own message. Sourced by scripts/test.
apt_locked() {
  local out tries=${APT_RETRY_TIMES:-90}
  for ((try = 1; ; try++)); do
    if out=$(apt-get -o DPkg::Lock::Timeout=900 "$@" 2>&1); then
      return 0
    fi
    if ! grep -qiE 'unable to lock|could not get lock|unable to acquire' <<<"$out" \
      || ((try >= tries)); then
      printf '%s\n' "$out" >&2
      return 1
    fi
    echo "apt-get $1: another apt or dpkg holds a lock; waiting (try $try of $tries)" >&2
    sleep "${APT_RETRY_SECONDS:-10}"
  done
}
