#!/usr/bin/env python3
"""Build the FAT32 data image for the storage tests and the GCMA demo.

The image holds a generated file set: a few large files under /big and many
small ones (with long, mixed-case names) under /small/dNN/, plus
/MANIFEST.TXT ("seed N" then one "SIZE PATH" line per file). Every byte of a
file is a pure function of (seed, path, offset), the same function as the
Rust crate `testdata` (kernel/crates/testdata/src/lib.rs):

    h    = fnv1a64(path)                         # path without leading '/'
    word = splitmix64(seed ^ rotl64(h, 17) ^ (w * 0x9E3779B97F4A7C15))
    file bytes 8w..8w+8 = word, little endian

so the kernel can check every byte it reads without stored checksums. The
Rust tests build an image with this script and check it with `testdata`.

Needs mkfs.fat (dosfstools) and mcopy/mmd (mtools). Only the output file is
written, plus a staging directory that is removed at the end.

Example:
    tools/mkdata/mkdata.py --out build/data.img --image-mb 64 --files 200 \
        --large 4 --total-mb 24 --seed 1
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & M64
    return h


def splitmix64(x: int) -> int:
    z = (x + GOLDEN) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def content_key(seed: int, path: str) -> int:
    h = fnv1a64(path.lstrip("/").encode("utf-8"))
    rot = ((h << 17) | (h >> 47)) & M64
    return (seed ^ rot) & M64


def content(seed: int, path: str, offset: int, length: int) -> bytes:
    """Bytes offset..offset+length of the file at `path`."""
    key = content_key(seed, path)
    first = offset // 8
    last = (offset + length + 7) // 8
    out = bytearray()
    for w in range(first, last):
        out += splitmix64(key ^ ((w * GOLDEN) & M64)).to_bytes(8, "little")
    start = offset - first * 8
    return bytes(out[start:start + length])


def selftest():
    """Known values, pinned identically in the Rust crate's tests."""
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert splitmix64(0) == 0xE220A8397B1DCDAF
    assert content(1, "x.bin", 0, 16).hex() == "b7c45637b5ac666da84fffe023cb123d"
    assert content(77, "/big/large_000.bin", 4093, 7).hex() == "d165f38e515486"
    whole = content(5, "f", 0, 100)
    for off in range(0, 90, 7):
        assert content(5, "f", off, 10) == whole[off:off + 10]
    print("mkdata: selftest ok", file=sys.stderr)


def plan(args):
    """Returns [(path, size)]."""
    rng = random.Random(args.seed)
    total = int(args.total_mb * 1024 * 1024)
    large = min(args.large, args.files)
    small = args.files - large
    files = []
    large_total = total * 7 // 10 if small else total
    small_total = total - large_total if large else total
    for i in range(large):
        base = large_total // large
        # +-25 % around the even share, not page aligned on purpose.
        size = max(1, base + rng.randint(-base // 4, base // 4))
        files.append((f"big/large_{i:03d}.bin", size))
    if small:
        avg = max(1, small_total // small)
        for i in range(small):
            size = rng.randint(0, 2 * avg)
            d = i // 100
            files.append((f"small/d{d:02d}/Small File {i:04d} of the set.txt", size))
    return files


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"mkdata: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="build/data.img", help="image file to write")
    p.add_argument("--image-mb", type=int, default=64, help="image size in MiB (>= 33)")
    p.add_argument("--files", type=int, default=200, help="number of files")
    p.add_argument("--large", type=int, default=4, help="how many of them are large")
    p.add_argument("--total-mb", type=float, default=16, help="total data size in MiB")
    p.add_argument("--seed", type=int, default=1, help="content and size seed")
    p.add_argument("--cluster-sectors", type=int, default=0,
                   help="sectors per cluster (default: the largest of 8, 4, 2, 1 that leaves"
                   " FAT32's minimum of 65525 clusters)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--selftest", action="store_true",
                   help="check the content function against pinned values and exit")
    args = p.parse_args()
    if args.selftest:
        selftest()
        return

    for tool in ("mkfs.fat", "mcopy", "mmd"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"mkdata: {tool} not found: run tools/setup-host.sh (as root; it installs dosfstools and mtools)")
    if args.files < 0 or args.large < 0 or args.total_mb < 0:
        sys.exit("mkdata: counts and sizes must not be negative")
    if args.image_mb < 33:
        sys.exit("mkdata: FAT32 needs an image of at least 33 MiB")
    if args.cluster_sectors == 0:
        sectors = args.image_mb * 2048
        args.cluster_sectors = next((s for s in (8, 4, 2) if sectors // s > 66000), 1)
    files = plan(args)
    total = sum(s for _, s in files)
    if total > args.image_mb * 1024 * 1024 * 9 // 10:
        sys.exit(f"mkdata: {total} bytes of data do not fit a {args.image_mb} MiB image")

    mkfs = shutil.which("mkfs.fat") or "/usr/sbin/mkfs.fat"
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if os.path.exists(out):
        os.remove(out)
    run([mkfs, "-F", "32", "-S", "512", "-s", str(args.cluster_sectors), "-n", "GCMADATA",
         "-C", out, str(args.image_mb * 1024)])

    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", MTOOLS_NO_VFAT="0")
    stage = tempfile.mkdtemp(prefix="mkdata-")
    try:
        done = 0
        for n, (path, size) in enumerate(files):
            full = os.path.join(stage, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                off = 0
                while off < size:
                    chunk = min(1 << 20, size - off)
                    f.write(content(args.seed, path, off, chunk))
                    off += chunk
                    done += chunk
            if not args.quiet and (n % 50 == 0 or n + 1 == len(files)):
                print(f"mkdata: generated {n + 1}/{len(files)} files, "
                      f"{done >> 20}/{total >> 20} MiB", file=sys.stderr)
        with open(os.path.join(stage, "MANIFEST.TXT"), "w") as f:
            f.write(f"seed {args.seed}\n")
            for path, size in files:
                f.write(f"{size} {path}\n")
        if not args.quiet:
            print("mkdata: copying into the image (mcopy)", file=sys.stderr)
        entries = sorted(os.listdir(stage))
        run(["mcopy", "-s", "-i", out] + [os.path.join(stage, e) for e in entries] + ["::/"],
            env=env)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if not args.quiet:
        print(f"mkdata: wrote {out}: {len(files)} files, {total} bytes, seed {args.seed}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
