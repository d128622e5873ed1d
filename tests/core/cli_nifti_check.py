"""Checks of the NIfTI files and sidecars the CLI writes (tests/core/test_cli_nifti.c), with nibabel.
usage:
  cli_nifti_check.py header FILE SFORM QFORM DESCRIP INTENT   codes, descrip ("mbsr" = mbsr's own:
                                                             starts with "mbsr "), intent code
  cli_nifti_check.py volume FILE FIXTURE T                    FILE's data = volume T of FIXTURE
  cli_nifti_check.py same FILE FIXTURE                        same shape (4-D too), data, affine
  cli_nifti_check.py sidecar FILE.json INPUT DIMS             valid JSON naming INPUT, the output dims
Exit 0 when the check holds, 77 when nibabel is missing."""
import json
import os
import sys

try:
    import nibabel as nib
    import numpy as np
except ImportError:
    sys.exit(77)


def header(path, sform, qform, descrip, intent):
    h = nib.load(path).header
    got = (int(h["sform_code"]), int(h["qform_code"]), int(h["intent_code"]))
    assert got == (int(sform), int(qform), int(intent)), (path, got)
    d = h["descrip"].tobytes().rstrip(b"\0").decode()
    assert d.startswith("mbsr ") if descrip == "mbsr" else d == descrip, (path, d)


def volume(path, fixture, t):
    a = nib.load(path).get_fdata()
    b = nib.load(fixture).get_fdata()[..., int(t)]
    assert a.shape == b.shape and np.array_equal(a, b), (a.shape, b.shape)


def same(path, fixture):
    a, b = nib.load(path), nib.load(fixture)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.array_equal(a.get_fdata(), b.get_fdata())
    assert np.allclose(a.affine, b.affine, atol=1e-5)


def sidecar(path, inp, dims):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    assert d["Sources"] == [os.path.realpath(inp)], d["Sources"]
    assert d["Input"]["Path"] == inp, d["Input"]
    g = d["GeneratedBy"][0]
    assert g["Name"] == "mbsr" and g["Version"] and g["CommandLine"].startswith("mbsr "), g
    assert d["DateTime"].endswith("Z") and isinstance(d["Parameters"], dict)
    assert d["Output"]["Dims"] == [int(x) for x in dims.split(",")], d["Output"]


if __name__ == "__main__":
    {"header": header, "volume": volume, "same": same, "sidecar": sidecar}[sys.argv[1]](*sys.argv[2:])
