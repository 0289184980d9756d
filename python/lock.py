#!/usr/bin/env python3
"""Writes python/requirements.txt, the lock file of the project's Python environment.

Resolves python/requirements.in with pip (its --dry-run --report, so nothing is installed)
for the interpreter that runs this script, and writes every package of the resolution pinned
to its exact version with the sha256 of the file pip chose, so that
`pip install --require-hashes -r python/requirements.txt` installs exactly that set.

    python/lock.py [--python PYTHON]     # default: Debian's /usr/bin/python3

The hashes are those of the wheels for this platform and Python (Debian 12, x86_64, 3.11);
the index comes from pip's own configuration.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="/usr/bin/python3",
                        help="the interpreter the environment is made with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        venv = os.path.join(scratch, "venv")
        subprocess.run([args.python, "-m", "venv", venv], check=True)
        report = os.path.join(scratch, "report.json")
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--dry-run", "--quiet",
                        "--ignore-installed", "--report", report,
                        "-r", os.path.join(HERE, "requirements.in")], check=True)
        with open(report, encoding="utf-8") as f:
            resolved = json.load(f)
        version = subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                                  "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 check=True, capture_output=True, text=True).stdout.strip()
    lines = []
    for item in resolved["install"]:
        meta = item["metadata"]
        hashes = item["download_info"].get("archive_info", {}).get("hashes", {})
        if "sha256" not in hashes:
            sys.exit(f"lock: pip reported no sha256 for {meta['name']}")
        lines.append((meta["name"].lower(), f"{meta['name']}=={meta['version']} \\\n"
                      f"    --hash=sha256:{hashes['sha256']}"))
    lines.sort()
    with open(os.path.join(HERE, "requirements.txt"), "w", encoding="utf-8") as f:
        f.write("# The lock file of the project's Python environment: made by python/lock.py from\n"
                f"# python/requirements.in for Python {version} on Linux x86_64. Do not edit.\n")
        for _, line in lines:
            f.write(line + "\n")
    print(f"lock: {len(lines)} packages written to python/requirements.txt")


if __name__ == "__main__":
    main()
