"""Recipe search for the SST-2 defaults, run on a GPU with PyTorch + transformers.

Accuracy after N training examples depends on the recipe (pooling, frozen layers, learning
rate, batch size, N), not on the hardware, so the search runs where a run takes seconds (a
lent GPU, which has PyTorch but no TensorFlow) and the chosen recipe is then confirmed on the
CPU with keras-mapping itself (`bench/finetune_sst2.py`). This script mirrors our recipe:
the same length-bucketed batching (buckets 16/24/32/48/64, batches filled per bucket in
shuffled order), AdamW with weight decay off for biases and LayerNorm, global norm clipping
at 1.0, linear warmup over 10% of steps then linear decay to 0, dropout 0.1, frozen
embeddings plus the lowest `freeze` layers, and the best of the validation rounds kept.

Search 4 mirrors the parameter-efficient methods of `keras_mapping.models.peft` (LoRA on
the chosen projections with A He-uniform and B zero, Houlsby adapters after each sub-layer's
output projection with LayerNorms trainable, BitFit) to choose their learning rates.

Usage (data folder holding sst2/{train,validation}.tsv and a BERT-layout checkpoint dir):
    python bench/recipe_search_torch.py --search 2 --data DIR --checkpoint DIR --out R.jsonl
    python bench/recipe_search_torch.py --summarize bench/results/recipe_search_*.jsonl
"""

import argparse
import itertools
import json
import math
import multiprocessing as mp
import os
import time

import numpy as np

BOUNDARIES = (16, 24, 32, 48)
MAX_LENGTH = 64
ROUNDS_PER_EPOCH = 3
SST2_TRAIN = 67349


def read_tsv(path):
    texts, labels = [], []
    with open(path, encoding="utf-8") as handle:
        handle.readline()
        for line in handle:
            text, label = line.rstrip("\n").split("\t")
            texts.append(text)
            labels.append(int(label))
    return texts, np.array(labels)


def bucketed_batches(lengths, batch_size, seed, grouping):
    """Endless batches of indices: each epoch a new shuffle, batches filled per bucket
    ("buckets") or per exact length ("exact")."""
    rng = np.random.default_rng(seed)
    pending = {}
    while True:
        for index in rng.permutation(len(lengths)):
            key = (int(lengths[index]) if grouping == "exact" else
                   int(np.sum(np.array(BOUNDARIES) < lengths[index])))
            pending.setdefault(key, []).append(index)
            if len(pending[key]) == batch_size:
                yield pending.pop(key)


# (freeze, examples) at batch 128: what each frozen depth trains in about 520 s on the 2-core
# CPU with batches grouped by exact length (measured there: 330 and 429 examples/s for
# freeze 0 and 2; freeze 3 extrapolated). The first search (bucketed batches, a third of
# that budget) is in bench/results/recipe_search_1.jsonl.
BUDGETS = ((0, 170000, (1e-4, 2e-4)), (2, 220000, (2e-4, 4e-4)),
           (3, 250000, (2e-4, 4e-4)))


