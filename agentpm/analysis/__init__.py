"""Analysis, on records and the classifier: trends, the quarterly report, similar incidents."""
