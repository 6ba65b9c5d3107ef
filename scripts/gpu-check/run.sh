#!/bin/bash
# One-shot GPU check of Weir's native core on the device machine, which has
# CUDA and Python's onnxruntime but no Node.js: see README.md here. Run from
# the repository root with $OUT set; everything it learns goes to $OUT.
set -u
G=$(pwd)/scripts/gpu-check
B=$(pwd)/.gpu-bundle
exec > >(tee "$OUT/log.txt") 2>&1
echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; head -2 /etc/os-release; ldd --version | head -1
echo "== python onnxruntime"
python3 -c "import onnxruntime as o,os,sys;print(o.__version__,o.get_available_providers(),os.path.dirname(o.__file__),sys.version.split()[0])"
SITES=$(python3 -c "import site,sys;print(' '.join(site.getsitepackages()+[site.getusersitepackages()]))")
CAPI=$(python3 -c "import onnxruntime as o,os;print(os.path.join(os.path.dirname(o.__file__),'capi'))")
ls "$CAPI"
echo "== node"
python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('$B/node.xz'),open('/tmp/node','wb'))"; chmod +x /tmp/node
NODE_LIBS=""
/tmp/node --version || { NODE_LIBS=$B/lib; LD_LIBRARY_PATH=$NODE_LIBS /tmp/node --version; }
echo "== libraries with ORT's C API"
CANDIDATES=$(find /usr /opt $SITES -xdev \( -name 'libonnxruntime.so*' -o -name 'onnxruntime_pybind11_state*.so' \) 2>/dev/null | sort -u)
LIB=$(python3 - $CANDIDATES <<'PY'
import ctypes, sys
found = []
for path in sys.argv[1:]:
    try:
        lib = ctypes.CDLL(path)
        getattr(lib, 'OrtGetApiBase'); found.append(path); print('C API in', path, file=sys.stderr)
    except Exception as e:
        print('no C API in', path, ':', str(e)[:200], file=sys.stderr)
plain = [p for p in found if 'libonnxruntime.so' in p]
print((plain or found or [''])[0])
PY
)
echo "LIB=$LIB"
NV=$(ls -d $(for s in $SITES; do echo $s/nvidia/*/lib; done) 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="${NV}/usr/local/cuda/lib64:${NODE_LIBS}"
PRELOAD=""
case "$LIB" in *pybind11*)
  PRELOAD=$(python3 -c "import sysconfig,os;p=os.path.join(sysconfig.get_config_var('LIBDIR'),sysconfig.get_config_var('LDLIBRARY'));print(p if os.path.exists(p) and p.endswith('.so') or '.so.' in p else '')")
  echo "preloading libpython: '$PRELOAD'";;
esac
if [ -n "$LIB" ]; then
  echo "== check.mjs"
  LD_PRELOAD="$PRELOAD" WEIR_ORT_LIBRARY="$LIB" OUT="$OUT" timeout 300 /tmp/node "$G/check.mjs" | head -c 4000; echo
  echo "== ref.py"
  OUT="$OUT" timeout 120 python3 "$G/ref.py" | head -c 4000; echo
fi
echo "== done"
