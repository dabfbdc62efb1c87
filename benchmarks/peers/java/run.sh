#!/usr/bin/env bash
# Start a Java peer built by build.sh: ./run.sh jetty|jdk|spring  (listens on 127.0.0.1:$PORT)
set -euo pipefail
cd "$(dirname "$0")"
variant="${1:-jetty}"
case "$variant" in
  jetty) main=JettyPeer ;;
  # TCP_NODELAY: without it the JDK server stalls on delayed ACKs (~40 ms per
  # keep-alive response, under 1k req/s).
  spring) main=SpringPeer ;;
  jdk) main=JdkPeer; JAVA_OPTS="-Dsun.net.httpserver.nodelay=true ${JAVA_OPTS:-}" ;;
  *) echo "usage: $0 jetty|jdk|spring" >&2; exit 2 ;;
esac
if [ ! -f "build/$variant.classpath" ]; then
  echo "not built: run ./build.sh $variant first" >&2
  exit 3
fi
exec java ${JAVA_OPTS:-} -cp "$(cat "build/$variant.classpath")" "$main"
