"""The one error type of the estimator package."""


class EstimatorError(ValueError):
    """A bad estimator name, param or input; the message says what is wrong and what is allowed."""
