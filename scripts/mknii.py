#!/usr/bin/env python3
"""mknii.py OUT.nii NX NY NZ NT TR MODE: a small float32 NIfTI-1 for attack cases.
MODE: 'signal' (voxel time series = sinusoid + voxel offset), 'nan' (every voxel NaN),
'zero' (all zero), 'mask' (3-D, 1 everywhere)."""
import math, struct, sys
out, nx, ny, nz, nt, tr, mode = sys.argv[1], *map(int, sys.argv[2:6]), float(sys.argv[6]), sys.argv[7]
dims = 3 if mode == 'mask' else 4
hdr = bytearray(348)
struct.pack_into('<i', hdr, 0, 348)
struct.pack_into('<8h', hdr, 40, dims, nx, ny, nz, nt if dims == 4 else 1, 1, 1, 1)
struct.pack_into('<hh', hdr, 70, 16, 32)              # float32
struct.pack_into('<8f', hdr, 76, 1, 2, 2, 2, tr, 0, 0, 0)
struct.pack_into('<f', hdr, 108, 352.0)               # vox_offset
struct.pack_into('<f', hdr, 112, 1.0)                 # scl_slope
hdr[123] = 10                                         # xyzt_units mm, s
struct.pack_into('<hh', hdr, 252, 0, 1)               # qform 0, sform 1
struct.pack_into('<4f', hdr, 280, 2, 0, 0, 0)
struct.pack_into('<4f', hdr, 296, 0, 2, 0, 0)
struct.pack_into('<4f', hdr, 312, 0, 0, 2, 0)
hdr[344:348] = b'n+1\0'
vals = []
n3 = nx * ny * nz
for t in range(nt if dims == 4 else 1):
    for v in range(n3):
        if mode == 'nan': vals.append(float('nan'))
        elif mode == 'zero': vals.append(0.0)
        elif mode == 'mask': vals.append(1.0)
        else: vals.append(100 + v + 5 * math.sin(2 * math.pi * t / 20 + 0.01 * v) + 0.3 * math.cos(1.7 * t * (v + 1)))
with open(out, 'wb') as f:
    f.write(bytes(hdr) + b'\0\0\0\0' + struct.pack('<%df' % len(vals), *vals))
