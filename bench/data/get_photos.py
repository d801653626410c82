"""Rebuild the real-photo calibration set of the artifact critic in bench/data/photos/ (git-ignored).

Two public repositories, each pinned to a commit, hold the images; every file is checked against its sha256:

- LIVE Image Quality Assessment Database (release 2) subset, as committed in exler/CILISSA
  (https://github.com/exler/CILISSA) at 24f18d60a4848016e48313cb0dd96f8d40a22280, ``tests/data/``: 5 pristine
  photos (``ref_images/``) and the database's own Gaussian blur, JPEG and white-noise versions of them. The
  repository's code is MIT; the images are the LIVE database's (copyright The University of Texas at Austin,
  free to use, copy and distribute with its copyright notice and an acknowledgement of LIVE in publications).
- Kodak Lossless True Color Image Suite (kodim01-24), as committed in Zelex/images
  (https://github.com/Zelex/images) at 0b8a89db599a384124fb991b85d40cfd63c73d58, ``kodak/``: 24 pristine
  photos, released by the Eastman Kodak Company for unrestricted usage.

From the 24 Kodak photos the script derives the standard distortions deterministically (``derived/<kind>/``):
Gaussian blur sigma 2, Gaussian noise sigma 15 per channel, JPEG q10 and q90 (Pillow), under-exposure x0.3,
over-exposure x2, posterisation to 3 bits, a Gaussian blur sigma 3 of the most detailed quadrant (a local
defect) and a copy-move paste (a square of 1/5 the short side from the most detailed spot of the left half to
the mirrored spot). ``manifest.csv`` lists every image with its label (``pass``: must pass, ``fail``: must fail,
``borderline``: reported, not scored), the sub-check expected to flag it, the pixel box of a local defect and
the sha256 of its pixels.

LIVE labels come from the distortion strength measured against the reference (fitted once and recorded in
``LIVE_STRENGTH``: the Gaussian sigma that reproduces a blurred image, the Pillow JPEG quality that reproduces a
JPEG one exactly, the noise sigma per channel): clearly degraded (blur sigma >= 1.5, JPEG q <= 25, noise sigma
>= 12) must fail; near-pristine (blur sigma <= 0.6, JPEG q >= 50, noise sigma <= 5.5) must pass.

    python bench/data/get_photos.py --live PATH_TO_CILISSA --kodak PATH_TO_IMAGES [--out bench/data/photos]

Each PATH is a clone of the repository (``git clone https://github.com/exler/CILISSA``; for Zelex/images,
``git clone --filter=blob:none --sparse https://github.com/Zelex/images && git -C images sparse-checkout set
kodak`` fetches only the Kodak folder), its bare git directory, or a folder with the files at their repository
paths. Files are read at the pinned commit when the path is a git repository that has it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

LIVE_REPO = "exler/CILISSA"
LIVE_COMMIT = "24f18d60a4848016e48313cb0dd96f8d40a22280"
KODAK_REPO = "Zelex/images"
KODAK_COMMIT = "0b8a89db599a384124fb991b85d40cfd63c73d58"
OUT = Path(__file__).resolve().parent / "photos"

LIVE_FILES = {
    "tests/data/gblur/buildings_1.bmp": "6108e451e28b000cf4386cf2502365bae0ad95a7556b55041858c05ef26e6d3c",
    "tests/data/gblur/buildings_2.bmp": "cd7bbcce125d2e407431d3c7b5d6f83061fe1cc45cc44f7759dbad328507c42f",
    "tests/data/gblur/buildings_3.bmp": "f0f387b20e184eace9af5af03e89e87a6eda346f19c947ffb4ba7dcf1ab7c17c",
    "tests/data/gblur/buildings_4.bmp": "51601eb269b109845d41f06000bcf3e28fd02901694ccf763877f041289f7a1c",
    "tests/data/gblur/buildings_5.bmp": "c293d6bd98f62101368cc0121f29565acf74bd9d8b8602359956d1c1a0eecdb9",
    "tests/data/gblur/dancers_1.bmp": "a35a3df3d98d898144ebb0fbd644c3f8ae014ac51bc56aceba095020a56dec3e",
    "tests/data/gblur/dancers_2.bmp": "26d9813bab70dc16edffc578ef7d637fc60a8be4afbf7d211dc140c8571f2836",
    "tests/data/gblur/dancers_3.bmp": "de97dc7db1cf5fbc162a229c9c1695418e8f0d6b3d0b2827fdcf31541c974295",
    "tests/data/gblur/dancers_4.bmp": "3e713a9214eae7994e36039b0b1743cb49e017cbdcc7310ca06ba437c1e8476f",
    "tests/data/gblur/dancers_5.bmp": "a12569cfd3444f8016e8e904f5e64f42c1a1539738cb482a7e7d4f687253c214",
    "tests/data/gblur/lighthouse_1.bmp": "a2d82f238dd0b320db156034286768ab9aeaa67cfa57039e38884fbf6958fb55",
    "tests/data/gblur/lighthouse_2.bmp": "005dedc9d1c0ac0d3de67d230b98b581384e8002ccb4cb74fa7d1684fa5b8f97",
    "tests/data/gblur/lighthouse_3.bmp": "a62444e4348142c75fbdbd05e2d3dc2bbf207b4a4cdfe54fd16771ba9dcb575a",
    "tests/data/gblur/lighthouse_4.bmp": "e0d7251eac91b923233ac0e57c0994ce05b4fdef6878a15746cfa0942f9d2b08",
    "tests/data/gblur/monarch_1.bmp": "174ef56bab333846b511eb60d85be4edd6696271c59a3f80edcb143400827054",
    "tests/data/gblur/monarch_2.bmp": "ddacb0f505cb05e3723781643081b7f8a5feb4d3cb93a0b4722edad05f655fa8",
    "tests/data/gblur/monarch_3.bmp": "068db3b358dcb898d5b742a0b0cda45824ba6e2c7e7e74682e3ee5a5c43d7780",
    "tests/data/gblur/monarch_4.bmp": "ba48441fb58ae6fe847c1dd253f97d5539f6ddd01faf60992897be0ba259aac6",
    "tests/data/gblur/monarch_5.bmp": "6fc558881159f24dd0d2a7b4cf8e3ca355e21d2a6e54acd225c1bfcba1e22549",
    "tests/data/gblur/parrots_1.bmp": "fc6718905230d23abc275c8676c90915b9670c39a1386e3b7495aff9fee9a231",
    "tests/data/gblur/parrots_2.bmp": "13ab3cd01b6bc8c4b8ca832926cd5d5cf9aa72b73485b46f30915af73f607339",
    "tests/data/gblur/parrots_3.bmp": "e7f377327d05206c2c8ae1ec95ea8290179180f8a374b6fdd05cd33fbcef9850",
    "tests/data/gblur/parrots_4.bmp": "22357df79ee974167cc298481a61459219a24d1385d60ad43faca74c1685cbe3",
    "tests/data/gblur/parrots_5.bmp": "844f0cbc459993670800d068c0e88ee90c0f6848ade93253b17295002470adb3",
    "tests/data/jpeg/buildings_1.bmp": "0058d614f0ae36f05532927af550097dc29dbe085d4ef057f47a619a93e57bc7",
    "tests/data/jpeg/buildings_2.bmp": "0058d614f0ae36f05532927af550097dc29dbe085d4ef057f47a619a93e57bc7",
    "tests/data/jpeg/buildings_3.bmp": "717644ed09f167c362b15119b66106fdf0debb603793b5ab3692e610526ffa6f",
    "tests/data/jpeg/buildings_4.bmp": "ad601144189bb57e45cec31a76ce485bcfd58471ad0ab04c2d707dd4d6579282",
    "tests/data/jpeg/dancers_1.bmp": "992852f7480f2281e6e1be9ed04a593801d3eb60a16433a667bf508007e6bb6f",
    "tests/data/jpeg/dancers_2.bmp": "fb13885e978947fb728f03a1475d207ad996079dc6bb99aef0a76449d0586191",
    "tests/data/jpeg/dancers_3.bmp": "a35a3df3d98d898144ebb0fbd644c3f8ae014ac51bc56aceba095020a56dec3e",
    "tests/data/jpeg/dancers_4.bmp": "b40ce0e2a1a56fac212fdf095de2c60e3cff8c3ce1f2e4e8a4727424bf70bb26",
    "tests/data/jpeg/lighthouse_1.bmp": "24ef4098a87a1593f21db49efe822307fe9f245055831bb8f6e53550f872ecf3",
    "tests/data/jpeg/lighthouse_2.bmp": "b9a1b7c9d773225f998de164cb3e06b25652167ecbd8fc6d1c799d2dd5439c21",
    "tests/data/jpeg/lighthouse_3.bmp": "9695a51b7636cafcbbc8eb66ad68d63fc49c27a080923d67f02cfa611d2fde02",
    "tests/data/jpeg/lighthouse_4.bmp": "89227d446127d6024eee3acdfd1785da6006cf9b838bec35aa0307427691f8f1",
    "tests/data/jpeg/monarch_1.bmp": "e8d2b5746e1ccb5fc8023315b666ac43d4763574a7377e6dd38caa17ac690c46",
    "tests/data/jpeg/monarch_2.bmp": "44d62229cc9a891291552c9323c4d421f4a9b4207ccc8fc55c38bc016ea52c95",
    "tests/data/jpeg/monarch_3.bmp": "d7922fc7b119ecb3c693580aecf848313079336b051d810b375fa2ba70ac84e2",
    "tests/data/jpeg/monarch_4.bmp": "55c7ee06b298f354ba9cf01c2a2c639a8f9032630f29a7b4fc70a4660bf80ca1",
    "tests/data/jpeg/monarch_5.bmp": "d7922fc7b119ecb3c693580aecf848313079336b051d810b375fa2ba70ac84e2",
    "tests/data/jpeg/parrots_1.bmp": "cd9f4ac441ee7baf3688ac22f93400ecd5c515e4909a05c6e33e672fbc7d6cdc",
    "tests/data/jpeg/parrots_2.bmp": "f5bbf04fab621c3b719fe2c46b3936c037b3102f3f0e559acbc1654045495a25",
    "tests/data/jpeg/parrots_3.bmp": "caac4f627f5637c9704f82c6f90512ec190f785702569e105653a3ba199079c3",
    "tests/data/jpeg/parrots_4.bmp": "6e8aef409901d89551d07a415b7448319cce5ab1d6742c9c8b43ea748fa984f6",
    "tests/data/ref_images/buildings.bmp": "c293d6bd98f62101368cc0121f29565acf74bd9d8b8602359956d1c1a0eecdb9",
    "tests/data/ref_images/dancers.bmp": "a35a3df3d98d898144ebb0fbd644c3f8ae014ac51bc56aceba095020a56dec3e",
    "tests/data/ref_images/lighthouse.bmp": "24ef4098a87a1593f21db49efe822307fe9f245055831bb8f6e53550f872ecf3",
    "tests/data/ref_images/monarch.bmp": "174ef56bab333846b511eb60d85be4edd6696271c59a3f80edcb143400827054",
    "tests/data/ref_images/parrots.bmp": "cd937638172d30aeec3c1159ee4eef466c1aea04b92edf45325514ef3bf3cc8a",
    "tests/data/wnoise/buildings_1.bmp": "7d21f849a950eec3a7db26baa663217aa8f28d0315643b424daaeeb93eac7712",
    "tests/data/wnoise/buildings_2.bmp": "c611ba22ae6665b632a791eb1e6c5b457405c68c437d8cebd6a67a72a007de46",
    "tests/data/wnoise/buildings_3.bmp": "42967c14fd410aae52c6691fe4572cfc4201cdaae4d90a1fccf2c013997041c7",
    "tests/data/wnoise/buildings_4.bmp": "4e9fb06dc7f24c84324d459915f7a5080e2fcd6f5d8db0b40ae127a8132220da",
    "tests/data/wnoise/buildings_5.bmp": "1122b97bf25ce1b7b2e954cb712d587c3f06a47cd24d081e26865cc1a776e403",
    "tests/data/wnoise/dancers_1.bmp": "a35a3df3d98d898144ebb0fbd644c3f8ae014ac51bc56aceba095020a56dec3e",
    "tests/data/wnoise/dancers_2.bmp": "ee2e9027aaeb3f25fa9f25ed9155ab76c0a9f04b767997cf4c1abbd1a1b04d81",
    "tests/data/wnoise/lighthouse_1.bmp": "18f398d94cdf0c0da8c07c001028c9918524f435a02ef7c52396a2133beea252",
    "tests/data/wnoise/lighthouse_2.bmp": "52cbd2baeb005ff2ddf0ab8fb56620fc9b8db4aad57152d4c4f1a72b06f0f100",
    "tests/data/wnoise/lighthouse_3.bmp": "83924788e789422e4f2d1af9f67448f06998117d063bc063949ce46d5ae486d2",
    "tests/data/wnoise/lighthouse_4.bmp": "a3b839f8a7b3bf1ca0cec9acae76bbf9405ea92a9ad621cdfc3d25de18c33786",
    "tests/data/wnoise/lighthouse_5.bmp": "e0f372729e932762dee16fad4aacce311bc245651013777e534c8dd3ee518fc5",
    "tests/data/wnoise/monarch_1.bmp": "5a91acac95c408f4ff1d28b32c93e10c45abe4a1fc3e9579eaa63f94b6e2b39d",
    "tests/data/wnoise/monarch_2.bmp": "aa55430ec5f7177f42a524f1c5b1c0842ce730d236f558417ae1d985d02ffe26",
    "tests/data/wnoise/monarch_3.bmp": "a6e5e3556d3f821af4c433685c27bad21153f007d5130d3685ce43c810043ea8",
    "tests/data/wnoise/monarch_4.bmp": "08bfc14abaee2dd86f8adef502ec0b8fe043ce2a558b45a1090a04ef21cf9cbe",
    "tests/data/wnoise/monarch_5.bmp": "f7273eb827b5655c65019886959304679231087cb889888fba5af2a361dd2ead",
    "tests/data/wnoise/parrots_1.bmp": "cd937638172d30aeec3c1159ee4eef466c1aea04b92edf45325514ef3bf3cc8a",
    "tests/data/wnoise/parrots_2.bmp": "c74159b7caecac3351fe49303e89ef61dfb70da64539842516bd427e1ce06322",
    "tests/data/wnoise/parrots_3.bmp": "58abcb29478bdc5a7e514954f43153249bbe791bf68be9769cf5f86568d7968b",
    "tests/data/wnoise/parrots_4.bmp": "1c22403e1b06269399ea133f9af6938eab847adffad8d59426bd792b93fe838d",
    "tests/data/wnoise/parrots_5.bmp": "7dea1477d5d041500b6d73d1dcc42e3deef7a712b4f0fa31ab3ad6c21454f3ab",
}
KODAK_FILES = {
    "kodak/kodim01.png": "6b4fbe6f3e8e0e20150d5b0c32248bf072e22b5989d415f96f796c5b7004a70f",
    "kodak/kodim02.png": "1788370471429d992750a09caf6702ac74e56962447de02520d4b161738c0369",
    "kodak/kodim03.png": "b9c800ee568f0b18c983817df08d9f7f24a7ddb3abfdc31bde9234c4fde83137",
    "kodak/kodim04.png": "0c60c62599ad33fd78b29c36013fbe4120946f6c327c0ef0ec6983297fb48d23",
    "kodak/kodim05.png": "ccf694ceb6bbf431e0009ed0d5573a8ff0915095b69ddfb527b91d8325897f5e",
    "kodak/kodim06.png": "f4212cc927d1d579c712843cf8320c7eccb571e5ea80456022ffe99d67e9cd5d",
    "kodak/kodim07.png": "7cdd6d63ae0a245f6f9d983d740e11c6808c2efc24f8351aad9b5f676c27b55a",
    "kodak/kodim08.png": "5a6a089bdb47605287c00d89ebf2a5312981eb998c94b5853d917c93a9066cdb",
    "kodak/kodim09.png": "4d8d801592aeaf446978bbd1c83b76c498242d0f684769311a4e7248289500bf",
    "kodak/kodim10.png": "7aca487dc83db732a5690b7affe8558e9dadf5bb44a4589ba2b607480a07228b",
    "kodak/kodim11.png": "c7c02bd6e942d1181518e3ce2d97cf0451e4494a5e9d6ddee276940e4875d746",
    "kodak/kodim12.png": "df571f5e66d1aefd764ea77855e81e3be61528c34962a0fd1d50557502162c1e",
    "kodak/kodim13.png": "797949ce1152ef157ff0a1231c95cb8ed7641615e0b0f5f77f851a44aee19e8d",
    "kodak/kodim14.png": "08a1898d5702f32e7d9f94a94651d74a62cb9325475775a558b388c8d98f1846",
    "kodak/kodim15.png": "416c475f39b0eb9203ce7f77d2af8824f5bffc1a86a4605865017f04c41639b9",
    "kodak/kodim16.png": "5d03303693decdf7a1e1e930b5ca6684283aa80a9e7d8d6a842a74fa5f790640",
    "kodak/kodim17.png": "19d90e98e5835efae20a6e17e22e5ac6814ee2c8efb32d188ea4359abaf9f5bd",
    "kodak/kodim18.png": "83df267dfec61e9b9d3756c422502160b2fab595650c73a8b12940540ad09ec5",
    "kodak/kodim19.png": "86560efe85a13413b228ef7e42dde0d439b25a94fb8e2d6fb1dc1631cf48853b",
    "kodak/kodim20.png": "1ae187d92b3a4483b6717f7fd08592846ffdfc340c6424f6756627a27f3d8ea7",
    "kodak/kodim21.png": "26e193795108c4b5ec47206ae4ff07a353d2492947f7a7ae8d380e042b74027b",
    "kodak/kodim22.png": "627b76fccf714b4ddffb739b2eb63ba2817cf5b5a8e222079542dcf2cfdda939",
    "kodak/kodim23.png": "85c67d7ea758cb0604fb6980ab0c65091a2eefa7b3b50cbb1bc702a60206dfe5",
    "kodak/kodim24.png": "9f1c26df52217bd49f998a720a2ffeba41a535cf826f4ae32e355fb2b0bbc0fe",
}

LIVE_STRENGTH: dict[str, float | None] = {
    # gblur: Gaussian sigma (px) fitted against the reference (residual MSE <= 1.6); None = identical to it
    "gblur/buildings_1": 2.6, "gblur/buildings_2": 1.5, "gblur/buildings_3": 0.9, "gblur/buildings_4": 0.6,
    "gblur/buildings_5": None, "gblur/dancers_1": None, "gblur/dancers_2": 1.5, "gblur/dancers_3": 1.0,
    "gblur/dancers_4": 0.9, "gblur/dancers_5": 0.6, "gblur/lighthouse_1": 1.5, "gblur/lighthouse_2": 1.1,
    "gblur/lighthouse_3": 0.8, "gblur/lighthouse_4": 0.4, "gblur/monarch_1": None, "gblur/monarch_2": 11.3,
    "gblur/monarch_3": 2.8, "gblur/monarch_4": 1.8, "gblur/monarch_5": 1.7, "gblur/parrots_1": 7.6,
    "gblur/parrots_2": 4.0, "gblur/parrots_3": 2.2, "gblur/parrots_4": 1.3, "gblur/parrots_5": 0.8,
    # jpeg: the Pillow quality that reproduces the file exactly (residual MSE 0)
    "jpeg/buildings_1": 12, "jpeg/buildings_2": 12, "jpeg/buildings_3": 3, "jpeg/buildings_4": 30,
    "jpeg/dancers_1": 12, "jpeg/dancers_2": 7, "jpeg/dancers_3": None, "jpeg/dancers_4": 1,
    "jpeg/lighthouse_1": None, "jpeg/lighthouse_2": 14, "jpeg/lighthouse_3": 1, "jpeg/lighthouse_4": 3,
    "jpeg/monarch_1": 10, "jpeg/monarch_2": 94, "jpeg/monarch_3": 1, "jpeg/monarch_4": 32, "jpeg/monarch_5": 1,
    "jpeg/parrots_1": 21, "jpeg/parrots_2": 19, "jpeg/parrots_3": 8, "jpeg/parrots_4": 1,
    # wnoise: standard deviation of (image - reference) per channel, grey levels
    "wnoise/buildings_1": 128.2, "wnoise/buildings_2": 79.5, "wnoise/buildings_3": 63.1, "wnoise/buildings_4": 14.7,
    "wnoise/buildings_5": 7.9, "wnoise/dancers_1": None, "wnoise/dancers_2": 20.7, "wnoise/lighthouse_1": 112.7,
    "wnoise/lighthouse_2": 41.9, "wnoise/lighthouse_3": 15.8, "wnoise/lighthouse_4": 9.9, "wnoise/lighthouse_5": 5.0,
    "wnoise/monarch_1": 112.9, "wnoise/monarch_2": 44.5, "wnoise/monarch_3": 29.2, "wnoise/monarch_4": 9.0,
    "wnoise/monarch_5": 7.0, "wnoise/parrots_1": None, "wnoise/parrots_2": 113.5, "wnoise/parrots_3": 31.6,
    "wnoise/parrots_4": 15.7, "wnoise/parrots_5": 7.9,
}
LIVE_EXPECT = {"gblur": "blur", "jpeg": "blocking", "wnoise": "noise"}
LIVE_BANDS = {"gblur": (1.5, 0.6), "jpeg": (25, 50), "wnoise": (12.0, 5.5)}
"""(clearly degraded from, near-pristine up to) per LIVE distortion; a JPEG is worse at a *lower* quality."""

DERIVED = ("blur", "noise", "jpeg10", "jpeg90", "under", "over", "posterise", "quarter_blur", "copy_move")
DERIVED_EXPECT = {"blur": "blur", "noise": "noise", "jpeg10": "blocking", "jpeg90": "", "under": "exposure",
                  "over": "exposure", "posterise": "banding", "quarter_blur": "blur", "copy_move": "copy_move"}
DERIVED_DIGEST = {
    "blur": "91ccca000cc1f9ec0479feeccb72232c18eb58f3cf93b5cbbda047458977b3e8",
    "noise": "c1846486086a2d87957daa295002d77bfccab15fc7748cba48356bdb37933b13",
    "jpeg10": "4c323a3d5c56d2f7f4931ec3db9d33454c1a110b25285c082a67053c9eefa44a",
    "jpeg90": "78b93cd08560f0975c70669bfb02955e9a2fb6c30c9056cc6f226cde649b9df7",
    "under": "190ed09137d9c5740a743461207a85afd5ab08f2dc63398c6202f0531c2db976",
    "over": "0a732fc7f0ae99bb7b1045934660bdd08eb7c8c410f9dcfe6edc1adf07b15975",
    "posterise": "0f23430264d4655a19c83e86ebbeea04fe7ea0916a6116c62f0709e2ed204870",
    "quarter_blur": "4f2d04b182a707c5ce9f0b735123643af7b75a5113a3dd17ce225a28e7a15ddd",
    "copy_move": "739fcd77c289016edf3fee4592b5a957055ff8f4fef2ffee8f3842507c95494d",
}
"""sha256 over the pixel hashes of each derived kind as built here (numpy 2, OpenCV 4.x, Pillow 11/12); another
JPEG library may differ by a level here and there: a mismatch is reported, not fatal."""


# --------------------------------------------------------------------------- reading the sources


def _is_git_dir(p: Path) -> bool:
    return (p / "HEAD").is_file() and (p / "objects").is_dir()


def read_source(root: Path, commit: str, path: str) -> bytes:
    """A file of a repository at ``commit``: from a git directory or checkout that has the commit, else from the
    working tree / plain folder."""
    git_args = None
    if _is_git_dir(root):
        git_args = ["git", f"--git-dir={root}"]
    elif (root / ".git").exists():
        git_args = ["git", "-C", str(root)]
    if git_args is not None:
        r = subprocess.run([*git_args, "show", f"{commit}:{path}"], capture_output=True)
        if r.returncode == 0:
            return r.stdout
        if not (root / path).is_file():
            raise SystemExit(f"{root}: cannot read {path} at {commit} ({r.stderr.decode(errors='replace').strip()}); "
                             "fetch that commit (or check out the folder) and run again")
    f = root / path
    if not f.is_file():
        raise SystemExit(f"{root}: {path} not found (pass a clone of the repository)")
    return f.read_bytes()


def fetch(root: Path, commit: str, files: dict[str, str], dest: Path, rename) -> list[Path]:
    """Copy and checksum the files; a mismatch stops the rebuild."""
    out = []
    for path, sha in files.items():
        data = read_source(root, commit, path)
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            raise SystemExit(f"checksum mismatch for {path}: {got} != {sha} (wrong commit or a modified file)")
        target = dest / rename(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        out.append(target)
    return out


# --------------------------------------------------------------------------- derived distortions


def rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB")))


def detail_energy(a: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.abs(cv2.Laplacian(g, cv2.CV_32F))


def detailed_quadrant(a: np.ndarray) -> tuple[int, int, int, int]:
    """The quadrant (x0, y0, x1, y1) with the most detail (mean |Laplacian|)."""
    e = detail_energy(a)
    h, w = e.shape
    boxes = [(x, y, x + w // 2, y + h // 2) for y in (0, h // 2) for x in (0, w // 2)]
    return max(boxes, key=lambda b: float(e[b[1]:b[3], b[0]:b[2]].mean()))


def copy_move(a: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Paste a square of 1/5 the short side from the most detailed spot of the left half onto the mirrored spot
    (kept at least one patch away); the target box."""
    h, w = a.shape[:2]
    p = min(h, w) // 5
    e = cv2.boxFilter(detail_energy(a), -1, (p, p))
    ys, xs = np.mgrid[p // 2:h - p // 2:8, p // 2:w // 2 - p // 2:8]
    i = int(np.argmax(e[ys, xs]))
    sy, sx = int(ys.ravel()[i]) - p // 2, int(xs.ravel()[i]) - p // 2
    ty, tx = h - p - sy, w - p - sx
    if abs(tx - sx) < p and abs(ty - sy) < p:
        tx = min(w - p, sx + w // 2)
    out = a.copy()
    out[ty:ty + p, tx:tx + p] = a[sy:sy + p, sx:sx + p]
    return out, (tx, ty, tx + p, ty + p)


def derive(a: np.ndarray, kind: str, seed: int) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """One standard distortion of an RGB photo, and the box of a local defect (None for a global one)."""
    if kind == "blur":
        return cv2.GaussianBlur(a, (0, 0), 2.0), None
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return np.clip(a + rng.normal(0.0, 15.0, a.shape), 0, 255).round().astype(np.uint8), None
    if kind.startswith("jpeg"):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=int(kind[4:]))
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), None
    if kind == "under":
        return np.clip(a.astype(np.float32) * 0.3 + 0.5, 0, 255).astype(np.uint8), None
    if kind == "over":
        return np.clip(a.astype(np.int32) * 2, 0, 255).astype(np.uint8), None
    if kind == "posterise":
        return (a & 0xE0).astype(np.uint8), None
    if kind == "quarter_blur":
        x0, y0, x1, y1 = detailed_quadrant(a)
        out = a.copy()
        out[y0:y1, x0:x1] = cv2.GaussianBlur(a, (0, 0), 3.0)[y0:y1, x0:x1]
        return out, (x0, y0, x1, y1)
    if kind == "copy_move":
        return copy_move(a)
    raise ValueError(kind)


