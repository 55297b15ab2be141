#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub, for tests/e2e/pull_test.sh (the test machines have no
internet). Standard library only.

Serves every folder ROOT/ORG/NAME as repository ORG/NAME, revision "main" (or its commit id), in
the hub's URL layout:
  GET /api/models/ORG/NAME/revision/REV[?blobs=true]  the listing: "sha", "siblings" with
      "rfilename", "size", "blobId" and, for LFS files, "lfs": {"sha256", "size", "pointerSize"}
  GET /ORG/NAME/resolve/REV/PATH  a file kept in Git: 200 with ETag (its git blob id) and
      X-Repo-Commit; an LFS file (*.safetensors, *.bin): 302 to the "CDN" (a second port) with
      X-Linked-Etag (the sha256), X-Linked-Size and X-Repo-Commit, as the hub does.
  The CDN serves GET /cdn/ORG/NAME/SHA256, answers 400 to requests that carry Authorization
  (as S3 does for presigned URLs), and honours "Range: bytes=N-" with 206.
Errors as the hub gives them: 401 X-Error-Code RepoNotFound for an unknown or private repository
without a token, 401 for a wrong token, 404 RepoNotFound / RevisionNotFound / EntryNotFound.

ROOT/ORG/NAME.hub.json may ask for behaviours: {"token": "...", "corrupt": [path, ...] (the CDN
flips a byte), "drop_once": [path, ...] (the first transfer stops halfway and the connection
drops), "busy_once": true (the first listing answers 503)}.