def grid(search=2):
    """Configs in priority order (the search stops launching at its deadline)."""
    if search == 6:  # the chosen LoRA and adapter recipes, fp32 against mixed bf16, 2 seeds
        base = dict(pool="mean", freeze=0, batch=128, examples=270000, layerwise=None,
                    grouping="exact")
        return [dict(base, seed=seed, bf16=bf16, **method)
                for method in (dict(method="lora", lr=2e-3, rank=8, alpha=16, targets="all"),
                               dict(method="adapter", lr=1e-3, adapter_dim=32))
                for bf16 in (True, False) for seed in (1, 2)]
    if search == 5:  # the best of search 4 with 4 epochs and wider pieces
        base = dict(pool="mean", freeze=0, batch=128, examples=270000, seed=0, layerwise=None,
                    grouping="exact")
        return ([dict(base, method="adapter", lr=lr, adapter_dim=dim)
                 for dim, lr in ((32, 1e-3), (64, 1e-3), (64, 5e-4))]
                + [dict(base, method="lora", lr=lr, rank=rank, alpha=2 * rank, targets="all")
                   for rank, lr in ((8, 2e-3), (8, 1e-3), (16, 1e-3))]
                + [dict(base, method="lora", lr=2e-3, rank=8, alpha=16, targets="attention"),
                   dict(base, method="bitfit", lr=3e-2)])
    if search == 4:  # parameter-efficient methods, the default recipe otherwise
        base = dict(pool="mean", freeze=0, batch=128, examples=170000, seed=0, layerwise=None,
                    grouping="exact")
        return ([dict(base, method="lora", lr=lr, rank=8, alpha=16, targets=targets)
                 for targets in ("attention", "all") for lr in (1e-3, 2e-3, 5e-4)]
                + [dict(base, method="adapter", lr=lr, adapter_dim=32)
                   for lr in (1e-3, 2e-3, 5e-4)]
                + [dict(base, method="bitfit", lr=lr) for lr in (1e-3, 3e-3, 1e-2)]
                + [dict(base, method="lora", lr=lr, rank=16, alpha=32, targets="all")
                   for lr in (1e-3, 2e-3)])
    if search == 3:  # longer runs for the 30-minute budget, embeddings trainable or not
        return [dict(pool=pool, freeze=0, freeze_embeddings=embeddings, lr=lr, batch=128,
                     examples=200000, seed=0, layerwise=None, grouping="exact")
                for pool, embeddings, lr in (
                    ("mean", False, 1e-4), ("mean", True, 1e-4), ("cls", False, 1e-4),
                    ("mean", False, 5e-5), ("mean", False, 2e-4), ("cls", True, 1e-4),
                    ("cls", False, 5e-5), ("mean", True, 5e-5))]
    return [dict(pool=pool, freeze=freeze, lr=lr, batch=128, examples=examples, seed=seed,
                 layerwise=None, grouping="exact")
            for seed in (0, 1)
            for freeze, examples, rates in BUDGETS
            for lr in rates
            for pool in (("cls", "mean") if freeze < 3 else ("cls",))]


