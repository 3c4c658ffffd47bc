# Smart-HTTP git server for the git workspace tests, after ../shared/tools/git-http.py (which
# wraps `git http-backend`), with two additions: it binds the port it is given (0: any free
# one) and prints "PORT=<n>" once it listens, and with a third argument, a file holding
# "user:password", every request must carry that Basic authorization (read at each request, so
# a test can rotate it), else 401.
#   python3 git-http.py PORT ROOT [CREDENTIALS_FILE]  -> http://127.0.0.1:PORT/<repo>.git
import base64, http.server, os, subprocess, sys
PORT, ROOT = int(sys.argv[1]), sys.argv[2]
CREDENTIALS = sys.argv[3] if len(sys.argv) > 3 else None
class H(http.server.BaseHTTPRequestHandler):
    def _authorized(self):
        if CREDENTIALS is None: return True
        with open(CREDENTIALS) as f: expected = f.read().strip()
        given = self.headers.get("Authorization", "")
        return given == "Basic " + base64.b64encode(expected.encode()).decode()
    def _run(self, body=b""):
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0"); self.end_headers(); return
        path, _, qs = self.path.partition("?")
        env = dict(os.environ, GIT_PROJECT_ROOT=ROOT, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path, QUERY_STRING=qs,
                   REQUEST_METHOD=self.command, CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(body)), REMOTE_ADDR="127.0.0.1", HTTP_GIT_PROTOCOL=self.headers.get("Git-Protocol", ""))
        if self.headers.get("Content-Encoding"): env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        hdrs = []
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.lower() == "status": status = int(v.strip().split()[0])
            elif k: hdrs.append((k, v.strip()))
        self.send_response(status)
        for k, v in hdrs: self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload))); self.end_headers(); self.wfile.write(payload)
    def do_GET(self): self._run()
    def do_POST(self): self._run(self.rfile.read(int(self.headers.get("Content-Length", 0))))
    def log_message(self, *a): pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H)
print("PORT=%d" % server.server_address[1], flush=True)
server.serve_forever()
