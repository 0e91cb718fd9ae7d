"""Data for ``ddpm_core``: 2-D toys, scikit-learn digits, CIFAR-10, MNIST, image folders, all scaled to [-1, 1],
and an endless, rank-sharded, exactly resumable batch loader."""
from .datasets import DATASET_NAMES, IMAGE_DATASETS, make_dataset
from .digits import load_digits, quantize_digits
from .images import ArrayImageDataset, ImageFolderDataset, RandomHorizontalFlip, to_levels, to_unit_range
from .loader import InfiniteLoader, fetch_batch, infinite_loader
from .paths import cache_dir, data_home
from .readers import download_url, read_cifar10, read_idx, read_mnist
from .toys import TOY_NAMES, sample_toy

__all__ = [
    "DATASET_NAMES", "IMAGE_DATASETS", "make_dataset", "load_digits", "quantize_digits",
    "ArrayImageDataset", "ImageFolderDataset", "RandomHorizontalFlip", "to_unit_range", "to_levels",
    "InfiniteLoader", "fetch_batch", "infinite_loader", "cache_dir", "data_home",
    "download_url", "read_cifar10", "read_idx", "read_mnist", "TOY_NAMES", "sample_toy",
]
