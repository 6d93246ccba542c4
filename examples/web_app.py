"""A web app that hands work to a pool of workers: POST a job, GET its result later.

Run the pool and the app (from this directory)::

    sergeant supervise --worker-module web_tasks --worker-class WordCount --concurrent-workers 2 &
    python web_app.py 8000
    curl -s -d '{"text": "to be or not to be"}' localhost:8000/jobs     # {"id": "..."}
    curl -s localhost:8000/jobs/ID                                      # {"state": "done", ...}

The app is plain WSGI (served here by the standard library's wsgiref; any WSGI
server will do). It builds the worker class once, as a producer, and pushes one
task per request: the request returns at once, whatever the pool's load.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from web_tasks import WordCount, result_key

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

producer = WordCount()
producer.init_worker()


def answer(start_response: StartResponse, status: str, body: dict[str, Any]) -> Iterable[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [('Content-Type', 'application/json'), ('Content-Length', str(len(payload)))])
    return [payload]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    method, path = environ['REQUEST_METHOD'], environ.get('PATH_INFO', '')
    if method == 'POST' and path == '/jobs':
        size = int(environ.get('CONTENT_LENGTH') or 0)
        try:
            text = json.loads(environ['wsgi.input'].read(size))['text']
        except (ValueError, KeyError, TypeError):
            return answer(start_response, '400 Bad Request', {'error': 'send {"text": "..."}'})
        job_id = uuid.uuid4().hex
        producer.push_task({'id': job_id, 'text': str(text)})
        return answer(start_response, '202 Accepted', {'id': job_id})
    if method == 'GET' and path.startswith('/jobs/'):
        result = producer.get_key(result_key(path.removeprefix('/jobs/')))
        if result is None:
            return answer(start_response, '200 OK', {'state': 'pending'})
        return answer(start_response, '200 OK', {'state': 'done', 'result': result})
    return answer(start_response, '404 Not Found', {'error': 'POST /jobs or GET /jobs/ID'})


def main(port: int) -> None:
    with make_server('127.0.0.1', port, app) as server:
        print(f'serving on http://127.0.0.1:{port}/jobs', flush=True)
        server.serve_forever()


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
