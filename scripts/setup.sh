#!/usr/bin/env bash
# Installs every Debian package captcha-ocr needs, selects OpenBLAS (OpenMP) as the system
# BLAS/LAPACK (LibTorch links the system BLAS; the reference BLAS is 5-6x slower here), then
# configures and builds the project in Release into build/.
#
#   scripts/setup.sh            install + build
#   SKIP_INSTALL=1 scripts/setup.sh   build only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libopenblas0-openmp
  libopencv-dev libcli11-dev nlohmann-json3-dev libgtest-dev
  libfreetype-dev                                   # captcha-ocr generate draws text with FreeType
  libstb-dev libjpeg-dev libwebp-dev                # image files (OpenCV's imgcodecs loads ~120 libraries)
  clang-14 libclang-rt-14-dev libomp-14-dev         # fuzz targets (fuzz/README.md)
  libcpp-httplib-dev libssl-dev wrk                 # captcha-ocr serve (HTTP; wrk for bench/serve.sh)
  chromium chromium-driver nginx-light curl         # serve's page in headless Chromium; two instances behind nginx
  fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf fonts-lato
  fonts-linuxlibertine fonts-cantarell fonts-quicksand                  # sans, serif, mono
  fonts-comic-neue fonts-dkg-handwriting fonts-breip fonts-dancingscript  # handwriting-like
  fonts-apropal fonts-bebas-neue fonts-cabin fonts-dosis fonts-jura fonts-kaushanscript   # display faces
  fonts-league-spartan fonts-lobster fonts-millimetre fonts-play fonts-radisnoir fonts-roboto-slab
  fonts-beteckna fonts-cabinsketch fonts-comfortaa fonts-eurofurence fonts-fantasque-sans
  fonts-humor-sans fonts-leckerli-one fonts-manrope fonts-monofur fonts-okolaks fonts-opendin
  fonts-reggae fonts-routed-gothic fonts-staypuft fonts-tomsontalks fonts-train fonts-ubuntu-title
  fonts-urw-base35 fonts-croscore fonts-open-sans fonts-oxygen fonts-ebgaramond fonts-tuffy   # --font-set extended
  fonts-yanone-kaffeesatz fonts-hack fonts-inconsolata fonts-league-mono fonts-goudybookletter fonts-kristi fonts-summersby
  fonts-adf-accanthis fonts-adf-berenis fonts-adf-gillius fonts-adf-ikarius fonts-adf-irianis  # --font-set held-out
  fonts-adf-mekanus fonts-adf-romande fonts-adf-switzera fonts-adf-tribun fonts-adf-universalis fonts-adf-verana
  fonts-crosextra-caladea fonts-crosextra-carlito fonts-firacode fonts-femkeklaver fonts-isabella
  php-cli php-gd php-mbstring php-gregwar-captcha   # ../shared/tools/gregwar-dataset
  pybind11-dev python3-dev python3-pytest python3-numpy python3-pil   # the Python package and its tests
)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  as_root update-alternatives --set "libblas.so.3-$multiarch" "/usr/lib/$multiarch/openblas-openmp/libblas.so.3"
  as_root update-alternatives --set "liblapack.so.3-$multiarch" "/usr/lib/$multiarch/openblas-openmp/liblapack.so.3"
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
# LibTorch translation units need about 1.5 GiB each to compile; two at a time fit everywhere.
cmake --build build -j "$(nproc)"
echo "setup: built build/captcha-ocr"
