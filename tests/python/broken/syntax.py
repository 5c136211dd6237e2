from http.server import BaseHTTPRequestHandler


class Broken(BaseHTTPRequestHandler):
    def do_GET(self)
        pass
