#!/usr/bin/python3
"""The PyTorch peer of captcha-ocr's trainer: the default small CRNN and its training loop, in
Python, as a user of PyTorch would write it. Run with Debian's /usr/bin/python3 (python3-torch,
python3-opencv; bench/peer/setup.sh installs them), which uses the same system BLAS as our build.

  crnn_peer.py throughput --train DIR --batch 16 [--steps 60] [--threads 2]
      training steps on preprocessed images, after 5 warm-up steps: one line of JSON
      (images_per_second, median_step_ms).
  crnn_peer.py train --train DIR --val DIR --out CSV [--epochs 50] [--batch 16] [--lr 1e-3]
                     [--test DIR] [--stop-at 0.99]
      the Keras reference's loop (Adam, constant learning rate, no augmentation, early stopping
      on validation loss, the best model by validation loss kept) with a CSV row per epoch, in
      the columns of our metrics.csv; with --test, one line of JSON with the test figures.

The network matches captcha-ocr's `small` architecture: conv 3x3 (32) + batch norm + ReLU + max
pool 2, conv 3x3 (64) + batch norm + ReLU + max pool 2, each column of the feature map a time
step, dense 64 + ReLU + dropout 0.2, BiLSTM 128 and 64 per direction, linear to the charset plus
the CTC blank (index 0). Initialisation as Keras (Glorot-uniform, orthogonal recurrent kernels,
forget-gate bias 1). Preprocessing as ours: grey, auto-invert, crop to the text, CLAHE (2.0,
8x8), stretch to 200x50, (x / 255 - 0.5) / 0.5.
"""
import argparse
import json
import os
import statistics
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTH, HEIGHT = 200, 50


def label_of(path):
    return os.path.splitext(os.path.basename(path))[0]


