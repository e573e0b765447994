"""A real OTLP/HTTP trace receiver for benchmark runs: the tests' receiver, counting spans instead of keeping them.

Decodes every export as a collector would (``tests/otlp_receiver.py``), so the service pays the
whole cost of exporting: serialisation, HTTP, the batch processor's queue. Prints its endpoint on
the first line of stdout (``http://127.0.0.1:<port>``), then serves until SIGTERM or SIGINT, and
writes the totals to the file given (``spans=<n> exports=<n>``) every second and at the end.

usage: python bench/otlp_sink.py TOTALS_FILE      (from the repository's root)
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's tests package

from tests.otlp_receiver import HTTPReceiver, _HTTPServer
from tests.servers import serving_in_a_thread

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass
class CountingReceiver(HTTPReceiver):
    """Counts the spans and exports it decodes; keeps none (a long run would hold millions)."""

    span_total: int = 0
    export_total: int = 0

    def accept(self, request: ExportTraceServiceRequest, path: str, headers: dict[str, str]) -> None:  # noqa: ARG002
        """Count one export's spans."""
        count = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        with self.lock:
            self.span_total += count
            self.export_total += 1

    @property
    def lock(self) -> threading.Lock:
        """The receiver's lock (one per receiver)."""
        return self._lock


def main(totals: Path) -> None:
    """Serve until told to stop, writing the totals as they grow."""
    receiver = CountingReceiver()
    server = _HTTPServer(receiver)
    receiver.port = server.server_address[1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(receiver.endpoint, flush=True)
    with serving_in_a_thread(server):
        while not stop.wait(1.0):
            with receiver.lock:
                totals.write_text(f"spans={receiver.span_total} exports={receiver.export_total}\n")
    totals.write_text(f"spans={receiver.span_total} exports={receiver.export_total}\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python bench/otlp_sink.py TOTALS_FILE")
    main(Path(sys.argv[1]))
