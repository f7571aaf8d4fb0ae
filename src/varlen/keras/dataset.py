"""Placeholder."""
class BucketedDataset:  # noqa: D101
    pass
