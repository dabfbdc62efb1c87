'use strict';
// Express peer for the /matmul HTTP benchmark (see ../README.md).
// Runs unchanged under Node.js (`node server.js`) and Bun (../express-bun).
const express = require('express');

const PORT = process.env.PORT;
if (!PORT || !/^\d+$/.test(PORT)) {
  console.error('PORT environment variable is required');
  process.exit(2);
}

const now = () => performance.now(); // monotonic, ms

function buildMatrices(n) {
  const a = new Float64Array(n * n);
  const b = new Float64Array(n * n);
  // i*n + j < 2.5e7 for n <= 5000: exact in a double, so this is 64-bit-safe.
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const idx = i * n + j;
      a[idx] = (idx % 7) * 0.5;
      b[idx] = (idx % 5) * 0.25;
    }
  }
  return [a, b];
}

// Naive i-k-j: zero C; for i, for k, a = A[i][k], for j: C[i][j] += a*B[k][j].
function matmulNaive(a, b, c, n) {
  c.fill(0);
  for (let i = 0; i < n; i++) {
    const ci = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[ci + k];
      const bk = k * n;
      for (let j = 0; j < n; j++) {
        c[ci + j] += aik * b[bk + j];
      }
    }
  }
}

const app = express();
app.disable('x-powered-by');
app.disable('etag');

app.get('/hello', (req, res) => {
  res.type('text/plain').send('Hello, world!');
});

app.get('/matmul', (req, res) => {
  const raw = req.query.n;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw)) {
    return res.status(422).json({ error: 'n must be an integer in 1..5000' });
  }
  const n = Number(raw);
  if (n < 1 || n > 5000) {
    return res.status(422).json({ error: 'n must be an integer in 1..5000' });
  }
  const kernel = req.query.kernel === undefined ? 'naive' : req.query.kernel;
  if (kernel !== 'naive') {
    return res.status(422).json({ error: 'unknown kernel (only "naive")' });
  }
  const [a, b] = buildMatrices(n);
  const c = new Float64Array(n * n);
  const t0 = now();
  matmulNaive(a, b, c, n);
  const computeMs = now() - t0;
  let checksum = 0;
  for (let i = 0; i < c.length; i++) checksum += c[i];
  res.json({ n, kernel: 'naive', checksum, compute_ms: computeMs });
});

app.listen(Number(PORT), '127.0.0.1');