def pixel_sha(a: np.ndarray) -> str:
    h = hashlib.sha256(f"{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- labels


def live_label(kind: str, strength: float) -> str:
    bad, good = LIVE_BANDS[kind]
    if kind == "jpeg":
        return "fail" if strength <= bad else ("pass" if strength >= good else "borderline")
    return "fail" if strength >= bad else ("pass" if strength <= good else "borderline")


def build(live: Path, kodak: Path, out: Path) -> list[dict[str, str]]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rows: list[dict[str, str]] = []

    def row(path: Path, group: str, source: str, kind: str, param: str, label: str, expect: str,
            region: tuple[int, int, int, int] | None = None) -> None:
        rows.append({"file": path.relative_to(out).as_posix(), "group": group, "source": source, "kind": kind,
                     "param": param, "label": label, "expect": expect,
                     "region": " ".join(map(str, region)) if region else "", "pixel_sha256": pixel_sha(rgb(path))})

    refs = {k: v for k, v in LIVE_FILES.items() if "/ref_images/" in k}
    for p in fetch(live, LIVE_COMMIT, refs, out, lambda s: "clean/live_" + Path(s).name):
        row(p, "clean", LIVE_REPO, "pristine", "", "pass", "")
    for p in fetch(kodak, KODAK_COMMIT, KODAK_FILES, out, lambda s: "clean/" + Path(s).name):
        row(p, "clean", KODAK_REPO, "pristine", "", "pass", "")
    dist = {k: v for k, v in LIVE_FILES.items() if "/ref_images/" not in k}
    for p in fetch(live, LIVE_COMMIT, dist, out, lambda s: "live/" + "/".join(Path(s).parts[-2:])):
        kind = p.parent.name
        strength = LIVE_STRENGTH[f"{kind}/{p.stem}"]
        if strength is None:
            p.unlink()  # the database's copy of the reference itself
            continue
        row(p, "live", LIVE_REPO, kind, f"{strength:g}", live_label(kind, float(strength)), LIVE_EXPECT[kind])
    digests = {k: hashlib.sha256() for k in DERIVED}
    for i, src in enumerate(sorted((out / "clean").glob("kodim*.png"))):
        a = rgb(src)
        for kind in DERIVED:
            b, region = derive(a, kind, seed=i)
            target = out / "derived" / kind / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(b).save(target)
            row(target, "derived", KODAK_REPO, kind, "", "pass" if kind == "jpeg90" else "fail", DERIVED_EXPECT[kind],
                region)
            digests[kind].update(rows[-1]["pixel_sha256"].encode())
    for kind, d in digests.items():
        want = DERIVED_DIGEST.get(kind)
        if want and d.hexdigest() != want:
            print(f"note: derived/{kind} pixels differ from the recorded build ({d.hexdigest()[:12]} != {want[:12]}); "
                  "another image library version, the calibration numbers may move slightly", file=sys.stderr)
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    if "--print-digests" in sys.argv:
        print({k: d.hexdigest() for k, d in digests.items()})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", type=Path, required=True, help=f"clone (or git directory) of {LIVE_REPO}")
    ap.add_argument("--kodak", type=Path, required=True, help=f"clone (or git directory) of {KODAK_REPO}")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--print-digests", action="store_true", help="print the derived kinds' pixel digests")
    args = ap.parse_args()
    rows = build(args.live, args.kodak, args.out)
    counts: dict[str, int] = {}
    for r in rows:
        counts[f"{r['group']}/{r['label']}"] = counts.get(f"{r['group']}/{r['label']}", 0) + 1
    print(f"{len(rows)} images in {args.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
