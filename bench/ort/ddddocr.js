// ONNX Runtime side of bench/ddddocr_export.py: runs a model exported with
// `export --format ddddocr` on inputs prepared as ddddocr prepares them, as ddddocr runs it.
//   node ddddocr.js MODEL.onnx MANIFEST.json   MANIFEST: [[file.f32, width], ...] (1 x 1 x 64 x width each)
// Prints one JSON line per input: the output's class indices.
const ort = require('onnxruntime-node');
const fs = require('fs');

async function main() {
  const [model, manifest] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  for (const [file, width] of JSON.parse(fs.readFileSync(manifest, 'utf8'))) {
    const raw = fs.readFileSync(file);
    const input = new Float32Array(raw.buffer, raw.byteOffset, 64 * width);
    const out = await session.run({ input1: new ort.Tensor('float32', input, [1, 1, 64, width]) });
    console.log(JSON.stringify(Array.from(out.output.data, Number)));
  }
}
main().catch((e) => { console.error('ddddocr.js: ' + e.message); process.exit(1); });
