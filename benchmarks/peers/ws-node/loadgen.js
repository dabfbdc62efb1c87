'use strict';
// Load generator of the WebSocket fan-out benchmark (benchmarks/realtime.py):
// S `ws` clients and the publisher in one Node.js process, so publish and
// arrival times come from one monotonic clock (performance.now()).
//
//   node loadgen.js '<config JSON>'
//
// config: {
//   "subscribers": [["ws://127.0.0.1:8001/ws", 500], ...],  // URL and how many clients on it
//   "publish": {"url": "http://127.0.0.1:8001/publish", "headers": {...}, "json_text": false},
//   "messages": 30, "rate": 1.0,             // M messages, R per second, on a fixed schedule
//   "drain_seconds": 30,                     // how long to wait for late deliveries after the last publish
//   "connect_concurrency": 50,
//   "nonce": "k3j9"                          // this run's tag: frames of other runs never count
// }
//
// Protocol on stdin/stdout (one JSON object per stdout line):
//   -> {"event": "connected", ...}      all subscribers are open (the runner now measures idle memory)
//   <- "go"                             start publishing
//   -> {"event": "done", ...}           every delivery arrived or the drain time is over; the figures
//   <- "close"                          close every client and exit
//
// Message i's payload contains the marker "rtb<nonce>-<i>x" (as the text, or as {"text": ...}
// for a JSON publish API); a subscriber counts a message when a frame carrying
// its marker arrives, whatever else the server wrapped around it.
const http = require('http');
const readline = require('readline');
const { WebSocket } = require('ws');

const config = JSON.parse(process.argv[2]);
const M = config.messages;
const RATE = config.rate;
const NONCE = String(config.nonce || '');
if (!/^[A-Za-z0-9]*$/.test(NONCE)) throw new Error('nonce: letters and digits only');
const MARKER = new RegExp(`rtb${NONCE}-(\\d+)x`);
const now = () => performance.now();

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const targets = [];
for (const [url, count] of config.subscribers) for (let i = 0; i < count; i++) targets.push(url);
const S = targets.length;

const seen = new Uint8Array(S * M);
const latencies = new Float64Array(S * M);
const publishedAt = new Float64Array(M).fill(NaN);
const lastArrival = new Float64Array(M).fill(NaN);
const arrivals = new Uint32Array(M);
const publishStatus = new Array(M).fill(null);
const publishMs = new Float64Array(M).fill(NaN);
let received = 0;
let duplicates = 0;
let foreign = 0; // frames without a marker (e.g. a server's greeting)
let closedDuringRun = 0;
let closedBeforeRun = 0; // opened, then closed by the server or the network before the first publish
let openCount = 0;
let connectStarted = 0;
let measuring = false;
let finished = false;

const sockets = new Array(S);
let connectFailures = 0;
const connectErrors = {};

function onMessage(index, data) {
  const match = MARKER.exec(typeof data === 'string' ? data : data.toString('utf8'));
  if (match === null) {
    foreign += 1;
    return;
  }
  const seq = Number(match[1]);
  if (seq >= M) {
    foreign += 1;
    return;
  }
  const slot = index * M + seq;
  if (seen[slot]) {
    duplicates += 1;
    return;
  }
  seen[slot] = 1;
  const latency = now() - publishedAt[seq];
  latencies[received] = latency;
  received += 1;
  arrivals[seq] += 1;
  if (!(lastArrival[seq] >= latency)) lastArrival[seq] = latency;
  if (received === S * M) finish();
}

function connectOne(index, attempt) {
  return new Promise((resolve) => {
    const ws = new WebSocket(targets[index], { perMessageDeflate: false });
    let opened = false;
    ws.on('open', () => {
      opened = true;
      sockets[index] = ws;
      openCount += 1;
      if (openCount % 500 === 0) process.stderr.write(`${openCount} subscribers open after ${((now() - connectStarted) / 1000).toFixed(1)} s\n`);
      resolve(true);
    });
    ws.on('message', (data) => onMessage(index, data));
    ws.on('error', (err) => {
      if (!opened) {
        const key = String(err.message || err).slice(0, 80);
        connectErrors[key] = (connectErrors[key] || 0) + 1;
      }
    });
    ws.on('close', () => {
      if (!opened) {
        if (attempt < 3) {
          setTimeout(() => connectOne(index, attempt + 1).then(resolve), 200 * (attempt + 1));
        } else {
          connectFailures += 1;
          resolve(false);
        }
      } else if (measuring) {
        closedDuringRun += 1;
      } else if (!finished) {
        closedBeforeRun += 1;
      }
    });
  });
}

async function connectAll() {
  const started = now();
  connectStarted = started;
  let next = 0;
  const worker = async () => {
    while (next < S) {
      const index = next++;
      await connectOne(index, 0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(config.connect_concurrency || 50, S) }, worker));
  return now() - started;
}