def text_box(grey):
    """Bounding box of the dark text with a margin, or None (the whole image)."""
    h, w = grey.shape
    threshold, ink = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    if threshold <= 0 or cv2.countNonZero(ink) > grey.size // 2:
        return None
    cols = ink.sum(axis=0, dtype=np.int64)
    rows = ink.sum(axis=1, dtype=np.int64)
    col_hits = np.nonzero(cols >= 255 * max(1, h // 25))[0]
    row_hits = np.nonzero(rows >= 255 * max(1, w // 50))[0]
    if len(col_hits) == 0 or len(row_hits) == 0:
        return None
    mx, my = max(2, w // 40), max(2, h // 10)
    x0, x1 = max(0, col_hits[0] - mx), min(w, col_hits[-1] + 1 + mx)
    y0, y1 = max(0, row_hits[0] - my), min(h, row_hits[-1] + 1 + my)
    if x1 - x0 < w // 8 or y1 - y0 < h // 4:
        return None
    return x0, y0, x1, y1


CLAHE = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


def preprocess(path):
    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if grey is None:
        sys.exit(f"{path}: cannot decode image")
    band = max(1, min(grey.shape) // 20)
    border = np.concatenate([grey[:band].ravel(), grey[-band:].ravel(), grey[:, :band].ravel(), grey[:, -band:].ravel()])
    if np.median(border) < 128:
        grey = 255 - grey
    box = text_box(grey)
    if box:
        x0, y0, x1, y1 = box
        grey = grey[y0:y1, x0:x1]
    grey = CLAHE.apply(np.ascontiguousarray(grey))
    shrink = WIDTH < grey.shape[1] or HEIGHT < grey.shape[0]
    return cv2.resize(grey, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def load_folder(folder):
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    if not paths:
        sys.exit(f"{folder}: no images")
    images = np.stack([preprocess(p) for p in paths])
    return images, [label_of(p) for p in paths]


def to_tensor(images):
    return (torch.from_numpy(images).float().unsqueeze(1) / 255.0 - 0.5) / 0.5


class Crnn(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.dense = nn.Linear(64 * (HEIGHT // 4), 64)
        self.dropout = nn.Dropout(0.2)
        self.rnn1 = nn.LSTM(64, 128, batch_first=True, bidirectional=True)
        self.rnn2 = nn.LSTM(256, 64, batch_first=True, bidirectional=True)
        self.classifier = nn.Linear(128, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for rnn in (self.rnn1, self.rnn2):
            hidden = rnn.hidden_size
            for name, p in rnn.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(p)
                elif name.startswith("weight_hh"):
                    with torch.no_grad():
                        for g in range(4):
                            nn.init.orthogonal_(p[g * hidden:(g + 1) * hidden])
                else:
                    nn.init.zeros_(p)
                    if name.startswith("bias_ih"):
                        with torch.no_grad():
                            p[hidden:2 * hidden] = 1.0

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = x.permute(0, 3, 1, 2).flatten(2)
        x = self.dropout(F.relu(self.dense(x)))
        x = self.rnn1(x)[0]
        x = self.rnn2(self.dropout(x))[0]
        return self.classifier(x)


def ctc_loss(logits, targets, target_lengths):
    log_probs = F.log_softmax(logits, 2).transpose(0, 1)
    input_lengths = torch.full((logits.size(0),), logits.size(1), dtype=torch.long)
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="sum",
                      zero_infinity=True) / logits.size(0)


class Data:
    def __init__(self, folder, charset=None):
        self.images, self.labels = load_folder(folder)
        self.charset = charset or sorted(set("".join(self.labels)))
        index = {c: i + 1 for i, c in enumerate(self.charset)}
        self.targets = [[index[c] for c in label] for label in self.labels]

    def batch(self, order):
        x = to_tensor(self.images[order])
        targets = torch.tensor([t for i in order for t in self.targets[i]], dtype=torch.long)
        lengths = torch.tensor([len(self.targets[i]) for i in order], dtype=torch.long)
        return x, targets, lengths


def step(model, optimiser, x, targets, lengths):
    optimiser.zero_grad()
    loss = ctc_loss(model(x), targets, lengths)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimiser.step()
    return loss.item()


def greedy(logits, charset):
    out = []
    for row in logits.argmax(2).tolist():
        text, previous = [], 0
        for k in row:
            if k != previous and k != 0:
                text.append(charset[k - 1])
            previous = k
        out.append("".join(text))
    return out


def validate(model, data, charset):
    model.eval()
    exact, loss_sum, errors, chars = 0, 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, len(data.labels), 64):
            order = list(range(start, min(start + 64, len(data.labels))))
            x, targets, lengths = data.batch(order)
            logits = model(x)
            loss_sum += ctc_loss(logits, targets, lengths).item() * len(order)
            for i, text in zip(order, greedy(logits, charset)):
                truth = data.labels[i]
                exact += text == truth
                errors += edit_distance(text, truth)
                chars += len(truth)
    model.train()
    return loss_sum / len(data.labels), exact / len(data.labels), errors / max(1, chars)


def edit_distance(a, b):
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def throughput(args):
    data = Data(args.train)
    model = Crnn(len(data.charset) + 1)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(1)
    times = []
    for s in range(args.steps + 5):
        order = rng.choice(len(data.labels), args.batch, replace=False)
        begin = time.perf_counter()
        x, targets, lengths = data.batch(order)
        step(model, optimiser, x, targets, lengths)
        if s >= 5:
            times.append(time.perf_counter() - begin)
    median = statistics.median(times)
    print(json.dumps({"batch": args.batch, "threads": torch.get_num_threads(), "median_step_ms": median * 1e3,
                      "images_per_second": args.batch / median}))


def train(args):
    begin = time.perf_counter()
    data = Data(args.train)
    val = Data(args.val, data.charset)
    load_seconds = time.perf_counter() - begin
    print(f"loaded {len(data.labels)} + {len(val.labels)} images in {load_seconds:.1f} s", file=sys.stderr)
    torch.manual_seed(args.seed)
    model = Crnn(len(data.charset) + 1)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    best_loss, best_state, stale, elapsed = float("inf"), None, 0, 0.0
    with open(args.out, "w") as csv:
        csv.write("epoch,train_loss,val_loss,val_exact_match,val_cer,learning_rate,images_per_second,elapsed_seconds\n")
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            order = rng.permutation(len(data.labels))
            losses = []
            for b in range(0, len(order), args.batch):
                losses.append(step(model, optimiser, *data.batch(order[b:b + args.batch])))
            train_seconds = time.perf_counter() - start
            val_loss, exact, cer = validate(model, val, data.charset)
            elapsed += time.perf_counter() - start
            csv.write(f"{epoch},{statistics.mean(losses):.5f},{val_loss:.5f},{exact:.4f},{cer:.5f},{args.lr},"
                      f"{len(order) / train_seconds:.2f},{elapsed:.2f}\n")
            csv.flush()
            print(f"epoch {epoch}: loss {statistics.mean(losses):.3f} val loss {val_loss:.3f} exact {exact:.4f} "
                  f"cer {cer:.4f} ({elapsed:.0f} s)", file=sys.stderr)
            if val_loss < best_loss - 1e-4:
                best_loss, stale = val_loss, 0
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if stale >= args.patience:
                    break
            if args.stop_at and exact >= args.stop_at:
                break
    if args.test:
        model.load_state_dict(best_state)
        _, exact, cer = validate(model, Data(args.test, data.charset), data.charset)
        print(json.dumps({"test_exact_match": exact, "test_cer": cer, "epochs": epoch, "elapsed_seconds": elapsed}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--train", required=True)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--steps", type=int, default=60)
    r = sub.add_parser("train")
    r.add_argument("--train", required=True)
    r.add_argument("--val", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--epochs", type=int, default=50)
    r.add_argument("--batch", type=int, default=16)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--patience", type=int, default=20)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--stop-at", type=float, default=0, help="stop once validation exact match reaches this")
    r.add_argument("--test", help="a test folder: read with the best model (lowest validation loss) at the end")
    for p in (t, r):
        p.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    throughput(args) if args.command == "throughput" else train(args)


if __name__ == "__main__":
    main()
