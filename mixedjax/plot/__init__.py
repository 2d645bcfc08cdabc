"""Plots of fitted models (matplotlib, the optional extra ``pip install mixedjax[plot]``)."""
