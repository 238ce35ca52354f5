#!/usr/bin/env bash
# The binary must carry one HTTP/TLS stack: rustls 0.23 with ring, hyper 1.
# With default features the named crates would also pull rustls 0.21,
# hyper 0.14, aws-lc and OpenSSL; this fails if any of them comes back.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(cargo tree -p hpa-tier -e normal --prefix none --locked)
bad=0
for crate in aws-lc-rs aws-lc-sys openssl-sys native-tls; do
  if grep -q "^$crate v" <<<"$tree"; then echo "forbidden dependency: $crate" >&2; bad=1; fi
done
for crate in rustls hyper http h2; do
  versions=$(grep "^$crate v" <<<"$tree" | awk '{print $2}' | sort -u)
  if [[ $(wc -l <<<"$versions") -gt 1 ]]; then echo "two versions of $crate: $versions" >&2; bad=1; fi
done
exit $bad
