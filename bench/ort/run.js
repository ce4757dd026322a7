// ONNX Runtime side of bench/inference_vs_onnxruntime.sh.
//   node run.js MODEL.onnx bench BATCH THREADS        -> one JSON line: median_ms, images_per_second
//   node run.js MODEL.onnx logits BATCH IN.f32 OUT.f32 -> runs IN (batch x 1 x H x W float32) once
const ort = require('onnxruntime-node');
const fs = require('fs');

async function main() {
  const [model, mode, batchText, a, b] = process.argv.slice(2);
  const batch = parseInt(batchText, 10);
  const threads = mode === 'bench' ? parseInt(a, 10) : 1;
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const dims = [batch, 1, 50, 200];
  const meta = JSON.parse(Buffer.from(fs.readFileSync(model)).toString('latin1').match(/\{"auto_crop[^}]*\}/)[0]);
  dims[2] = meta.height; dims[3] = meta.width;
  const size = dims.reduce((x, y) => x * y, 1);
  if (mode === 'logits') {
    const raw = fs.readFileSync(a);
    const input = new Float32Array(raw.buffer, raw.byteOffset, size);
    const out = await session.run({ image: new ort.Tensor('float32', input, dims) });
    fs.writeFileSync(b, Buffer.from(out.logits.data.buffer));
    console.log(JSON.stringify({ dims: out.logits.dims }));
    return;
  }
  const input = new Float32Array(size);
  let seed = 1;
  for (let i = 0; i < size; ++i) { seed = (seed * 1103515245 + 12345) % 2147483648; input[i] = seed / 2147483648 * 2 - 1; }
  const feeds = { image: new ort.Tensor('float32', input, dims) };
  for (let i = 0; i < 5; ++i) await session.run(feeds);
  const times = [];
  const start = process.hrtime.bigint();
  while (times.length < 10 || Number(process.hrtime.bigint() - start) / 1e6 < 2000) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)];
  console.log(JSON.stringify({ runtime: 'onnxruntime-node ' + require('onnxruntime-node/package.json').version, batch, threads,
                               runs: times.length, median_ms: median, min_ms: times[0], images_per_second: batch * 1000 / median }));
}
main().catch((e) => { console.error('run.js: ' + e.message); process.exit(1); });
