#!/usr/bin/env bash
# The installed package as a user meets it: `cmake --install` into a scratch prefix, then
#   - examples/downstream built against it with find_package(captcha_ocr), and with pkg-config;
#   - the installed Python package finding the installed model by itself;
#   - `cpack -G DEB`: each package's files and dependencies (dpkg-deb), and the reading package
#     unpacked into a scratch root reading an example from there.
# usage: tests/install_package.sh BUILD_DIR SOURCE_DIR PYTHON
set -euo pipefail
build=$(realpath "$1"); source=$(realpath "$2"); python=${3:-/usr/bin/python3}
scratch=$(mktemp -d); [ -n "${KEEP:-}" ] || trap 'rm -rf "$scratch"' EXIT; echo "scratch: $scratch"
example="$source/examples/clean-C9CF8T.png"; label=C9CF8T
fail() { echo "FAIL: $*" >&2; exit 1; }

prefix="$scratch/prefix"
cmake --install "$build" --prefix "$prefix" > "$scratch/install.log"
for f in bin/captcha-ocr-read include/captcha/reader.h share/captcha-ocr/models/general.safetensors \
         lib/cmake/captcha_ocr/captcha_ocrConfig.cmake lib/pkgconfig/captcha-ocr.pc; do
  [ -e "$prefix/$f" ] || fail "cmake --install did not install $f"
done

# The trainer's library uses the reading library's symbols rather than holding copies.
if [ -e "$prefix/lib/libcaptcha_ocr_train.so" ]; then
  objdump -p "$prefix/lib/libcaptcha_ocr_train.so" | grep -q "NEEDED *libcaptcha_ocr.so.0" ||
    fail "libcaptcha_ocr_train.so does not load libcaptcha_ocr.so"
  nm -DC --defined-only "$prefix/lib/libcaptcha_ocr_train.so" | grep -q "captcha::decode_image" &&
    fail "libcaptcha_ocr_train.so holds its own copy of the reading library"
fi

# find_package(captcha_ocr) and captcha_ocr::reader; the bundled model from captcha_ocr_MODEL.
cmake -S "$source/examples/downstream" -B "$scratch/downstream" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  > "$scratch/downstream.log" || { cat "$scratch/downstream.log"; fail "the downstream project does not configure"; }
cmake --build "$scratch/downstream" > "$scratch/downstream-build.log" || { cat "$scratch/downstream-build.log"; fail "the downstream project does not build"; }
out=$("$scratch/downstream/read-captcha" "$example")
[ "$(cut -f2 <<< "$out")" = "$label" ] || fail "find_package build read '$out', not $label"
"$scratch/downstream/read-captcha" "$scratch/missing.png" 2> "$scratch/err" && fail "a missing image exited 0"
grep -q "missing.png" "$scratch/err" || fail "the missing image's error does not name it: $(cat "$scratch/err")"

# pkg-config, the prefix found from the .pc file's place.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
model=$(pkg-config --variable=model captcha-ocr)
[ -f "$model" ] || fail "pkg-config's model variable names no file: $model"
# shellcheck disable=SC2046
g++ -std=c++17 -o "$scratch/read-pc" "$source/examples/downstream/read_captcha.cpp" -DCAPTCHA_OCR_MODEL="\"$model\"" \
  $(pkg-config --cflags --libs captcha-ocr) -Wl,-rpath,"$prefix/lib" || fail "pkg-config's flags do not build the example"
[ "$("$scratch/read-pc" "$example" | cut -f2)" = "$label" ] || fail "the pkg-config build misread the example"

# The installed Python package, with the installed model as its default.
if [ -d "$prefix/lib/python3/dist-packages/captcha_ocr" ]; then
  got=$(cd "$scratch" && PYTHONPATH="$prefix/lib/python3/dist-packages" CAPTCHA_OCR_MODEL= "$python" -c \
        "import captcha_ocr, sys; print(captcha_ocr.default_model()); print(captcha_ocr.Reader().read(sys.argv[1]).text)" "$example")
  [ "$(sed -n 1p <<< "$got")" = "$prefix/share/captcha-ocr/models/general.safetensors" ] || fail "python's default model: $got"
  [ "$(sed -n 2p <<< "$got")" = "$label" ] || fail "the installed Python package read '$got'"
fi

# Debian packages.
(cd "$build" && cpack -G DEB -B "$scratch/deb" > "$scratch/cpack.log") || { cat "$scratch/cpack.log"; fail "cpack -G DEB failed"; }
read_deb=$(ls "$scratch"/deb/captcha-ocr_*.deb)
contents=$(dpkg-deb -c "$read_deb")
for f in ./usr/bin/captcha-ocr-read ./usr/bin/captcha-ocr-serve ./usr/include/captcha/reader.h ./usr/lib/libcaptcha_ocr.so \
         ./usr/share/captcha-ocr/models/general.safetensors ./usr/lib/cmake/captcha_ocr/captcha_ocrConfig.cmake \
         ./usr/lib/pkgconfig/captcha-ocr.pc; do
  grep -q " $f\( \|$\)" <<< "$contents" || fail "$read_deb lacks $f"
done
depends=$(dpkg-deb -f "$read_deb" Depends)
grep -q "libc6" <<< "$depends" || fail "the reading package declares no libc6: $depends"
grep -q "libjpeg62-turbo" <<< "$depends" || fail "the reading package does not declare libjpeg62-turbo: $depends"
grep -q "libtorch" <<< "$depends" && fail "the reading package depends on LibTorch: $depends"
if ls "$scratch"/deb/captcha-ocr-train_*.deb > /dev/null 2>&1; then
  train_deb=$(ls "$scratch"/deb/captcha-ocr-train_*.deb)
  train_contents=$(dpkg-deb -c "$train_deb"); train_depends=$(dpkg-deb -f "$train_deb" Depends)
  grep -q " ./usr/bin/captcha-ocr$" <<< "$train_contents" || fail "$train_deb lacks captcha-ocr"
  grep -q "libtorch" <<< "$train_depends" || fail "the training package does not declare LibTorch: $train_depends"
  grep -q "captcha-ocr (=" <<< "$train_depends" || fail "the training package does not depend on captcha-ocr: $train_depends"
fi
root="$scratch/root"
dpkg-deb -x "$read_deb" "$root"
got=$("$root/usr/bin/captcha-ocr-read" predict --model "$root/usr/share/captcha-ocr/models/general.safetensors" "$example")
grep -q "$label" <<< "$got" || fail "the unpacked package read '$got'"
echo "installed, built against, packaged: ok"
