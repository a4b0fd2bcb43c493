"""Dataset formats: WebDataset shards, splits, verification and the dataset card."""
