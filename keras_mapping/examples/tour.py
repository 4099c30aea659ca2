"""The `make demo` tour: text -> tokens -> BERT layers -> shapes, attention, embeddings."""

import shutil

import numpy as np

from keras_mapping.examples.self_attention import worked_example
from keras_mapping.models import BertBackbone, BertSentenceEncoder
from keras_mapping.tokenizers import BertTextPreprocessor, BertTokenizer
from keras_mapping.training import FinetuneConfig, finetune
from keras_mapping.training.inference import predict

SENTENCES = (
    "The film is a charming, funny and heartfelt ride.",
    "A tedious mess with a cliché plot.",
    "It's a great movie!",
)


def _format_row(values):
    return " ".join(f"{v:5.2f}" for v in values)


def run_tour(preset="minilm_l6", sentences=SENTENCES, print_fn=print):
    """Tokenizes `sentences`, runs them through a pretrained BERT and prints what happens.

    Args:
        preset: preset name or BERT-layout directory.
        sentences: texts to run.
        print_fn: where lines go.

    Returns:
        dict with the model outputs, last-layer attention and sentence embeddings.
    """
    tokenizer = BertTokenizer.from_preset(preset)
    preprocessor = BertTextPreprocessor(tokenizer, max_length=None)
    inputs = {name: np.asarray(value) for name, value in preprocessor(list(sentences)).items()}
    print_fn(f"1. Tokenized {len(sentences)} sentences with the '{preset}' WordPiece vocabulary:")
    for sentence, ids, mask in zip(sentences, inputs["token_ids"], inputs["padding_mask"]):
        tokens = [tokenizer.id_to_token(int(i)) for i in ids[mask]]
        print_fn(f"   {sentence!r}\n     -> {' '.join(tokens)}")
    print_fn("   packed: " + ", ".join(
        f"{name} {value.shape} {value.dtype}" for name, value in inputs.items()))

    backbone = BertBackbone.from_preset(preset)
    print_fn(f"\n2. BertBackbone '{preset}': {backbone.num_layers} layers, "
             f"{backbone.hidden_dim} wide, {backbone.num_heads} heads, "
             f"{backbone.count_params():,} parameters")
    outputs = backbone.predict(inputs, verbose=0)
    for name, value in outputs.items():
        print_fn(f"   {name}: {value.shape}")

    scores = np.asarray(backbone.attention_scores(inputs)[-1])
    length = int(inputs["padding_mask"][2].sum())
    tokens = [tokenizer.id_to_token(int(i)) for i in inputs["token_ids"][2][:length]]
    head_mean = scores[2].mean(axis=0)[:length, :length]
    print_fn(f"\n3. Last-layer attention for {sentences[2]!r} (mean over heads; row attends "
             "to column):")
    print_fn("   " + " " * 8 + " ".join(f"{t[:5]:>5}" for t in tokens))
    for token, row in zip(tokens, head_mean):
        print_fn(f"   {token[:8]:>8}" + _format_row(row))

    embeddings = BertSentenceEncoder(backbone).predict(inputs, verbose=0)
    similarity = embeddings @ embeddings.T
    print_fn("\n4. Sentence embeddings (mean pooling + L2), cosine similarity:")
    for index, row in enumerate(similarity):
        print_fn(f"   s{index}: " + _format_row(row))

    example = worked_example()
    print_fn("\n5. The 6-token attention example, through our MultiHeadAttention:")
    print_fn(f"   Q[0] = {np.round(example['query'][0], 2).tolist()}  (not [1.1, 1.6, 1.3, 2.1])")
    print_fn(f"   weights[0] = {np.round(example['weights'][0], 4).tolist()}")
    return {"outputs": outputs, "attention": scores, "embeddings": embeddings}


SAMPLE_REVIEWS = (
    "A gorgeous, witty, seductive movie.",
    "The plot is nothing but boilerplate clichés from start to finish.",
    "It's not a bad film, just a forgettable one.",
)


def run_sentiment_tour(out="saved_models/demo_sst2", train_examples=3000, print_fn=print):
    """A shortened SST-2 fine-tuning run (first `train_examples` sentences, one pass), then
    validation accuracy and predictions for a few reviews.

    The full recipe is `keras-mapping finetune` with its defaults (see BENCHMARKS.md).
    """
    shutil.rmtree(out, ignore_errors=True)
    config = FinetuneConfig(out=out, max_train_examples=train_examples, epochs=1,
                            batch_size=64, evaluations_per_epoch=1)
    print_fn(f"\n6. Fine-tuning minilm_l6 on the first {train_examples:,} SST-2 training "
             "sentences (a shortened run of the default recipe):")
    metrics = finetune(config, verbose=2, print_fn=lambda line: print_fn("   " + line))
    print_fn(f"   SST-2 validation accuracy: {metrics['accuracy']:.4f} "
             f"({metrics['num_examples']} sentences), macro F1 {metrics['macro_f1']:.4f}")
    print_fn("   predictions:")
    for row in predict(out, SAMPLE_REVIEWS):
        print_fn(f"   {row['label']:>8} {max(row['probabilities']):.3f}  {row['text']}")
    return metrics
