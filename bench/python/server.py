"""Contender (d) of bench/http.ts: the seed's own stack doing the sending DAG's POST /tx.

FastAPI + uvicorn[standard] (uvloop and httptools, as FastAPI's docs install it), one process, one event loop: the
body validated by a pydantic model, Presence, an in-process PoH (SHA-256 chain) and an in-memory store, each a span
under the FastAPI server span (5 spans per request, the ASGI send/receive spans left out so the count matches the
others), the 6 workflow metrics and the request latency in prometheus_client. Spans go through a
BatchSpanProcessor to an exporter that counts and discards them.

Prints {"port": ...} once listening; answers each "report" line on stdin with what it recorded, as one JSON line.
"""

import hashlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY, Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field

BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
REGIONS = {"us-east", "us-west", "eu-central", "ap-south"}
NODES = [{"id": "n1", "region": "eu-central", "address": "in-process"}]


class CountingExporter(SpanExporter):
    """Counts spans by name, kind and parent, and discards them."""

    def __init__(self):
        self.total = 0
        self.by_name = {}

    def export(self, spans):
        for span in spans:
            self.total += 1
            entry = self.by_name.setdefault(
                span.name,
                {"count": 0, "withParent": 0, "kind": span.kind.value, "attributes": len(span.attributes or {})},
            )
            entry["count"] += 1
            if span.parent is not None:
                entry["withParent"] += 1
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


exporter = CountingExporter()
processor = BatchSpanProcessor(exporter, max_queue_size=65536, max_export_batch_size=512, schedule_delay_millis=200)
provider = TracerProvider(resource=Resource.create({"service.name": "bench-fastapi"}))
provider.add_span_processor(processor)
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("bench-fastapi")

presence_calls = Counter("presence_calls_total", "Presence look-ups.", ["region", "outcome"])
poh_requests = Counter("poh_requests_total", "PoH_REQUESTs issued.", ["region", "status"])
poh_acks = Counter("poh_ack_total", "PoH_ACKs received.", ["region"])
approval_latency = Histogram("poh_approval_latency_seconds", "Approval delay.", ["region"], buckets=BUCKETS)
tx_committed = Counter("tx_committed_total", "Transactions committed.", ["region"])
storage_latency = Histogram(
    "storage_latency_seconds", "Storage write latency.", ["operation", "collection"], buckets=BUCKETS
)
http_duration = Histogram(
    "http_server_request_duration_seconds", "HTTP latency.", ["method", "route", "status_code"], buckets=BUCKETS
)


def region_label(value):
    return value if value in REGIONS else "other"


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_: str = Field(alias="from", min_length=1, max_length=128)
    to: str = Field(min_length=1, max_length=128)
    amount: float = Field(gt=0, allow_inf_nan=False)
    region: str = Field(min_length=1, max_length=64)
    memo: str | None = Field(default=None, max_length=1024)


state = {"seq": 0, "hash": "0" * 64}
rows = {}


def online_nodes(region):
    with tracer.start_as_current_span("Presence.onlineNodes") as span:
        span.set_attribute("dag.region", region_label(region))
        nodes = [node for node in NODES if node["region"] == region]
        presence_calls.labels(region_label(region), "success").inc()
        span.set_attribute("dag.presence.online", len(nodes))
        return nodes


def sequence(tx_id):
    with tracer.start_as_current_span("Poh.sequence") as span:
        now = datetime.now(timezone.utc)
        state["seq"] += 1
        state["hash"] = hashlib.sha256((state["hash"] + tx_id).encode()).hexdigest()
        span.set_attribute("poh.seq", state["seq"])
        return {"seq": state["seq"], "hash": state["hash"], "timestamp": now.isoformat(), "node": "bench"}


def poh_request(tx_id, region):
    with tracer.start_as_current_span("Poh.request") as span:
        span.set_attribute("dag.region", region_label(region))
        started = time.perf_counter()
        ack = sequence(tx_id)
        poh_requests.labels(region_label(region), "ok").inc()
        poh_acks.labels(region_label(region)).inc()
        approval_latency.labels(region_label(region)).observe(time.perf_counter() - started)
        return ack


def persist(stored):
    with tracer.start_as_current_span("Storage.persist") as span:
        span.set_attribute("dag.tx.id", stored["id"])
        started = time.perf_counter()
        if stored["id"] in rows:
            raise ValueError("duplicate")
        rows[stored["id"]] = stored
        storage_latency.labels("insert", "transactions").observe(time.perf_counter() - started)


app = FastAPI()


@app.middleware("http")
async def latency(request: Request, call_next):
    started = time.perf_counter()
    response = await call_next(request)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    http_duration.labels(request.method, route, str(response.status_code)).observe(time.perf_counter() - started)
    return response


@app.post("/tx", status_code=201)
async def submit(tx: Transaction):
    tx_id = str(uuid.uuid4())
    online_nodes(tx.region)
    ack = poh_request(tx_id, tx.region)
    stored = {"id": tx_id, "from": tx.from_, "to": tx.to, "amount": tx.amount, "region": tx.region, "ack": ack}
    persist(stored)
    tx_committed.labels(region_label(tx.region)).inc()
    return JSONResponse({"id": tx_id, "region": tx.region, "ack": ack}, status_code=201)


FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"])


def total(name):
    value = 0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == name or sample.name == f"{name}_count":
                value += sample.value
    return int(value)


def control():
    for line in sys.stdin:
        if line.strip() != "report":
            continue
        provider.force_flush()
        server = SpanKind.SERVER.value
        server_spans = sum(entry["count"] for entry in exporter.by_name.values() if entry["kind"] == server)
        report = {
            "committed": total("tx_committed_total"),
            "httpObserved": total("http_server_request_duration_seconds"),
            "spans": exporter.total,
            "serverSpans": server_spans,
            "effectSpans": 0,
            "byName": exporter.by_name,
        }
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()
    os._exit(0)


sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sys.stdout.write(json.dumps({"port": sock.getsockname()[1]}) + "\n")
sys.stdout.flush()
threading.Thread(target=control, daemon=True).start()
uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
