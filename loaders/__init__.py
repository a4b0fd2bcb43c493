"""PyTorch loaders over shards (indexed or streamed) and the original layout.

`PairDataset` (exact SIE pairs, the default for training), `StreamingPairs` (remote shards),
`SequenceDataset` (sequences of views with the action between neighbours), `ViewDataset` and `ObjectViews`
(evaluation), and `make_loader` (sampler and defaults).
"""

from iebench.loaders.datasets import ObjectViews, PairDataset, ViewDataset
from iebench.loaders.decode import Normalize
from iebench.loaders.loader import make_loader
from iebench.loaders.sequences import SequenceDataset
from iebench.loaders.streaming import StreamingPairs

__all__ = ["PairDataset", "SequenceDataset", "StreamingPairs", "ViewDataset", "ObjectViews", "make_loader", "Normalize"]
