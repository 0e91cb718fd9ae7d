"""Sample-quality metrics: FID / KID / IS formulas with pluggable features, the FID Inception (weights supplied
by the user), a digits-classifier feature network for an offline digits FID, and MMD / sliced Wasserstein for
low-dimensional data."""
from .digits_classifier import (DigitsClassifierConfig, DigitsCNN, classify_digits, digits_feature_extractor, digits_fid,
                                digits_reference_statistics, train_digits_classifier)
from .distances import (feature_statistics, fid_from_features, frechet_distance, inception_score, kid, mmd,
                        sliced_wasserstein)
from .features import RunningStatistics, extract_features, load_statistics, save_statistics
from .inception import FID_WEIGHTS_FILE, FID_WEIGHTS_URL, FIDInceptionV3, inception_feature_extractor

__all__ = [
    "DigitsClassifierConfig", "DigitsCNN", "digits_feature_extractor", "digits_fid", "digits_reference_statistics",
    "train_digits_classifier", "classify_digits", "feature_statistics", "fid_from_features", "frechet_distance", "inception_score",
    "kid", "mmd", "sliced_wasserstein", "extract_features", "RunningStatistics", "load_statistics",
    "save_statistics", "FID_WEIGHTS_FILE", "FID_WEIGHTS_URL",
    "FIDInceptionV3", "inception_feature_extractor",
]