def worker(rank, args, queue, results):
    import torch
    from safetensors.numpy import load_file
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    tokenizer = BertTokenizerFast(os.path.join(args.checkpoint, "vocab.txt"),
                                  do_lower_case=True)
    data = {}
    for split in ("train", "validation"):
        texts, labels = read_tsv(os.path.join(args.data, "sst2", f"{split}.tsv"))
        ids = tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        data[split] = (ids, labels, np.array([len(x) for x in ids]))
    weights = {k.removeprefix("bert."): torch.tensor(v.astype("float32"))
               for k, v in load_file(os.path.join(args.checkpoint,
                                                   "model.safetensors")).items()}
    bert_config = BertConfig.from_json_file(os.path.join(args.checkpoint, "config.json"))

    def to_batch(split, indices, exact=False):
        ids, labels, lengths = data[split]
        width = max(lengths[i] for i in indices)
        bucket = width if exact else next(
            (b for b in BOUNDARIES + (MAX_LENGTH,) if b >= width), MAX_LENGTH)
        tokens = np.zeros((len(indices), bucket), "int64")
        for row, i in enumerate(indices):
            tokens[row, :lengths[i]] = ids[i]
        tokens = torch.tensor(tokens, device=device)
        return tokens, tokens != 0, torch.tensor(labels[list(indices)], device=device)

    while True:
        config = queue.get()
        if config is None:
            return
        if time.time() > args.deadline:
            continue
        started = time.time()
        torch.manual_seed(config["seed"])
        model = BertModel(bert_config).to(device)
        model.load_state_dict(weights, strict=False)
        head = torch.nn.Linear(bert_config.hidden_size, 2).to(device)
        torch.nn.init.trunc_normal_(head.weight, std=0.02)
        torch.nn.init.zeros_(head.bias)
        dropout = torch.nn.Dropout(0.1)
        method = config.get("method", "full")
        if method != "full":
            add_method_pieces(torch, model, config, device)
        frozen = ([model.embeddings] if config.get("freeze_embeddings", True) else []) + list(
            model.encoder.layer[:config["freeze"]])
        for module in frozen:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        groups = {}
        layers = bert_config.num_hidden_layers
        for name, parameter in itertools.chain(model.named_parameters(),
                                               head.named_parameters()):
            if not parameter.requires_grad:
                continue
            if method != "full" and not name.startswith("weight") and name != "bias" and not (
                    "lora_" in name or "adapter" in name
                    or (method == "bitfit" and name.endswith("bias"))
                    or (method == "adapter" and "LayerNorm" in name
                        and not name.startswith("embeddings"))):
                parameter.requires_grad_(False)
                continue
            factor = 1.0
            if config["layerwise"] and name.startswith("encoder.layer."):
                factor = config["layerwise"] ** (layers - int(name.split(".")[2]))
            decay = 0.0 if ("bias" in name or "LayerNorm" in name) else 0.01
            groups.setdefault((decay, factor), {"params": [], "weight_decay": decay,
                                                "lr": config["lr"] * factor,
                                                "factor": factor})["params"].append(parameter)
        optimizer = torch.optim.AdamW(list(groups.values()), lr=config["lr"], eps=1e-7,
                                      fused=device.type == "cuda")
        steps = config["examples"] // config["batch"]
        warmup = max(1, int(0.1 * steps))
        rounds = max(1, round(config["examples"] / SST2_TRAIN * ROUNDS_PER_EPOCH))
        evaluate_at = {math.ceil(steps * (r + 1) / rounds) for r in range(rounds)}
        evaluate_at |= {math.ceil(steps * (k + 1) / 6) for k in range(6)}
        curve, batches = [], bucketed_batches(data["train"][2], config["batch"],
                                              config["seed"], config["grouping"])
        trained_tokens = 0

        def forward(tokens, mask):
            output = model(input_ids=tokens, attention_mask=mask.long())
            if config["pool"] == "cls":
                pooled = output.pooler_output
            else:
                weights_ = mask.unsqueeze(-1).float()
                pooled = (output.last_hidden_state * weights_).sum(1) / weights_.sum(1)
            return head(dropout(pooled))

        for step in range(1, steps + 1):
            model.train()
            dropout.train()
            scale = step / warmup if step <= warmup else max(0.0, (steps - step) /
                                                                 max(1, steps - warmup))
            for group in optimizer.param_groups:
                group["lr"] = config["lr"] * group["factor"] * scale
            tokens, mask, labels = to_batch("train", next(batches),
                                            exact=config["grouping"] == "exact")
            trained_tokens += tokens.numel()
            # "bf16" mirrors keras-mapping's mixed bf16 policy (fp32 weights, bf16 matmuls).
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=config.get("bf16", False)):
                logits = forward(tokens, mask)
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(
                [p for g in optimizer.param_groups for p in g["params"]], 1.0)
            optimizer.step()
            if step in evaluate_at:
                model.eval()
                dropout.eval()
                correct = 0
                with torch.no_grad():
                    validation = data["validation"]
                    for start in range(0, len(validation[0]), 128):
                        tokens, mask, labels = to_batch(
                            "validation", range(start, min(start + 128, len(validation[0]))))
                        correct += (forward(tokens, mask).argmax(-1) == labels).sum().item()
                curve.append((step, correct / len(validation[0]), step * 1.0 / steps))
        round_points = [acc for s, acc, _ in curve if s in
                        {math.ceil(steps * (r + 1) / rounds) for r in range(rounds)}]
        results.put(dict(config, steps=steps, rounds=rounds, final=curve[-1][1],
                         best_of_rounds=max(round_points), curve=curve,
                         padded_tokens_per_example=trained_tokens / (steps * config["batch"]),
                         seconds=round(time.time() - started, 1), worker=rank))


def add_method_pieces(torch, model, config, device):
    """LoRA updates or Houlsby adapters on a HF BertModel, as keras_mapping adds them."""
    nn = torch.nn

    class LoRALinear(nn.Module):
        def __init__(self, base, rank, alpha):
            super().__init__()
            self.base = base
            self.lora_a = nn.Parameter(torch.empty(base.in_features, rank))
            nn.init.kaiming_uniform_(self.lora_a.T, a=0)  # He uniform over fan-in
            self.lora_b = nn.Parameter(torch.zeros(rank, base.out_features))
            self.scale, self.drop = alpha / rank, nn.Dropout(0.1)

        def forward(self, x):
            return self.base(x) + (self.drop(x) @ self.lora_a @ self.lora_b) * self.scale

    class Adapter(nn.Module):
        def __init__(self, base, width):
            super().__init__()
            self.base = base
            self.adapter_down = nn.Linear(base.out_features, width)
            nn.init.trunc_normal_(self.adapter_down.weight, std=0.02)
            nn.init.zeros_(self.adapter_down.bias)
            self.adapter_up = nn.Linear(width, base.out_features)
            nn.init.zeros_(self.adapter_up.weight)
            nn.init.zeros_(self.adapter_up.bias)

        def forward(self, x):
            h = self.base(x)
            return h + self.adapter_up(torch.nn.functional.gelu(self.adapter_down(h)))

    for layer in model.encoder.layer:
        if config["method"] == "lora":
            attention = layer.attention
            targets = [(attention.self, "query"), (attention.self, "key"),
                       (attention.self, "value"), (attention.output, "dense")]
            if config["targets"] == "all":
                targets += [(layer.intermediate, "dense"), (layer.output, "dense")]
            for module, name in targets:
                setattr(module, name, LoRALinear(getattr(module, name), config["rank"],
                                                 config["alpha"]).to(device))
        elif config["method"] == "adapter":
            for module in (layer.attention.output, layer.output):
                module.dense = Adapter(module.dense, config["adapter_dim"]).to(device)


