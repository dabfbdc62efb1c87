#!/usr/bin/env bash
# Compile the Java peers with plain javac (no Maven build).
#   ./build.sh jetty   JettyPeer: Jetty 12.1.13 jars from the local Maven repository
#   ./build.sh jdk     JdkPeer:   JDK-only com.sun.net.httpserver (no jars)
# Idempotent. Jars are found by globbing $M2_REPO (default ~/.m2/repository);
# the resolved classpath is written to build/<variant>.classpath for run.sh.
set -euo pipefail
cd "$(dirname "$0")"
variant="${1:-jetty}"
M2_REPO="${M2_REPO:-$HOME/.m2/repository}"
JETTY_VERSION="${JETTY_VERSION:-12.1.13}"
SLF4J_VERSION="${SLF4J_VERSION:-2.0.17}"
mkdir -p "build/$variant"

case "$variant" in
  jetty)
    jars=(
      "$M2_REPO/org/eclipse/jetty/jetty-server/$JETTY_VERSION/jetty-server-$JETTY_VERSION.jar"
      "$M2_REPO/org/eclipse/jetty/jetty-http/$JETTY_VERSION/jetty-http-$JETTY_VERSION.jar"
      "$M2_REPO/org/eclipse/jetty/jetty-io/$JETTY_VERSION/jetty-io-$JETTY_VERSION.jar"
      "$M2_REPO/org/eclipse/jetty/jetty-util/$JETTY_VERSION/jetty-util-$JETTY_VERSION.jar"
      "$M2_REPO/org/slf4j/slf4j-api/$SLF4J_VERSION/slf4j-api-$SLF4J_VERSION.jar"
      # no-op logging provider: silences slf4j's "no providers" warning, logs nothing
      "$M2_REPO/org/slf4j/slf4j-nop/$SLF4J_VERSION/slf4j-nop-$SLF4J_VERSION.jar"
    )
    for j in "${jars[@]}"; do
      if [ ! -f "$j" ]; then
        echo "missing jar: $j (no Maven registry is reachable; use the java-httpserver peer)" >&2
        exit 3
      fi
    done
    cp_jars="$(IFS=:; echo "${jars[*]}")"
    srcs=(src/MatMul.java src/JettyPeer.java)
    ;;
  jdk)
    cp_jars=""
    srcs=(src/MatMul.java src/JdkPeer.java)
    ;;
  *)
    echo "usage: $0 jetty|jdk" >&2
    exit 2
    ;;
esac

javac --release 17 -nowarn -d "build/$variant" ${cp_jars:+-cp "$cp_jars"} "${srcs[@]}"
echo "$PWD/build/$variant${cp_jars:+:$cp_jars}" > "build/$variant.classpath"
