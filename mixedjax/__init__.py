"""mixedjax: linear mixed-effects models in JAX."""
from ._errors import ArgumentError, DataError, FitError, FormulaError, MixedjaxError
from ._datasets import dataset, datasets
