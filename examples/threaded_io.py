"""A threaded worker for I/O-bound tasks, with time limits.

Run the workers, then push URLs and watch (from this directory)::

    sergeant supervise --worker-module threaded_io --worker-class Fetcher
    python threaded_io.py https://example.org/ https://example.com/slow

Without URLs, ``threaded_io.py`` serves a few pages of its own on a local port, one
of them too slow. Each worker process runs 8 tasks at once in threads
(``number_of_threads=8``): while one waits for the network, the others run. Two
limits keep a stuck request from holding a thread: the socket's own timeout, and
Sergeant's ``Timeouts(timeout=2)``, which raises ``WorkerTimedout`` inside the task
(once the blocking call returns) and calls ``on_timeout``. ``grace_period`` later,
a task still running has its worker process killed and replaced.
"""

from __future__ import annotations

import http.server
import sys
import threading
import time
import urllib.request

from example_broker import connector, wait_for

from sergeant import Task, Worker, config

SOCKET_TIMEOUT = 5.0


class Fetcher(Worker):
    def generate_config(self) -> config.WorkerConfig:
        return config.WorkerConfig(
            name='fetch',
            connector=connector(),
            number_of_threads=8,
            tasks_per_transaction=8,
            timeouts=config.Timeouts(timeout=2, grace_period=10),
        )

    def work(self, task: Task) -> None:
        url = task.kwargs['url']
        with urllib.request.urlopen(url, timeout=SOCKET_TIMEOUT) as response:
            size = len(response.read())
        self.set_key(f'fetch:{url}', f'{response.status}, {size} bytes')

    def on_failure(self, task: Task, exception: Exception) -> None:
        self.set_key(f'fetch:{task.kwargs["url"]}', f'failed: {exception}')

    def on_timeout(self, task: Task) -> None:
        self.set_key(f'fetch:{task.kwargs["url"]}', 'timed out')


class _Pages(http.server.BaseHTTPRequestHandler):
    """Pages to fetch when no URL is given: /fast/N answer at once, /slow after 3 s."""

    def do_GET(self) -> None:
        if self.path.startswith('/slow'):
            time.sleep(3)
        body = f'page {self.path}\n'.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main(urls: list[str]) -> int:
    if not urls:
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Pages)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f'http://127.0.0.1:{server.server_address[1]}'
        urls = [f'{base}/fast/{n}' for n in range(12)] + [f'{base}/slow']
    producer = Fetcher()
    producer.init_worker()
    producer.purge_tasks()
    for url in urls:
        producer.delete_key(f'fetch:{url}')
    producer.push_tasks([{'url': url} for url in urls])
    print(f'pushed {len(urls)} URLs to fetch')
    if not wait_for(lambda: all(producer.get_key(f'fetch:{url}') for url in urls), timeout=60):
        print('not every URL was fetched: are the workers running?')
        return 1
    for url in urls:
        print(f'{url}: {producer.get_key(f"fetch:{url}")}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
