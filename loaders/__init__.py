"""PyTorch loaders over shards and the original layout (to come)."""