def summarize(paths):
    """A markdown table of result files: one row per recipe, seeds side by side."""
    rows = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                result = json.loads(line)
                key = (result.get("grouping", "buckets"),
                       " ".join(str(result[k]) for k in ("method", "rank", "targets",
                                                          "adapter_dim") if k in result)
                       or result["freeze"],
                       result.get("freeze_embeddings", True), result["pool"], result["batch"],
                       result["lr"], result["examples"])
                rows.setdefault(key, []).append(result)
    print("| batches | frozen layers (or method) | embeddings | pooling | batch | lr "
          "| examples (epochs) "
          "| best round, per seed | final, per seed |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, results in sorted(rows.items(), key=lambda item: -np.mean(
            [r["best_of_rounds"] for r in item[1]])):
        grouping, freeze, embeddings, pool, batch, lr, examples = key
        results.sort(key=lambda r: r["seed"])
        best = " / ".join(f"{100 * r['best_of_rounds']:.2f}" for r in results)
        final = " / ".join(f"{100 * r['final']:.2f}" for r in results)
        print(f"| {grouping} | {freeze} | {'frozen' if embeddings else 'trained'} | {pool} "
              f"| {batch} | {lr:g} | {examples:,} ({examples / SST2_TRAIN:.1f}) | {best} "
              f"| {final} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summarize", nargs="+", metavar="RESULTS_JSONL",
                        help="print a markdown table of earlier results and exit")
    parser.add_argument("--data")
    parser.add_argument("--checkpoint")
    parser.add_argument("--out")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--budget-seconds", type=float, default=300)
    parser.add_argument("--limit", type=int, default=None, help="run only the first N configs")
    parser.add_argument("--examples", type=int, default=None,
                        help="override every config's training examples (smoke runs)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--search", type=int, default=2, choices=(2, 3, 4, 5, 6),
                        help="which grid: 2 = the 10-minute budget, 3 = longer runs, "
                             "4 = parameter-efficient methods, 5 = those for 4 epochs, "
                             "6 = LoRA and adapters in fp32 and bf16")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    if not (args.data and args.checkpoint and args.out):
        parser.error("--data, --checkpoint and --out are required for a search")
    args.deadline = time.time() + args.budget_seconds
    context = mp.get_context("spawn")
    queue, results = context.Queue(), context.Queue()
    configs = grid(args.search)[:args.limit]
    if args.examples:
        configs = [dict(config, examples=args.examples) for config in configs]
    for config in configs:
        queue.put(config)
    for _ in range(args.workers):
        queue.put(None)
    processes = [context.Process(target=worker, args=(rank, args, queue, results))
                 for rank in range(args.workers)]
    for process in processes:
        process.start()
    done = 0
    with open(args.out, "w", encoding="utf-8") as sink:
        while any(p.is_alive() for p in processes) or not results.empty():
            try:
                result = results.get(timeout=5)
            except Exception:
                continue
            done += 1
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            print(f"[{done}/{len(configs)}] {result.get('method', 'full')} "
                  f"{'bf16' if result.get('bf16') else 'fp32'} "
                  f"{result.get('targets', '')} {result['pool']} F{result['freeze']} "
                  f"emb{'-frozen' if result.get('freeze_embeddings', True) else '-trained'} "
                  f"lr{result['lr']} b{result['batch']} n{result['examples']} "
                  f"s{result['seed']} lw{result['layerwise']}: final {result['final']:.4f} "
                  f"best {result['best_of_rounds']:.4f} ({result['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
