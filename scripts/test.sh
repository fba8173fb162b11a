#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what the tests need when it is missing
# (Debian packages via apt-get), then runs formatting, lints, docs and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, as "command:package" pairs.
needs=(
  promtool:prometheus                                # rule checks and rule unit tests
  amtool:prometheus-alertmanager                     # example Alertmanager config check
  prometheus-alertmanager:prometheus-alertmanager    # end-to-end tests
  systemd-analyze:systemd                            # example unit check
  chromium:chromium                                  # preview page browser test
  chromedriver:chromium-driver                       #   driven over WebDriver
  redis-server:redis-server                          # shared state of replicas (tests start their own)
  openssl:openssl                                    #   certificates for its rediss:// test
)
missing=()
for pair in "${needs[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# A CJK font, so the browser test's screenshot (target/preview.png) shows Chinese text.
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  missing+=(fonts-wqy-microhei)
fi
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
# No doc tests exist; leaving them out keeps the last summary line the integration suite.
cargo test --locked --lib --bins --tests