Every request is logged as a JSON line to --log. The two ports are written to --port-file as
"HUB CDN" once both listen. --cert/--key serve both over TLS.
"""
import argparse
import hashlib
import http.server
import json
import os
import re
import socket
import ssl
import sys
import threading
import urllib.parse

LFS_SUFFIXES = (".safetensors", ".bin")


class Repo:
    def __init__(self, root, repo_id):
        self.id = repo_id
        self.dir = os.path.join(root, repo_id)
        cfg_path = self.dir + ".hub.json"
        self.cfg = json.load(open(cfg_path)) if os.path.exists(cfg_path) else {}
        self.files = {}
        for base, dirs, names in os.walk(self.dir, followlinks=True):
            dirs.sort()
            for n in sorted(names):
                full = os.path.join(base, n)
                rel = os.path.relpath(full, self.dir)
                data = open(full, "rb").read()
                entry = {"path": full, "size": len(data),
                         "blob": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
                if n.endswith(LFS_SUFFIXES):
                    entry["sha256"] = hashlib.sha256(data).hexdigest()
                    pointer = ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
                               % (entry["sha256"], len(data))).encode()
                    entry["blob"] = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
                    entry["pointer_size"] = len(pointer)
                self.files[rel] = entry
        self.commit = hashlib.sha1(json.dumps(
            [(k, v["blob"]) for k, v in sorted(self.files.items())]).encode()).hexdigest()
        self.by_sha = {v["sha256"]: (k, v) for k, v in self.files.items() if "sha256" in v}
        self.dropped = set()
        self.busy_done = False
        self.lock = threading.Lock()

    def listing(self):
        siblings = []
        listed_size = self.cfg.get("listed_size", {})  # file -> the size the listing claims
        for rel, f in self.files.items():
            s = {"rfilename": rel, "size": listed_size.get(rel, f["size"]), "blobId": f["blob"]}
            if "sha256" in f:
                s["lfs"] = {"sha256": f["sha256"], "size": f["size"], "pointerSize": f["pointer_size"]}
            siblings.append(s)
        return {"id": self.id, "modelId": self.id, "sha": self.commit, "private": "token" in self.cfg,
                "siblings": siblings}


class State:
    def __init__(self, root, log_path):
        self.repos = {}
        for org in sorted(os.listdir(root)):
            if os.path.isdir(os.path.join(root, org)):
                for name in sorted(os.listdir(os.path.join(root, org))):
                    if os.path.isdir(os.path.join(root, org, name)):
                        self.repos[org + "/" + name] = Repo(root, org + "/" + name)
        self.log = open(log_path, "a", buffering=1)
        self.log_lock = threading.Lock()
        self.cdn_port = 0
        self.scheme = "http"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-hub/1"
    role = "hub"

    def log_message(self, fmt, *args):  # quiet: the JSON log is what tests read
        pass

    def record(self, status):
        st = self.server.state
        with st.log_lock:
            st.log.write(json.dumps({"server": self.role, "path": self.path, "status": status,
                                     "range": self.headers.get("Range"),
                                     "auth": self.headers.get("Authorization") is not None}) + "\n")

    def reply(self, status, body=b"", headers=None, ctype="application/json"):
        self.record(status)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code, message):
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self.reply(status, json.dumps({"error": message}).encode(), headers)

    def send_file(self, data, extra, corrupt=False, drop=False, no_length=False):
        """200 or 206 (Range: bytes=N-) with `data`; `drop` sends half and cuts the connection;
        `no_length` sends no Content-Length (the body ends when the connection closes)."""
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(m.group(1)) if m else 0
        if start > len(data) or (start == len(data) and len(data) > 0):
            self.reply(416, b"", {"Content-Range": "bytes */%d" % len(data)})
            return
        if corrupt:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]
        part = data[start:]
        status = 206 if m else 200
        self.record(status)
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        if no_length:
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(part)))
        if m:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.end_headers()
        if drop:
            self.wfile.write(part[:len(part) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(part)


class HubHandler(Handler):
    role = "hub"

    def authorize(self, repo):
        """None when the caller may see `repo` (which may be None: unknown); else it has answered."""
        auth = self.headers.get("Authorization")
        if repo is None or "token" not in repo.cfg:
            if repo is None:
                if auth:
                    self.error(404, "RepoNotFound", "Repository not found")
                else:
                    self.error(401, "RepoNotFound", "Repository not found")
                return False
            return True
        if auth is None:
            self.error(401, "RepoNotFound", "Repository not found")
            return False
        if auth != "Bearer " + repo.cfg["token"]:
            self.error(401, None, "Invalid credentials in Authorization header")
            return False
        return True

    def do_GET(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/(.+)", path)
        if m:
            repo = st.repos.get(m.group(1))
            if not self.authorize(repo):
                return
            if repo.cfg.get("busy_once"):
                with repo.lock:
                    busy = not repo.busy_done
                    repo.busy_done = True
                if busy:
                    self.reply(503, b'{"error":"busy"}', {"Retry-After": "0"})
                    return
            if m.group(2) not in ("main", repo.commit):
                self.error(404, "RevisionNotFound", "Invalid rev id: " + m.group(2))
                return
            self.reply(200, json.dumps(repo.listing()).encode())
            return
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if not m:
            self.error(404, None, "no such route")
            return
        repo = st.repos.get(m.group(1))
        if not self.authorize(repo):
            return
        if m.group(2) not in ("main", repo.commit):
            self.error(404, "RevisionNotFound", "Invalid rev id: " + m.group(2))
            return
        f = repo.files.get(m.group(3))
        if f is None:
            self.error(404, "EntryNotFound", "Entry not found")
            return
        common = {"X-Repo-Commit": repo.commit}
        if "sha256" in f:
            host = (self.headers.get("Host") or "127.0.0.1").rsplit(":", 1)[0]
            location = "%s://%s:%d/cdn/%s/%s" % (st.scheme, host, st.cdn_port, repo.id, f["sha256"])
            self.reply(302, b"", dict(common, **{
                "Location": location, "ETag": '"%s"' % f["blob"],
                "X-Linked-Etag": '"%s"' % f["sha256"], "X-Linked-Size": str(f["size"])}))
            return
        self.send_file(open(f["path"], "rb").read(), dict(common, ETag='"%s"' % f["blob"]),
                       no_length=m.group(3) in repo.cfg.get("no_length", []))


class CdnHandler(Handler):
    role = "cdn"

    def do_GET(self):
        st = self.server.state
        m = re.fullmatch(r"/cdn/([^/]+/[^/]+)/([0-9a-f]{64})", urllib.parse.urlsplit(self.path).path)
        repo = st.repos.get(m.group(1)) if m else None
        if repo is None or m.group(2) not in repo.by_sha:
            self.reply(404, b"NoSuchKey", ctype="text/plain")
            return
        if self.headers.get("Authorization") is not None:
            self.reply(400, b"InvalidArgument: only one auth mechanism allowed", ctype="text/plain")
            return
        rel, f = repo.by_sha[m.group(2)]
        drop = False
        if rel in repo.cfg.get("drop_once", []):
            with repo.lock:
                drop = rel not in repo.dropped
                repo.dropped.add(rel)
        self.send_file(open(f["path"], "rb").read(), {"ETag": '"%s"' % f["sha256"]},
                       corrupt=rel in repo.cfg.get("corrupt", []), drop=drop)


def serve(handler, state, tls):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    srv.state = state
    if tls:
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()
    state = State(args.root, args.log)
    tls = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)
        state.scheme = "https"
    state.cdn_port = serve(CdnHandler, state, tls)
    hub_port = serve(HubHandler, state, tls)
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d %d\n" % (hub_port, state.cdn_port))
    os.rename(args.port_file + ".tmp", args.port_file)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