let pending = 0; // publish requests without an answer yet
let whenSettled = null;
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function publish(seq) {
  const text = `rtb${NONCE}-${seq}x fan-out benchmark message ${seq}`;
  const body = Buffer.from(config.publish.json_text ? JSON.stringify({ text }) : text);
  const url = new URL(config.publish.url);
  const headers = {
    'content-type': config.publish.json_text ? 'application/json' : 'text/plain; charset=utf-8',
    'content-length': body.length,
    ...(config.publish.headers || {}),
  };
  publishedAt[seq] = now();
  pending += 1;
  const settle = () => {
    pending -= 1;
    if (pending === 0 && whenSettled !== null) whenSettled();
  };
  const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers, agent }, (res) => {
    res.resume();
    res.on('end', () => {
      publishStatus[seq] = res.statusCode;
      publishMs[seq] = now() - publishedAt[seq];
      settle();
    });
  });
  req.on('error', (err) => {
    publishStatus[seq] = `error: ${err.message}`;
    settle();
  });
  req.end(body);
}

// Event-loop lag: how late a 10 ms timer fires. A starved or saturated load
// generator shows here (its arrival timestamps would be late by as much).
const LAG_TICK_MS = 10;
const lags = [];
let lagTimer = null;
function startLag() {
  let expected = now() + LAG_TICK_MS;
  lagTimer = setInterval(() => {
    const t = now();
    lags.push(Math.max(0, t - expected));
    expected = t + LAG_TICK_MS;
  }, LAG_TICK_MS);
}

let cpuStart = null;
let wallStart = 0;
let drainTimer = null;

function run() {
  measuring = true;
  startLag();
  cpuStart = process.cpuUsage();
  wallStart = now();
  const interval = 1000 / RATE;
  let seq = 0;
  const tick = () => {
    publish(seq);
    seq += 1;
    if (seq < M) {
      setTimeout(tick, Math.max(0, wallStart + seq * interval - now()));
    } else {
      drainTimer = setTimeout(finish, config.drain_seconds * 1000);
    }
  };
  tick();
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

function finish() {
  if (finished) return;
  finished = true;
  if (drainTimer !== null) clearTimeout(drainTimer);
  // Every delivery is in (or the drain time is over); the last publishes'
  // answers may still be on their way: wait for them (at most the drain time).
  if (pending === 0) report();
  else {
    whenSettled = report;
    setTimeout(report, config.drain_seconds * 1000);
  }
}

let reported = false;
function report() {
  if (reported) return;
  reported = true;
  const wallMs = now() - wallStart;
  const cpu = process.cpuUsage(cpuStart);
  clearInterval(lagTimer);
  const lagSorted = Float64Array.from(lags).sort();
  measuring = false;
  const sorted = latencies.slice(0, received).sort();
  let sum = 0;
  for (let i = 0; i < received; i++) sum += sorted[i];
  const open = sockets.filter((ws) => ws && ws.readyState === WebSocket.OPEN).length;
  emit({
    event: 'done',
    subscribers: S,
    messages: M,
    expected: S * M,
    received,
    lost: S * M - received,
    duplicates,
    foreign,
    closed_during_run: closedDuringRun,
    closed_before_run: closedBeforeRun,
    open_at_end: open,
    latency_ms: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: received ? sorted[received - 1] : NaN, mean: received ? sum / received : NaN },
    per_message: Array.from({ length: M }, (_, i) => ({
      seq: i,
      published_at_ms: publishedAt[i] - wallStart,
      arrivals: arrivals[i],
      last_arrival_ms: lastArrival[i],
      publish_status: publishStatus[i],
      publish_ms: publishMs[i],
    })),
    loadgen: {
      what: `Node.js ${process.version}, ws ${require('ws/package.json').version}, one process, ${S} clients + the publisher`,
      cpu_user_ms: cpu.user / 1000,
      cpu_system_ms: cpu.system / 1000,
      wall_ms: wallMs,
      cpu_percent: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
      event_loop_delay_ms: { p50: percentile(lagSorted, 50), p99: percentile(lagSorted, 99), max: lagSorted.length ? lagSorted[lagSorted.length - 1] : NaN },
    },
  });
}

async function main() {
  const connectMs = await connectAll();
  emit({ event: 'connected', subscribers: S, open: sockets.filter(Boolean).length, connect_failures: connectFailures, closed_before_run: closedBeforeRun, connect_errors: connectErrors, connect_ms: connectMs });
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = line.trim();
    if (command === 'go') run();
    else if (command === 'close') {
      for (const ws of sockets) if (ws) ws.terminate();
      process.exit(0);
    }
  });
  lines.on('close', () => process.exit(0));
}

main();
