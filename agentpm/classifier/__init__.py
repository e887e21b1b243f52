"""The classifier, on records: features, training with scikit-learn, the numpy predictor,
classification and the model card.
"""
