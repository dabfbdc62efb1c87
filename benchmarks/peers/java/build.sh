#!/usr/bin/env bash
# Compile the Java peers with plain javac (no Maven build).
#   ./build.sh jetty   JettyPeer: Jetty 12.1.13 jars from the local Maven repository
#   ./build.sh jdk     JdkPeer:   JDK-only com.sun.net.httpserver (no jars)
#   ./build.sh spring  SpringPeer: Spring MVC 4.3 on embedded Tomcat 9, jars from Debian's packages
#                      in /usr/share/java (libspring-web-servlet-java libspring-context-java
#                      libtomcat9-java libjackson2-databind-java), compiled with --release 8
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
  spring)
    jars=()
    for name in spring3-core spring3-beans spring3-context spring3-aop spring3-expression spring3-web spring3-web.servlet \
        tomcat9-catalina tomcat9-coyote tomcat9-api tomcat9-util tomcat9-util-scan tomcat9-juli tomcat9-jni \
        tomcat9-annotations-api tomcat9-servlet-api tomcat9-jaspic-api \
        jackson-databind jackson-core jackson-annotations commons-logging; do
      jar="/usr/share/java/$name.jar"
      if [ ! -f "$jar" ]; then
        echo "missing $jar: apt-get install -y libspring-web-servlet-java libspring-context-java libtomcat9-java libjackson2-databind-java" >&2
        exit 3
      fi
      jars+=("$jar")
    done
    cp_jars="$(IFS=:; echo "${jars[*]}")"
    # Debian's Spring 4.3 reads class files with its repackaged ASM: Java 8 bytecode.
    release=8
    srcs=(src/MatMul.java src/SpringPeer.java)
    ;;
  *)
    echo "usage: $0 jetty|jdk|spring" >&2
    exit 2
    ;;
esac

javac --release "${release:-17}" -nowarn -d "build/$variant" ${cp_jars:+-cp "$cp_jars"} "${srcs[@]}"
echo "$PWD/build/$variant${cp_jars:+:$cp_jars}" > "build/$variant.classpath"
