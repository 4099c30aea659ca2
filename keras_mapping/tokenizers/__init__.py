"""Text to ids: BERT's WordPiece tokenizer, the segment packer and vocabulary training."""
